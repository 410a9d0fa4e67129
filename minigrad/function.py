"""Function: one differentiable operation, with its forward and backward side by side.

A Function works on raw arrays (NumPy or CuPy), never on Tensors::

    class Exp(Function):
        def forward(self, x):            # y = e^x
            y = xp.exp(x)
            self.saved = (y,)            # what backward needs, kept in one place
            return y

        def backward(self, dy):          # dL/dx = dL/dy * e^x
            (y,) = self.saved
            return dy * y

Calling a Function instance on Tensors (``Exp()(x)``) unwraps the arrays, runs
``forward``, and wraps the result in a new Tensor. When grad mode is on and an
input requires grad, the output remembers the Function (its ``creator``) and the
Function remembers its inputs: that link is one edge of the computation graph
that ``Tensor.backward`` walks in reverse.

``backward`` receives ``dy`` (the gradient of the final scalar with respect to
this op's output) and returns one gradient per input, in input order, each the
shape of its input (``None`` for inputs that need none).
"""
import numpy

from minigrad import backend, grad_mode


class Function:
    saved = None          # arrays kept by forward for backward
    inputs = ()           # the input Tensors (None where an optional input is absent)
    needs_input_grad = () # one bool per input
    released = False      # True once backward has freed `saved`
    # Inputs (by position) whose gradient backward returns as a NEW array that the op keeps no
    # reference to. A leaf tensor takes such a gradient as its .grad without a copy (autograd.py).
    fresh_gradients = ()

    def forward(self, *arrays):
        raise NotImplementedError

    def backward(self, dy):
        raise NotImplementedError

    @property
    def name(self):
        return type(self).__name__

    def __call__(self, *inputs):
        # One pass over the inputs collects the arrays, the common device and which inputs
        # need a gradient: this runs for every op, so it is kept lean (no helper calls).
        arrays, needs_grad, device = [], [], None
        for index, t in enumerate(inputs):
            if isinstance(t, Tensor):
                if device is None:
                    device, first = t.device, index
                elif t.device != device:
                    raise _device_error(self.name, first, device, index, t.device)
                arrays.append(t.array)
                needs_grad.append(t.requires_grad)
            else:
                arrays.append(t)
                needs_grad.append(False)
        record = grad_mode._grad_enabled and True in needs_grad
        if record:                 # known before forward: an op may keep less for an input needing no gradient
            self.needs_input_grad = tuple(needs_grad)
        output = self.forward(*arrays)
        if isinstance(output, numpy.generic):
            output = numpy.asarray(output)  # NumPy gives scalars for 0-d results; keep arrays
        if record:
            self.inputs = tuple(t if isinstance(t, Tensor) else None for t in inputs)
        else:
            self.saved = None  # nothing will call backward: free memory now
        return Tensor._make(output, device or backend.CPU, record, self if record else None)

    def release(self):
        """Free what forward saved AND the links to its inputs, after backward has used them.

        Dropping `inputs` is what frees the activations: each intermediate Tensor is
        referenced only by the op that consumed it, so once backward has passed, the
        graph no longer keeps them alive (as in PyTorch). Without this, a training loop's
        `loss` would hold the whole previous graph while the next forward builds a new
        one: twice the activation memory. A second backward through this op fails clearly.
        """
        self.saved = None
        self.inputs = ()
        self.released = True


def _device_error(op_name, first, first_device, index, device):
    """The error for inputs on two devices, naming both."""
    return backend.DeviceError(
        f"{op_name}: input {first} is on device '{first_device}' but input {index} is on "
        f"device '{device}'; move them to one device with .to(device)"
    )


from minigrad.tensor import Tensor  # noqa: E402  (after Function: tensor.py may grow to need it)
