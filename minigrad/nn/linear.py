"""Linear (fully connected) layer and Identity.

Linear:  y = x W^T + b,   x (N, I), W (O, I), b (O,), y (N, O)

Default initialisation is PyTorch's: W ~ kaiming_uniform_(a=sqrt(5)), which
works out to U(-1/sqrt(I), 1/sqrt(I)), and b ~ U(-1/sqrt(I), 1/sqrt(I)).
"""
import math

import numpy

from minigrad import backend
from minigrad.nn import init
from minigrad.nn.module import Module, check_input_dtype
from minigrad.nn.parameter import Parameter
from minigrad.ops.matmul import linear


def empty_parameter(shape, device=None, dtype=None):
    """An uninitialised Parameter, to be filled by a layer's reset_parameters()."""
    xp = backend.module_for(device or "cpu")
    return Parameter(xp.empty(shape, dtype=dtype or numpy.float32))


class Identity(Module):
    """y = x; a placeholder (e.g. a shortcut that does nothing)."""

    def __init__(self, *args, **kwargs):
        super().__init__()

    def forward(self, x):
        return x


class Linear(Module):
    def __init__(self, in_features, out_features, bias=True, device=None, dtype=None):
        super().__init__()
        self.in_features, self.out_features = in_features, out_features
        self.weight = empty_parameter((out_features, in_features), device, dtype)
        if bias:
            self.bias = empty_parameter((out_features,), device, dtype)
        else:
            self.register_parameter("bias", None)
        self.reset_parameters()

    def reset_parameters(self):
        init.kaiming_uniform_(self.weight, a=math.sqrt(5))
        if self.bias is not None:
            bound = 1 / math.sqrt(self.in_features) if self.in_features > 0 else 0
            init.uniform_(self.bias, -bound, bound)

    def forward(self, x):
        check_input_dtype(self._signature(), x, self.weight)
        if x.ndim < 1 or x.shape[-1] != self.in_features:
            raise ValueError(
                f"{self._signature()}: expected input with last dimension {self.in_features}, "
                f"got shape {tuple(x.shape)}"
            )
        return linear(x, self.weight, self.bias)

    def _signature(self):
        return f"Linear({self.in_features}, {self.out_features})"

    def extra_repr(self):
        return f"in_features={self.in_features}, out_features={self.out_features}, bias={self.bias is not None}"
