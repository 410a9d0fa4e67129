"""im2col as a Numba CUDA kernel: one thread computes ONE element of cols.

    x     (N, C, H, W)          float32 or float64 (Numba compiles one version per dtype)
    cols  (C*KH*KW, N*OH*OW)    row = (c, kh, kw), column = (n, oh, ow), both in C order

    cols[(c, kh, kw), (n, oh, ow)] = x[n, c, oh*SH - PH + kh*DH, ow*SW - PW + kw*DW]   (0 in the padding)

Thread i (grid-stride loop) writes cols.flat[i]; neighbouring threads write
neighbouring columns, so the writes coalesce. The per-thread maths lives in a
plain Python function, `im2col_element`, which the kernel calls as a CUDA
device function and `im2col_cpu` (the CPU reference) calls in a loop, so the
index arithmetic that runs on the GPU is the one the CPU reference checks.

Must equal: minigrad.ops.im2col.im2col_numpy (and kernels/cuda/im2col.cu).
Tested under the CUDA simulator (NUMBA_ENABLE_CUDASIM=1) in tests/test_kernels_cuda_sim.py.
"""
import numpy
from numba import cuda

from ..geometry import cols_shape, make_geometry

THREADS_PER_BLOCK = 128


def im2col_element(x, i, geometry):
    """cols.flat[i], read from the flat (N*C*H*W,) input x."""
    (batch, channels, height, width, kernel_h, kernel_w, stride_h, stride_w,
     pad_h, pad_w, dilation_h, dilation_w, out_h, out_w) = geometry
    columns = batch * out_h * out_w                       # N*OH*OW
    row, column = i // columns, i % columns
    kw = row % kernel_w                                   # row = (c, kh, kw)
    kh = (row // kernel_w) % kernel_h
    c = row // (kernel_w * kernel_h)
    ow = column % out_w                                   # column = (n, oh, ow)
    oh = (column // out_w) % out_h
    n = column // (out_w * out_h)
    h = oh * stride_h - pad_h + kh * dilation_h           # the input pixel it reads
    w = ow * stride_w - pad_w + kw * dilation_w
    if h < 0 or h >= height or w < 0 or w >= width:
        return 0.0                                        # zero padding
    return x[((n * channels + c) * height + h) * width + w]


_im2col_element_device = cuda.jit(device=True)(im2col_element)


@cuda.jit
def im2col_kernel(x, cols, geometry):
    """x, cols: flat views; geometry: the 14-int tuple of kernels.geometry."""
    start, step = cuda.grid(1), cuda.gridsize(1)
    for i in range(start, cols.size, step):
        cols[i] = _im2col_element_device(x, i, geometry)


def im2col_cpu(x, geometry):
    """CPU reference: the same per-thread function, one 'thread' after another (slow; tiny inputs)."""
    x_flat = numpy.ascontiguousarray(x).ravel()
    cols = numpy.empty(cols_shape(geometry), dtype=x.dtype)
    cols_flat = cols.reshape(-1)
    for i in range(cols_flat.size):
        cols_flat[i] = im2col_element(x_flat, i, geometry)
    return cols


def im2col(x, kernel_h, kernel_w, stride, padding, dilation, empty=numpy.empty):
    """Same signature and result as minigrad.ops.im2col.im2col_numpy; x a CuPy (or, in the simulator, NumPy) array.

    empty: the allocator of x's array library (cupy.empty on a GPU; numpy.empty in the simulator).
    """
    geometry = make_geometry("im2col", x.shape, (kernel_h, kernel_w), stride, padding, dilation)
    x_flat = x.ravel()                                    # a view when x is contiguous
    cols = empty(cols_shape(geometry), dtype=x.dtype)
    if cols.size:
        blocks = (cols.size + THREADS_PER_BLOCK - 1) // THREADS_PER_BLOCK
        im2col_kernel[blocks, THREADS_PER_BLOCK](x_flat, cols.reshape(-1), tuple(geometry))
    return cols                                           # (C*KH*KW, N*OH*OW)
