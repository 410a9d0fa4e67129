"""ReLU on the CPU with Numba: forward and backward in one pass each.

    forward:   y = x if x > 0 else 0,   mask = (x > 0)       one read of x, two writes
    backward:  dx = dy where mask, else 0                     one read of dy and mask

The NumPy reference (minigrad.ops.activation.relu_forward_numpy, relu_backward_numpy)
computes the mask and the maximum in two passes, and its backward multiplies by
the mask (a bool -> float conversion). NaN: `zero if v <= 0 else v` keeps a NaN input
as NaN in y, as numpy.maximum does, and its mask is False, as `x > 0` is.
Elementwise, so `prange` over the flat array has no races; results equal the
reference bit for bit. The zero is written as `zero`, of the output's dtype: with a literal 0, Numba
types the select as float64 and converts each float32 result back (about 7% slower, 0-15% by shape, in an
interleaved A/B of the two versions).

    x, y, dy, dx (any shape, contiguous, flattened here)  float32 or float64;  mask bool

Fused with the addition before it (a residual block's relu(out + shortcut), minigrad.ops.activation
`add_relu`): forward z = relu(a + b) in one pass, no array for a + b; backward from the output,
dx = dz where z > 0 (z > 0 exactly where a + b > 0), so no mask is kept either.
"""
import numpy
from numba import njit, prange

from . import launch_lock, workspace


@njit(parallel=True, cache=True)
def _forward_flat(x, y, mask):
    zero = y.dtype.type(0)
    for i in prange(x.size):
        v = x[i]
        y[i] = zero if v <= 0 else v
        mask[i] = v > 0


@njit(parallel=True, cache=True)
def _backward_flat(dy, mask, dx):
    zero = dx.dtype.type(0)
    for i in prange(dy.size):
        dx[i] = dy[i] if mask[i] else zero


@njit(parallel=True, cache=True)
def _add_relu_flat(a, b, z):
    zero = z.dtype.type(0)
    for i in prange(a.size):
        v = a[i] + b[i]
        z[i] = zero if v <= 0 else v


@njit(parallel=True, cache=True)
def _backward_from_output_flat(dz, z, dx):
    zero = dx.dtype.type(0)
    for i in prange(dz.size):
        dx[i] = dz[i] if z[i] > 0 else zero


def _contiguous(array):
    """A C-contiguous array of the same shape (numpy.ascontiguousarray would make a 0-d array 1-d)."""
    return array if array.flags.c_contiguous else array.copy(order="C")


def relu_forward(x):
    """(y, mask) for any x: y = max(x, 0), mask = x > 0."""
    x = _contiguous(x)
    y, mask = workspace.empty(x.shape, x.dtype), workspace.empty(x.shape, numpy.bool_)
    with launch_lock:
        _forward_flat(x.reshape(-1), y.reshape(-1), mask.reshape(-1))
    return y, mask


def _one_pass(loop, out_dtype, *arrays):
    """A new pooled array of the first array's shape, filled by `loop` over the flattened, contiguous
    `arrays` (the output last): the wrapper of every one-output kernel in this file."""
    arrays = [_contiguous(array) for array in arrays]
    out = workspace.empty(arrays[0].shape, out_dtype)
    with launch_lock:
        loop(*(array.reshape(-1) for array in arrays), out.reshape(-1))
    return out


def relu_backward(dy, mask):
    """dx = dy where mask, else 0."""
    return _one_pass(_backward_flat, dy.dtype, dy, mask)


def add_relu_forward(a, b):
    """z = max(a + b, 0) for a and b of one shape and dtype."""
    return _one_pass(_add_relu_flat, a.dtype, a, b)


def relu_backward_from_output(dz, z):
    """dx = dz where z > 0, else 0 (z the ReLU's output)."""
    return _one_pass(_backward_from_output_flat, dz.dtype, dz, z)
