"""Reductions: sum, mean, max, min, var, std, logsumexp (differentiable); argmax, argmin (not).

`axis` (alias `dim`) may be None (all axes), an int or a tuple; `keepdims`
(alias `keepdim`) keeps reduced axes with size 1. In backward, dy has the
reduced shape; `_expand_back` puts the size-1 axes back so dy broadcasts over
the input again.
"""
import builtins
from collections import namedtuple

from minigrad import backend
from minigrad.function import Function

ValuesIndices = namedtuple("ValuesIndices", ["values", "indices"])


def normalize_axes(axis, ndim, op_name="reduce"):
    """None -> all axes; int or tuple -> tuple of non-negative axes, checked against ndim."""
    if axis is None:
        return tuple(range(ndim))
    axes = (axis,) if isinstance(axis, int) else tuple(axis)
    result = []
    for a in axes:
        if not -builtins.max(ndim, 1) <= a < builtins.max(ndim, 1):
            raise IndexError(f"{op_name}: dim {a} is out of range for a tensor with {ndim} dimensions")
        result.append(a % builtins.max(ndim, 1))
    return tuple(sorted(set(result)))


def _expand_back(dy, axes, keepdims, ndim):
    """Reinsert the reduced axes as size 1 so dy broadcasts against the input."""
    if keepdims or ndim == 0:
        return dy
    for a in axes:
        dy = backend.array_module(dy).expand_dims(dy, a)
    return dy


class Sum(Function):
    """y = sum over axes of x;  dx = dy broadcast back to x's shape."""

    def __init__(self, axis=None, keepdims=False):
        self.axis, self.keepdims = axis, keepdims

    def forward(self, x):
        self.axes = normalize_axes(self.axis, x.ndim, "sum")
        self.saved = (x.shape, x.ndim)
        return x.sum(axis=self.axes if x.ndim else None, keepdims=self.keepdims)

    def backward(self, dy):
        shape, ndim = self.saved
        dy = _expand_back(dy, self.axes, self.keepdims, ndim)
        return backend.array_module(dy).broadcast_to(dy, shape).copy()


class Mean(Function):
    """y = (1/n) sum over axes of x, n = number of elements reduced;  dx = dy / n broadcast."""

    def __init__(self, axis=None, keepdims=False):
        self.axis, self.keepdims = axis, keepdims

    def forward(self, x):
        self.axes = normalize_axes(self.axis, x.ndim, "mean")
        self.saved = (x.shape, x.ndim)
        return x.mean(axis=self.axes if x.ndim else None, keepdims=self.keepdims)

    def backward(self, dy):
        shape, ndim = self.saved
        count = 1
        for a in self.axes:
            count *= shape[a] if ndim else 1
        dy = _expand_back(dy, self.axes, self.keepdims, ndim) / count
        return backend.array_module(dy).broadcast_to(dy, shape).copy()


class MaxMin(Function):
    """y = max (or min) over axes;  dx = dy at the positions that attain it, split evenly on ties.

    (Ties get equal shares so that the gradient is a valid subgradient of the max.)
    """

    def __init__(self, axis=None, keepdims=False, largest=True):
        self.axis, self.keepdims, self.largest = axis, keepdims, largest

    def forward(self, x):
        if x.size == 0:
            raise ValueError(f"{'max' if self.largest else 'min'}: the input is empty")
        self.axes = normalize_axes(self.axis, x.ndim, "max" if self.largest else "min")
        reduce = x.max if self.largest else x.min
        y = reduce(axis=self.axes if x.ndim else None, keepdims=True)
        self.saved = (x, y)
        return y if self.keepdims else y.reshape([s for i, s in enumerate(x.shape) if i not in self.axes])

    def backward(self, dy):
        x, y = self.saved
        dy = _expand_back(dy, self.axes, self.keepdims, x.ndim)
        hits = (x == y)
        count = hits.sum(axis=self.axes if x.ndim else None, keepdims=True)
        return hits * (dy / count)


class Var(Function):
    """y = sum (x - mean)^2 / (n - correction);  dx = dy * 2 (x - mean) / (n - correction).

    correction=1 is the unbiased estimator (PyTorch's default), 0 the population variance.
    """

    def __init__(self, axis=None, keepdims=False, correction=1):
        self.axis, self.keepdims, self.correction = axis, keepdims, correction

    def forward(self, x):
        self.axes = normalize_axes(self.axis, x.ndim, "var")
        count = 1
        for a in self.axes:
            count *= x.shape[a] if x.ndim else 1
        self.denominator = builtins.max(count - self.correction, 0)
        centered = x - x.mean(axis=self.axes if x.ndim else None, keepdims=True)
        self.saved = (centered,)
        total = (centered * centered).sum(axis=self.axes if x.ndim else None, keepdims=self.keepdims)
        with backend.numpy.errstate(divide="ignore", invalid="ignore"):
            return total / self.denominator

    def backward(self, dy):
        (centered,) = self.saved
        dy = _expand_back(dy, self.axes, self.keepdims, centered.ndim)
        return dy * 2 * centered / self.denominator


