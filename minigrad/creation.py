"""Tensor creation: zeros, ones, full, empty, arange, eye, rand, randn, randint, linspace and *_like.

Random tensors draw from NumPy's global generator (seeded by
`minigrad.manual_seed`) and are then moved to the requested device, so a given
seed gives the same numbers on CPU and GPU.
"""
import numpy

from minigrad import backend
from minigrad.tensor import DEFAULT_DTYPE, Tensor


def _shape(size):
    return tuple(size[0]) if len(size) == 1 and isinstance(size[0], (tuple, list)) else tuple(size)


def _new(array, dtype, requires_grad, device):
    array = backend.to_device(array.astype(dtype or DEFAULT_DTYPE, copy=False), backend.normalize_device(device))
    return Tensor(array, requires_grad=requires_grad, device=device)


def zeros(*size, dtype=None, requires_grad=False, device="cpu"):
    xp = backend.module_for(device)
    return Tensor(xp.zeros(_shape(size), dtype=dtype or DEFAULT_DTYPE), requires_grad=requires_grad, device=device)


def ones(*size, dtype=None, requires_grad=False, device="cpu"):
    xp = backend.module_for(device)
    return Tensor(xp.ones(_shape(size), dtype=dtype or DEFAULT_DTYPE), requires_grad=requires_grad, device=device)


def full(size, fill_value, dtype=None, requires_grad=False, device="cpu"):
    xp = backend.module_for(device)
    return Tensor(xp.full(_shape((size,)), fill_value, dtype=dtype or DEFAULT_DTYPE),
                  requires_grad=requires_grad, device=device)


def empty(*size, dtype=None, requires_grad=False, device="cpu"):
    xp = backend.module_for(device)
    return Tensor(xp.empty(_shape(size), dtype=dtype or DEFAULT_DTYPE), requires_grad=requires_grad, device=device)


def arange(start, end=None, step=1, dtype=None, requires_grad=False, device="cpu"):
    """Like torch.arange: integer arguments give int64, any float gives the default float dtype."""
    if end is None:
        start, end = 0, start
    if dtype is None:
        dtype = numpy.int64 if all(isinstance(v, int) for v in (start, end, step)) else DEFAULT_DTYPE
    xp = backend.module_for(device)
    return Tensor(xp.arange(start, end, step, dtype=dtype), requires_grad=requires_grad, device=device)


def linspace(start, end, steps, dtype=None, requires_grad=False, device="cpu"):
    xp = backend.module_for(device)
    return Tensor(xp.linspace(start, end, steps, dtype=dtype or DEFAULT_DTYPE), requires_grad=requires_grad, device=device)


def eye(n, m=None, dtype=None, requires_grad=False, device="cpu"):
    xp = backend.module_for(device)
    return Tensor(xp.eye(n, m, dtype=dtype or DEFAULT_DTYPE), requires_grad=requires_grad, device=device)


def rand(*size, dtype=None, requires_grad=False, device="cpu"):
    """Uniform on [0, 1)."""
    return _new(numpy.random.random_sample(_shape(size)), dtype, requires_grad, device)


def randn(*size, dtype=None, requires_grad=False, device="cpu"):
    """Standard normal."""
    return _new(numpy.random.standard_normal(_shape(size)), dtype, requires_grad, device)


def randint(low, high=None, size=(), dtype=numpy.int64, device="cpu"):
    """Integers uniform on [low, high) (or [0, low) when high is omitted)."""
    if high is None:
        low, high = 0, low
    return _new(numpy.random.randint(low, high, size=_shape((size,))), dtype, False, device)


def zeros_like(t, dtype=None, requires_grad=False, device=None):
    return zeros(t.shape, dtype=dtype or t.dtype, requires_grad=requires_grad, device=device or t.device)


def ones_like(t, dtype=None, requires_grad=False, device=None):
    return ones(t.shape, dtype=dtype or t.dtype, requires_grad=requires_grad, device=device or t.device)


def full_like(t, fill_value, dtype=None, requires_grad=False, device=None):
    return full(t.shape, fill_value, dtype=dtype or t.dtype, requires_grad=requires_grad, device=device or t.device)


def empty_like(t, dtype=None, requires_grad=False, device=None):
    return empty(t.shape, dtype=dtype or t.dtype, requires_grad=requires_grad, device=device or t.device)


def rand_like(t, dtype=None, requires_grad=False, device=None):
    return rand(t.shape, dtype=dtype or t.dtype, requires_grad=requires_grad, device=device or t.device)


def randn_like(t, dtype=None, requires_grad=False, device=None):
    return randn(t.shape, dtype=dtype or t.dtype, requires_grad=requires_grad, device=device or t.device)


def randint_like(t, low, high=None, dtype=None, device=None):
    return randint(low, high, t.shape, dtype=dtype or t.dtype, device=device or t.device)
