"""Max pooling on the CPU with Numba, forward and backward.

Forward: one loop iteration (one `prange` index) owns one plane (n, c). For
each output position it scans the window's taps in (kh, kw) order over the
padded plane (padding reads as -inf) and keeps the largest value and where it
came from:

    y[n, c, oh, ow]            = max over (kh, kw) of x_padded[n, c, oh*SH + kh, ow*SW + kw]
    argmax_index[n, c, oh, ow] = row * WP + column of that maximum in the PADDED (HP, WP) plane

A later tap wins only if strictly greater, so ties go to the first tap (and a
NaN met first stays), exactly as the NumPy reference decides.

Backward: the max is a selection, so its gradient routes dy to the winner:

    dx_padded[n, c].flat[argmax_index[n, c, oh, ow]] += dy[n, c, oh, ow],   dx = dx_padded without padding

(`+=`: overlapping windows can pick the same pixel). One iteration owns one
plane of dx, so there are no races, and the terms are added in (oh, ow) order,
so the result is deterministic.

    x, dx (N, C, H, W)    y, dy, argmax_index (N, C, OH, OW), argmax_index int64
Reference: minigrad.ops.pool.max_pool2d_forward_numpy / max_pool2d_backward_numpy
(same signatures; forward bit for bit, backward equal up to the order of float sums).
"""
import numpy
from numba import njit, prange

from . import run_loop, workspace
from ..geometry import output_size


@njit(parallel=True, cache=True, fastmath=False)
def _max_pool_planes(x, y, argmax_index, kernel_h, kernel_w, stride_h, stride_w, pad_h, pad_w):
    n_images, channels, height, width = x.shape
    out_h, out_w = y.shape[2], y.shape[3]
    padded_w = width + 2 * pad_w
    for plane in prange(n_images * channels):
        n = plane // channels
        c = plane % channels
        for oh in range(out_h):
            for ow in range(out_w):
                best = -numpy.inf
                best_index = -1
                for kh in range(kernel_h):
                    row = oh * stride_h + kh                   # in the padded plane
                    h = row - pad_h
                    for kw in range(kernel_w):
                        column = ow * stride_w + kw
                        w = column - pad_w
                        value = -numpy.inf
                        if 0 <= h < height and 0 <= w < width:
                            value = x[n, c, h, w]
                        if best_index < 0 or value > best:     # strict: the first max wins ties
                            best = value
                            best_index = row * padded_w + column
                y[n, c, oh, ow] = best
                argmax_index[n, c, oh, ow] = best_index


@njit(parallel=True, cache=True, fastmath=False)
def _max_pool_backward_planes(dy, argmax_index, dx, pad_h, pad_w):
    n_images, channels, height, width = dx.shape
    out_h, out_w = dy.shape[2], dy.shape[3]
    padded_w = width + 2 * pad_w
    for plane in prange(n_images * channels):
        n = plane // channels
        c = plane % channels
        dx[n, c] = 0                                           # dx comes uninitialised from the pool
        for oh in range(out_h):
            for ow in range(out_w):
                index = argmax_index[n, c, oh, ow]
                h = index // padded_w - pad_h
                w = index % padded_w - pad_w
                if 0 <= h < height and 0 <= w < width:         # a padding winner has no input to reach
                    dx[n, c, h, w] += dy[n, c, oh, ow]


@njit(parallel=True, cache=True, fastmath=False)
def _max_pool_2x2_planes(x, y, argmax_index):
    """The 2x2, stride-2, unpadded pool (LeNet's, the MNIST CNN's), the same rule as _max_pool_planes:
    taps in (kh, kw) order, a later one wins only if strictly greater. With no padding to test and
    four fixed taps, each output is four reads and three comparisons."""
    n_images, channels, height, width = x.shape
    out_h, out_w = y.shape[2], y.shape[3]
    for plane in prange(n_images * channels):
        n = plane // channels
        c = plane % channels
        for oh in range(out_h):
            top = 2 * oh
            for ow in range(out_w):
                left = 2 * ow
                best = x[n, c, top, left]
                best_index = top * width + left
                value = x[n, c, top, left + 1]
                if value > best:
                    best = value
                    best_index = top * width + left + 1
                value = x[n, c, top + 1, left]
                if value > best:
                    best = value
                    best_index = (top + 1) * width + left
                value = x[n, c, top + 1, left + 1]
                if value > best:
                    best = value
                    best_index = (top + 1) * width + left + 1
                y[n, c, oh, ow] = best
                argmax_index[n, c, oh, ow] = best_index