class LogSumExp(Function):
    """y = log sum exp(x), computed as m + log sum exp(x - m) with m = max x (no overflow);
    dx = dy * softmax(x) = dy * exp(x - y)."""

    def __init__(self, axis=None, keepdims=False):
        self.axis, self.keepdims = axis, keepdims

    def forward(self, x):
        xp = backend.array_module(x)
        self.axes = normalize_axes(self.axis, x.ndim, "logsumexp")
        axes = self.axes if x.ndim else None
        m = x.max(axis=axes, keepdims=True)
        m = xp.where(xp.isfinite(m), m, 0)  # all -inf rows stay -inf instead of NaN
        with backend.numpy.errstate(divide="ignore"):  # log(0) = -inf is the right answer there
            y = m + xp.log(xp.exp(x - m).sum(axis=axes, keepdims=True))
        self.saved = (x, y)
        return y if self.keepdims else y.reshape([s for i, s in enumerate(x.shape) if i not in self.axes])

    def backward(self, dy):
        x, y = self.saved
        dy = _expand_back(dy, self.axes, self.keepdims, x.ndim)
        return dy * backend.array_module(x).exp(x - y)


def _axis(axis, dim):
    return dim if axis is None else axis


def sum(x, axis=None, keepdims=False, *, dim=None, keepdim=None):
    return Sum(_axis(axis, dim), keepdims or bool(keepdim))(x)


def mean(x, axis=None, keepdims=False, *, dim=None, keepdim=None):
    return Mean(_axis(axis, dim), keepdims or bool(keepdim))(x)


def _max_or_min(x, axis, keepdims, largest):
    values = MaxMin(axis, keepdims, largest)(x)
    if axis is None or not isinstance(axis, int):
        return values
    # like torch.max(x, dim): (values, indices)
    return ValuesIndices(values, _arg(x, axis, keepdims, largest))


def max(x, axis=None, keepdims=False, *, dim=None, keepdim=None):
    """Max over all elements, or over `dim` returning (values, indices) as in PyTorch."""
    return _max_or_min(x, _axis(axis, dim), keepdims or bool(keepdim), True)


def min(x, axis=None, keepdims=False, *, dim=None, keepdim=None):
    return _max_or_min(x, _axis(axis, dim), keepdims or bool(keepdim), False)


def amax(x, axis=None, keepdims=False, *, dim=None, keepdim=None):
    return MaxMin(_axis(axis, dim), keepdims or bool(keepdim), True)(x)


def amin(x, axis=None, keepdims=False, *, dim=None, keepdim=None):
    return MaxMin(_axis(axis, dim), keepdims or bool(keepdim), False)(x)


def var(x, axis=None, keepdims=False, *, dim=None, keepdim=None, unbiased=None, correction=None):
    if correction is None:
        correction = 1 if unbiased is None or unbiased else 0
    return Var(_axis(axis, dim), keepdims or bool(keepdim), correction)(x)


def std(x, axis=None, keepdims=False, *, dim=None, keepdim=None, unbiased=None, correction=None):
    from minigrad.ops.elementwise import sqrt

    return sqrt(var(x, axis, keepdims, dim=dim, keepdim=keepdim, unbiased=unbiased, correction=correction))


def logsumexp(x, axis=None, keepdims=False, *, dim=None, keepdim=None):
    return LogSumExp(_axis(axis, dim), keepdims or bool(keepdim))(x)


def _arg(x, axis, keepdims, largest):
    from minigrad.tensor import Tensor

    data = x.array
    if axis is None:
        index = data.argmax() if largest else data.argmin()
        return Tensor._make(backend.array_module(data).asarray(index, dtype="int64"), x.device)
    (axis,) = normalize_axes(axis, data.ndim, "argmax" if largest else "argmin")
    index = data.argmax(axis=axis) if largest else data.argmin(axis=axis)
    if keepdims:
        index = backend.array_module(data).expand_dims(index, axis)
    return Tensor._make(index.astype("int64"), x.device)


def argmax(x, axis=None, keepdims=False, *, dim=None, keepdim=None):
    """Index of the largest element (over all elements, flattened, or along `dim`); no gradient."""
    return _arg(x, _axis(axis, dim), keepdims or bool(keepdim), True)


def argmin(x, axis=None, keepdims=False, *, dim=None, keepdim=None):
    return _arg(x, _axis(axis, dim), keepdims or bool(keepdim), False)
