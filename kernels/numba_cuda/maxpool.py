"""2-D max pooling as Numba CUDA kernels, forward and backward.

    x, dx                   (N, C, H, W)     float32 or float64 (one compiled version per dtype)
    y, dy, argmax_index     (N, C, OH, OW)   argmax_index int64: row * WP + column of the
                                             winner in the PADDED (HP, WP) plane of its (n, c)

Forward, one thread per OUTPUT element (n, c, oh, ow):
    y = max over (kh, kw) of x_padded[n, c, oh*SH + kh, ow*SW + kw]      (padding = -inf)
scanning the taps in (kh, kw) order from tap (0, 0); a later tap wins only if
strictly greater (ties go to the first tap, a NaN met first stays).

Backward, one thread per INPUT pixel (n, c, h, w), a gather:
    dx[n, c, h, w] = sum of dy[n, c, oh, ow] over the windows that contain the pixel
                     and whose argmax_index is (h + PH) * WP + (w + PW)
Each pixel lists its at most KH*KW windows (output_reading, shared with
col2im), so there is one writer per dx element: no atomics, deterministic.

Must equal: minigrad.ops.pool.max_pool2d_forward_numpy / max_pool2d_backward_numpy
(same signatures), and kernels/cuda/maxpool_forward.cu / maxpool_backward.cu.
The per-thread functions are plain Python, called by the kernels as device
functions and by the CPU references (`*_cpu`) in a loop.
Tested under the CUDA simulator (NUMBA_ENABLE_CUDASIM=1) in tests/test_kernels_cuda_sim.py.
"""
import math

import numpy
from numba import cuda

from ..geometry import check_shape, pool_geometry, pooled_shape
from .col2im import _output_reading_device, output_reading

THREADS_PER_BLOCK = 128