# Serial twins for small arrays (LIMITS["serial_below_bytes"], as im2col's): the same loops compiled without
# `parallel`, so a small batch pays no wake-up of Numba's threads.
_planes_serial_loop = njit(nogil=True)(_max_pool_planes.py_func)
_backward_serial_loop = njit(nogil=True)(_max_pool_backward_planes.py_func)


@njit(nogil=True, cache=True)
def _max_pool_planes_serial(x, y, argmax_index, kernel_h, kernel_w, stride_h, stride_w, pad_h, pad_w):
    _planes_serial_loop(x, y, argmax_index, kernel_h, kernel_w, stride_h, stride_w, pad_h, pad_w)


@njit(nogil=True, cache=True)
def _max_pool_backward_planes_serial(dy, argmax_index, dx, pad_h, pad_w):
    _backward_serial_loop(dy, argmax_index, dx, pad_h, pad_w)


_2x2_serial_loop = njit(nogil=True)(_max_pool_2x2_planes.py_func)


@njit(nogil=True, cache=True)
def _max_pool_2x2_planes_serial(x, y, argmax_index):
    _2x2_serial_loop(x, y, argmax_index)


def max_pool2d_forward(x, kernel_h, kernel_w, stride, padding):
    """x (N, C, H, W) -> (y, argmax_index), both (N, C, OH, OW); stride and padding are (h, w) pairs."""
    n_images, channels, height, width = x.shape
    out_h = output_size(height, kernel_h, stride[0], padding[0], 1)
    out_w = output_size(width, kernel_w, stride[1], padding[1], 1)
    if out_h < 1 or out_w < 1:
        raise ValueError(f"max_pool2d: kernel_size ({kernel_h}, {kernel_w}) is larger than the padded input "
                         f"{height + 2 * padding[0]}x{width + 2 * padding[1]} (input shape {tuple(x.shape)})")
    x = numpy.ascontiguousarray(x)
    y = workspace.empty((n_images, channels, out_h, out_w), x.dtype)                 # pooled: no fresh pages
    argmax_index = workspace.empty((n_images, channels, out_h, out_w), numpy.int64)
    if y.size and (kernel_h, kernel_w, tuple(stride), tuple(padding)) == (2, 2, (2, 2), (0, 0)):
        run_loop(_max_pool_2x2_planes_serial, _max_pool_2x2_planes, x.nbytes, x, y, argmax_index)
    elif y.size:
        run_loop(_max_pool_planes_serial, _max_pool_planes, x.nbytes,
                 x, y, argmax_index, kernel_h, kernel_w, stride[0], stride[1], padding[0], padding[1])
    return y, argmax_index


def max_pool2d_backward(dy, argmax_index, x_shape, kernel_h, kernel_w, stride, padding):
    """dx (N, C, H, W): each dy added onto the input pixel its window took the maximum from."""
    if tuple(dy.shape) != tuple(argmax_index.shape):
        raise ValueError(f"max_pool2d backward: dy has shape {tuple(dy.shape)} but argmax_index has shape "
                         f"{tuple(argmax_index.shape)}; both must be (N, C, OH, OW)")
    dy = numpy.ascontiguousarray(dy)
    dx = workspace.empty(tuple(x_shape), dy.dtype)             # zeroed plane by plane in the loop
    if not dy.size:
        dx[...] = 0
    else:
        run_loop(_max_pool_backward_planes_serial, _max_pool_backward_planes, dx.nbytes,
                 dy, numpy.ascontiguousarray(argmax_index), dx, padding[0], padding[1])
    return dx
