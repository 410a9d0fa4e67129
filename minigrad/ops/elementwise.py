"""Elementwise arithmetic and maths: + - * / ** neg exp log sqrt abs, maximum, minimum, where, clamp.

Broadcasting. NumPy stretches size-1 (or missing leading) axes so that, e.g.,
x (N, C) + b (C,) adds b to every row. In the backward pass each element of b
received N copies of the gradient, so db is dy summed over the stretched axes:
`unbroadcast(dy, b.shape)` does that sum.
"""
import numpy

from minigrad import backend
from minigrad.function import Function
from minigrad.tensor import Tensor


def unbroadcast(grad, shape):
    """Sum `grad` over the axes that broadcasting stretched, so it has `shape` again."""
    if tuple(grad.shape) == tuple(shape):
        return grad
    extra_leading = grad.ndim - len(shape)
    grad = grad.sum(axis=tuple(range(extra_leading))) if extra_leading else grad
    stretched = tuple(axis for axis, size in enumerate(shape) if size == 1 and grad.shape[axis] != 1)
    if stretched:
        grad = grad.sum(axis=stretched, keepdims=True)
    return grad


def _check_broadcast(op_name, a, b):
    """Raise a clear error when a and b cannot broadcast together."""
    if a.shape == b.shape:                     # the common case, without NumPy's general rule
        return a.shape
    try:
        return numpy.broadcast_shapes(a.shape, b.shape)
    except ValueError:
        raise ValueError(
            f"{op_name}: shapes {tuple(a.shape)} and {tuple(b.shape)} cannot broadcast "
            "(trailing dimensions must be equal or 1)"
        ) from None


class Add(Function):
    """y = a + b;  da = dy,  db = dy  (each summed back to its own shape)."""

    def forward(self, a, b):
        _check_broadcast("add", a, b)
        self.saved = (a.shape, b.shape)
        return a + b

    def backward(self, dy):
        a_shape, b_shape = self.saved
        return unbroadcast(dy, a_shape), unbroadcast(dy, b_shape)


class Sub(Function):
    """y = a - b;  da = dy,  db = -dy."""

    def forward(self, a, b):
        _check_broadcast("sub", a, b)
        self.saved = (a.shape, b.shape)
        return a - b

    def backward(self, dy):
        a_shape, b_shape = self.saved
        return unbroadcast(dy, a_shape), unbroadcast(-dy, b_shape)


class Mul(Function):
    """y = a * b;  da = dy * b,  db = dy * a."""

    def forward(self, a, b):
        _check_broadcast("mul", a, b)
        self.saved = (a, b)
        return a * b

    def backward(self, dy):
        a, b = self.saved
        return unbroadcast(dy * b, a.shape), unbroadcast(dy * a, b.shape)


class Div(Function):
    """y = a / b;  da = dy / b,  db = -dy * a / b^2."""

    def forward(self, a, b):
        _check_broadcast("div", a, b)
        self.saved = (a, b)
        return a / b

    def backward(self, dy):
        a, b = self.saved
        da = dy / b
        return unbroadcast(da, a.shape), unbroadcast(-da * a / b, b.shape)


class Pow(Function):
    """y = a ** b;  da = dy * b * a^(b-1),  db = dy * y * log(a)  (taken as 0 where a <= 0)."""

    def forward(self, a, b):
        _check_broadcast("pow", a, b)
        y = a ** b
        self.saved = (a, b, y)
        return y

    def backward(self, dy):
        a, b, y = self.saved
        xp = backend.array_module(a)
        da = unbroadcast(dy * b * a ** (b - 1), a.shape) if self.needs_input_grad[0] else None
        db = None
        if self.needs_input_grad[1]:
            positive = a > 0
            log_a = xp.log(xp.where(positive, a, 1))
            db = unbroadcast(xp.where(positive, dy * y * log_a, 0), b.shape)
        return da, db


class Neg(Function):
    """y = -x;  dx = -dy."""

    def forward(self, x):
        return -x

    def backward(self, dy):
        return -dy


class Exp(Function):
    """y = e^x;  dx = dy * y."""

    def forward(self, x):
        y = backend.array_module(x).exp(x)
        self.saved = (y,)
        return y

    def backward(self, dy):
        (y,) = self.saved
        return dy * y


class Log(Function):
    """y = ln x;  dx = dy / x."""

    def forward(self, x):
        self.saved = (x,)
        return backend.array_module(x).log(x)

    def backward(self, dy):
        (x,) = self.saved
        return dy / x


class Sqrt(Function):
    """y = sqrt(x);  dx = dy / (2 y)."""

    def forward(self, x):
        y = backend.array_module(x).sqrt(x)
        self.saved = (y,)
        return y

    def backward(self, dy):
        (y,) = self.saved
        return dy / (2 * y)


