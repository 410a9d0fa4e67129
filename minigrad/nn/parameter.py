"""Parameter: a Tensor that a Module trains.

A Parameter is an ordinary leaf Tensor with requires_grad=True by default. The
only thing special about it is its type: when a Module attribute is set to a
Parameter (``self.weight = Parameter(...)``), the Module registers it, so that
``module.parameters()`` finds it and an optimizer can update it. Buffers
(running statistics) are plain Tensors registered with ``register_buffer``:
they are saved and moved with the module but never trained.
"""
import numpy

from minigrad.tensor import Tensor


class Parameter(Tensor):
    def __init__(self, data=None, requires_grad=True):
        if data is None:
            data = numpy.empty((0,), dtype=numpy.float32)
        if isinstance(data, Tensor):
            device, data = data.device, data.array   # share memory, like torch.nn.Parameter
        else:
            device = None
        super().__init__(data, requires_grad=requires_grad, device=device)

    def __repr__(self):
        return "Parameter containing:\n" + super().__repr__()
