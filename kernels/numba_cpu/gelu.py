"""GELU on the CPU with Numba (the exact one, approximate='none'): forward and backward in one pass each.

    forward:   y  = x * Phi(x),                    Phi(x) = (1 + erf(x / sqrt 2)) / 2
    backward:  dx = dy * (Phi(x) + x * phi(x)),    phi(x) = exp(-x^2 / 2) / sqrt(2 pi)

The NumPy reference (minigrad.ops.activation.gelu_forward_numpy, gelu_backward_numpy) has no
vectorised erf in NumPy and calls math.erf once per number from Python; here the same libm erf
runs compiled, a loop over the flat array. erf and exp are computed in float64 and the result
rounded to the array's dtype, as the reference does: the results agree to that rounding.

    x, y, dy, dx (any shape; flattened here)  float32 or float64
"""
import math

from numba import njit, prange

from . import run_loop, workspace

_SQRT_HALF = 1.0 / math.sqrt(2.0)
_INV_SQRT_2PI = 1.0 / math.sqrt(2.0 * math.pi)


@njit(parallel=True, cache=True)
def _forward_flat(x, y):
    for i in prange(x.size):
        v = float(x[i])
        y[i] = v * 0.5 * (1.0 + math.erf(v * _SQRT_HALF))


@njit(parallel=True, cache=True)
def _backward_flat(x, dy, dx):
    for i in prange(x.size):
        v = float(x[i])
        cdf = 0.5 * (1.0 + math.erf(v * _SQRT_HALF))
        pdf = math.exp(-0.5 * v * v) * _INV_SQRT_2PI
        dx[i] = dy[i] * (cdf + v * pdf)


# Serial twins for small arrays (LIMITS["serial_below_bytes"]): no wake-up of Numba's threads.
_forward_serial_loop = njit(nogil=True)(_forward_flat.py_func)
_backward_serial_loop = njit(nogil=True)(_backward_flat.py_func)


@njit(nogil=True, cache=True)
def _forward_flat_serial(x, y):
    _forward_serial_loop(x, y)


@njit(nogil=True, cache=True)
def _backward_flat_serial(x, dy, dx):
    _backward_serial_loop(x, dy, dx)


def _flat(array):
    return (array if array.flags.c_contiguous else array.copy(order="C")).reshape(-1)


def gelu_forward(x):
    """y = x * Phi(x), a new pooled array of x's shape and dtype."""
    y = workspace.empty(x.shape, x.dtype)
    if x.size:
        run_loop(_forward_flat_serial, _forward_flat, x.nbytes, _flat(x), y.reshape(-1))
    return y


def gelu_backward(x, dy):
    """dx = dy * (Phi(x) + x phi(x)), a new pooled array of dy's shape and dtype."""
    dx = workspace.empty(dy.shape, dy.dtype)
    if dy.size:
        run_loop(_backward_flat_serial, _backward_flat, dy.nbytes, _flat(x), _flat(dy), dx.reshape(-1))
    return dx