class Abs(Function):
    """y = |x|;  dx = dy * sign(x)  (0 at x = 0, as in PyTorch)."""

    def forward(self, x):
        xp = backend.array_module(x)
        self.saved = (x,)
        return xp.abs(x)

    def backward(self, dy):
        (x,) = self.saved
        return dy * backend.array_module(x).sign(x)


class Maximum(Function):
    """y = max(a, b) elementwise; the gradient goes to the larger input, split evenly on ties."""

    def forward(self, a, b):
        _check_broadcast("maximum", a, b)
        xp = backend.array_module(a)
        self.saved = (a, b)
        return xp.maximum(a, b)

    def backward(self, dy):
        a, b = self.saved
        share_a = (a > b) + 0.5 * (a == b)
        return unbroadcast(dy * share_a, a.shape), unbroadcast(dy * (1 - share_a), b.shape)


class Minimum(Function):
    """y = min(a, b) elementwise; the gradient goes to the smaller input, split evenly on ties."""

    def forward(self, a, b):
        _check_broadcast("minimum", a, b)
        xp = backend.array_module(a)
        self.saved = (a, b)
        return xp.minimum(a, b)

    def backward(self, dy):
        a, b = self.saved
        share_a = (a < b) + 0.5 * (a == b)
        return unbroadcast(dy * share_a, a.shape), unbroadcast(dy * (1 - share_a), b.shape)


class Where(Function):
    """y = a where condition else b;  da = dy where condition,  db = dy elsewhere."""

    def __init__(self, condition):
        self.condition = condition

    def forward(self, a, b):
        xp = backend.array_module(a)
        self.saved = (a.shape, b.shape)
        return xp.where(self.condition, a, b)

    def backward(self, dy):
        a_shape, b_shape = self.saved
        zero = dy.dtype.type(0)
        xp = backend.array_module(dy)
        da = xp.where(self.condition, dy, zero)
        db = xp.where(self.condition, zero, dy)
        return unbroadcast(da, a_shape), unbroadcast(db, b_shape)


class Clamp(Function):
    """y = min(max(x, low), high);  dx = dy where low <= x <= high, else 0."""

    def __init__(self, low=None, high=None):
        if low is None and high is None:
            raise ValueError("clamp: at least one of min and max must be given")
        self.low, self.high = low, high

    def forward(self, x):
        xp = backend.array_module(x)
        self.saved = (x,)
        return xp.clip(x, self.low, self.high)

    def backward(self, dy):
        (x,) = self.saved
        inside = True
        if self.low is not None:
            inside = inside & (x >= self.low)
        if self.high is not None:
            inside = inside & (x <= self.high)
        return dy * inside


# ---------------------------------------------------------------- user-facing wrappers
def _pair(a, b):
    """Turn Python numbers / arrays into Tensors matching the other operand's dtype and device."""
    if isinstance(a, Tensor) and isinstance(b, Tensor):
        return a, b
    like = a if isinstance(a, Tensor) else b
    xp = backend.array_module(like.array)
    if not isinstance(a, Tensor):
        a = Tensor._make(xp.asarray(a, dtype=_result_dtype(a, like)), like.device)
    if not isinstance(b, Tensor):
        b = Tensor._make(xp.asarray(b, dtype=_result_dtype(b, like)), like.device)
    return a, b


def _result_dtype(value, like):
    """A Python scalar takes the tensor's dtype (as in PyTorch: float32 + 2.0 stays float32)."""
    if like.dtype.kind in "iub" and isinstance(value, float):
        return "float32"
    if hasattr(value, "dtype"):
        return value.dtype
    return like.dtype


def add(a, b):
    return Add()(*_pair(a, b))


def sub(a, b):
    return Sub()(*_pair(a, b))


def mul(a, b):
    return Mul()(*_pair(a, b))


def div(a, b):
    return Div()(*_pair(a, b))


def pow(a, b):
    return Pow()(*_pair(a, b))


def neg(x):
    return Neg()(x)


def exp(x):
    return Exp()(x)


def log(x):
    return Log()(x)


def sqrt(x):
    return Sqrt()(x)


def abs(x):
    return Abs()(x)


def maximum(a, b):
    return Maximum()(*_pair(a, b))


def minimum(a, b):
    return Minimum()(*_pair(a, b))


def where(condition, a, b):
    """Elementwise `a if condition else b`; condition is a boolean Tensor or array (no gradient)."""
    from minigrad.tensor import Tensor

    a, b = _pair(a, b)
    condition = condition.array if isinstance(condition, Tensor) else condition
    return Where(condition)(a, b)


def clamp(x, min=None, max=None):
    return Clamp(min, max)(x)


clip = clamp
