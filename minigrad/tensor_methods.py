"""Attach operators (+, -, *, /, **, @, [], comparisons) and methods (x.sum(), x.relu(), ...) to Tensor.

They live here, not in tensor.py, because they call the ops modules, which in
turn build Tensors: defining them after both exist avoids a circular import.
Each method is a thin call to the op's user-facing function.
"""
import numpy

from minigrad import backend, grad_mode
from minigrad.ops import activation, elementwise, indexing, matmul, reduce, shape
from minigrad.tensor import Tensor


def _reflected(function):
    return lambda self, other: function(other, self)


def _compare(numpy_name):
    """Comparisons give boolean Tensors and never carry gradient."""
    def compare(self, other):
        xp = backend.array_module(self.array)
        other = other.array if isinstance(other, Tensor) else other
        return Tensor._make(getattr(xp, numpy_name)(self.array, other), self.device)
    return compare


_METHODS = {
    "__add__": elementwise.add, "__radd__": _reflected(elementwise.add),
    "__sub__": elementwise.sub, "__rsub__": _reflected(elementwise.sub),
    "__mul__": elementwise.mul, "__rmul__": _reflected(elementwise.mul),
    "__truediv__": elementwise.div, "__rtruediv__": _reflected(elementwise.div),
    "__pow__": elementwise.pow, "__rpow__": _reflected(elementwise.pow),
    "__matmul__": matmul.matmul, "__rmatmul__": _reflected(matmul.matmul),
    "__neg__": elementwise.neg, "__abs__": elementwise.abs,
    "__getitem__": indexing.getitem,
    "__lt__": _compare("less"), "__le__": _compare("less_equal"),
    "__gt__": _compare("greater"), "__ge__": _compare("greater_equal"),
    "__eq__": _compare("equal"), "__ne__": _compare("not_equal"),
    "eq": _compare("equal"), "ne": _compare("not_equal"), "lt": _compare("less"), "le": _compare("less_equal"),
    "gt": _compare("greater"), "ge": _compare("greater_equal"),
    "add": elementwise.add, "sub": elementwise.sub, "mul": elementwise.mul,
    "div": elementwise.div, "pow": elementwise.pow, "matmul": matmul.matmul,
    "neg": elementwise.neg, "exp": elementwise.exp, "log": elementwise.log,
    "sqrt": elementwise.sqrt, "abs": elementwise.abs,
    "maximum": elementwise.maximum, "minimum": elementwise.minimum,
    "clamp": elementwise.clamp, "clip": elementwise.clamp,
    "relu": activation.relu, "leaky_relu": activation.leaky_relu,
    "sigmoid": activation.sigmoid, "tanh": activation.tanh, "gelu": activation.gelu,
    "softmax": activation.softmax, "log_softmax": activation.log_softmax,
    "sum": reduce.sum, "mean": reduce.mean, "max": reduce.max, "min": reduce.min,
    "amax": reduce.amax, "amin": reduce.amin,
    "var": reduce.var, "std": reduce.std, "logsumexp": reduce.logsumexp,
    "argmax": reduce.argmax, "argmin": reduce.argmin,
    "reshape": shape.reshape, "view": shape.reshape, "permute": shape.permute,
    "transpose": shape.transpose, "expand": shape.expand, "broadcast_to": shape.expand,
    "flatten": shape.flatten, "squeeze": shape.squeeze, "unsqueeze": shape.unsqueeze,
    "split": shape.split, "chunk": shape.chunk,
}

for _name, _function in _METHODS.items():
    setattr(Tensor, _name, _function)


def _expand_as(self, other):
    return shape.expand(self, other.shape)


def _view_as(self, other):
    return shape.reshape(self, other.shape)


def _all(self):
    return bool(backend.to_python(self.array.all()))


def _any(self):
    return bool(backend.to_python(self.array.any()))


def _setitem(self, index, value):
    """x[index] = value, in place (masks, slices and integer arrays as in NumPy).

    Refused on a tensor that requires grad while grad mode is on: autograd would not see it.
    """
    xp = backend.array_module(self.array)
    value = value.array if isinstance(value, Tensor) else value
    if self.requires_grad and grad_mode.is_grad_enabled():
        raise RuntimeError(
            f"x[...] = value on a tensor that requires grad (shape {self.shape}) would be invisible to "
            f"autograd; do it under minigrad.no_grad(), or on x.data"
        )
    if isinstance(value, numpy.ndarray) or backend.is_gpu_array(value):
        value = backend.to_device(value, self.device)
    self.array[indexing._raw_index(index, xp)] = value


Tensor.__setitem__ = _setitem
Tensor.expand_as = _expand_as
Tensor.view_as = _view_as
Tensor.reshape_as = _view_as
Tensor.T = property(lambda self: shape.permute(self, tuple(reversed(range(self.ndim)))))
Tensor.all = _all
Tensor.any = _any


def _to(self, device=None, dtype=None):
    """A copy on `device` and/or with `dtype`; returns self when nothing changes.

    Like an op, it is differentiable: gradients flow back to the original device.
    """
    result = self
    if isinstance(device, (numpy.dtype, type)) and dtype is None:
        device, dtype = None, device
    if device is not None and backend.normalize_device(device) != self.device:
        result = shape.ToDevice(backend.normalize_device(device))(result)
    if dtype is not None and numpy.dtype(dtype) != self.dtype:
        result = shape.Cast(dtype)(result)
    return result


def _clone(self):
    """A copy that stays in the graph (gradients flow back to self)."""
    return shape.Clone()(self)


Tensor.to = _to
Tensor.clone = _clone