def max_pool_forward_element(x, y, argmax_index, i, geometry):
    """Write y.flat[i] and argmax_index.flat[i] from the flat (N*C*H*W,) input x."""
    (batch, channels, height, width, kernel_h, kernel_w, stride_h, stride_w,
     pad_h, pad_w, dilation_h, dilation_w, out_h, out_w) = geometry
    ow = i % out_w
    oh = (i // out_w) % out_h
    plane_start = (i // (out_w * out_h)) * height * width   # first pixel of plane (n, c)
    padded_w = width + 2 * pad_w
    best = -math.inf
    best_index = -1
    for kh in range(kernel_h):
        row = oh * stride_h + kh                             # in the padded plane
        h = row - pad_h
        for kw in range(kernel_w):
            column = ow * stride_w + kw
            w = column - pad_w
            value = -math.inf                                # padding
            if 0 <= h < height and 0 <= w < width:
                value = x[plane_start + h * width + w]
            if best_index < 0 or value > best:               # first tap, or strictly greater
                best = value
                best_index = row * padded_w + column
    y[i] = best
    argmax_index[i] = best_index


def make_max_pool_backward_element(output_reading):
    """Build the per-thread backward function around an `output_reading` (Python or device version)."""

    def max_pool_backward_element(dy, argmax_index, i, geometry):
        """dx.flat[i], gathered from the flat dy and argmax_index."""
        (batch, channels, height, width, kernel_h, kernel_w, stride_h, stride_w,
         pad_h, pad_w, dilation_h, dilation_w, out_h, out_w) = geometry
        w = i % width
        h = (i // width) % height
        plane_start = (i // (width * height)) * out_h * out_w   # first output of plane (n, c)
        me = (h + pad_h) * (width + 2 * pad_w) + (w + pad_w)     # this pixel in the padded plane
        total = 0.0
        for kh in range(kernel_h):
            oh = output_reading(h, kh, stride_h, pad_h, 1, out_h)
            if oh < 0:
                continue
            for kw in range(kernel_w):
                ow = output_reading(w, kw, stride_w, pad_w, 1, out_w)
                if ow < 0:
                    continue
                j = plane_start + oh * out_w + ow                # window (n, c, oh, ow)
                if argmax_index[j] == me:
                    total += dy[j]
        return total

    return max_pool_backward_element


max_pool_backward_element = make_max_pool_backward_element(output_reading)
_forward_element_device = cuda.jit(device=True)(max_pool_forward_element)
_backward_element_device = cuda.jit(device=True)(make_max_pool_backward_element(_output_reading_device))


@cuda.jit
def max_pool_forward_kernel(x, y, argmax_index, geometry):
    """x, y, argmax_index: flat views; geometry: the 14-int tuple of kernels.geometry."""
    start, step = cuda.grid(1), cuda.gridsize(1)
    for i in range(start, y.size, step):
        _forward_element_device(x, y, argmax_index, i, geometry)


@cuda.jit
def max_pool_backward_kernel(dy, argmax_index, dx, geometry):
    """dy, argmax_index, dx: flat views; geometry: the 14-int tuple of kernels.geometry."""
    start, step = cuda.grid(1), cuda.gridsize(1)
    for i in range(start, dx.size, step):
        dx[i] = _backward_element_device(dy, argmax_index, i, geometry)


# ------------------------------------------------------------------ CPU references (slow; tiny inputs)
def max_pool_forward_cpu(x, geometry):
    """The same per-thread forward function, one 'thread' after another."""
    x_flat = numpy.ascontiguousarray(x).ravel()
    y = numpy.empty(pooled_shape(geometry), dtype=x.dtype)
    argmax_index = numpy.empty(pooled_shape(geometry), dtype=numpy.int64)
    for i in range(y.size):
        max_pool_forward_element(x_flat, y.reshape(-1), argmax_index.reshape(-1), i, geometry)
    return y, argmax_index


def max_pool_backward_cpu(dy, argmax_index, x_shape, geometry):
    """The same per-thread backward function, one 'thread' after another."""
    dy_flat, index_flat = numpy.ascontiguousarray(dy).ravel(), numpy.ascontiguousarray(argmax_index).ravel()
    dx = numpy.empty(tuple(x_shape), dtype=dy.dtype)
    dx_flat = dx.reshape(-1)
    for i in range(dx_flat.size):
        dx_flat[i] = max_pool_backward_element(dy_flat, index_flat, i, geometry)
    return dx


# ------------------------------------------------------------------ launchers (signatures of the NumPy reference)
def max_pool_forward(x, kernel_h, kernel_w, stride, padding, empty=numpy.empty):
    """x (N, C, H, W) -> (y, argmax_index), as max_pool2d_forward_numpy; empty: x's library's allocator."""
    geometry = pool_geometry("max_pool2d", x.shape, (kernel_h, kernel_w), stride, padding)
    x_flat = x.ravel()
    y = empty(pooled_shape(geometry), dtype=x.dtype)                     # (N, C, OH, OW)
    argmax_index = empty(pooled_shape(geometry), dtype=numpy.int64)      # (N, C, OH, OW)
    if y.size:
        blocks = (y.size + THREADS_PER_BLOCK - 1) // THREADS_PER_BLOCK
        max_pool_forward_kernel[blocks, THREADS_PER_BLOCK](
            x_flat, y.reshape(-1), argmax_index.reshape(-1), tuple(geometry)
        )
    return y, argmax_index


def max_pool_backward(dy, argmax_index, x_shape, kernel_h, kernel_w, stride, padding, empty=numpy.empty):
    """dy (N, C, OH, OW) -> dx (N, C, H, W), as max_pool2d_backward_numpy; empty: dy's library's allocator."""
    geometry = pool_geometry("max_pool2d", tuple(x_shape), (kernel_h, kernel_w), stride, padding)
    for name, array in (("dy", dy), ("argmax_index", argmax_index)):
        check_shape("max_pool2d backward", name, array.shape, pooled_shape(geometry), "(N, C, OH, OW)", x_shape)
    dy_flat = dy.ravel()
    index_flat = argmax_index.astype(numpy.int64, copy=False).ravel()
    dx = empty(tuple(int(s) for s in x_shape), dtype=dy.dtype)          # (N, C, H, W)
    if dx.size:
        blocks = (dx.size + THREADS_PER_BLOCK - 1) // THREADS_PER_BLOCK
        max_pool_backward_kernel[blocks, THREADS_PER_BLOCK](dy_flat, index_flat, dx.reshape(-1), tuple(geometry))
    return dx
