"""col2im as a Numba CUDA kernel: one thread computes ONE input pixel of dx, as a gather.

    cols  (C*KH*KW, N*OH*OW)    row = (c, kh, kw), column = (n, oh, ow), both in C order
    dx    (N, C, H, W)          float32 or float64 (Numba compiles one version per dtype)

    dx[n, c, h, w] = sum of cols[(c, kh, kw), (n, oh, ow)] over the (kh, kw, oh, ow)
                     with h = oh*SH - PH + kh*DH and w = ow*SW - PW + kw*DW

col2im is the adjoint of im2col (see minigrad/ops/im2col.py). Thread i owns
dx.flat[i] and gathers the at most KH*KW columns that read that pixel: it
inverts h = oh*SH - PH + kh*DH for oh (`output_reading`). One writer per
output element, so no atomics, and the additions always run in the same
(kh, kw) order: deterministic results.

Must equal: minigrad.ops.im2col.col2im_numpy (a scatter-add there, so float
results agree to rounding) and kernels/cuda/col2im.cu.
Tested under the CUDA simulator (NUMBA_ENABLE_CUDASIM=1) in tests/test_kernels_cuda_sim.py.
"""
import numpy
from numba import cuda

from ..geometry import check_shape, cols_shape, make_geometry

THREADS_PER_BLOCK = 128


def output_reading(h, k, stride, pad, dilation, out):
    """The output position o with h = o*stride - pad + k*dilation, or -1 when there is none."""
    shifted = h + pad - k * dilation
    if shifted < 0 or shifted % stride != 0:
        return -1
    o = shifted // stride
    return o if o < out else -1


_output_reading_device = cuda.jit(device=True)(output_reading)


def make_col2im_element(output_reading):
    """Build the per-thread function around an `output_reading` (the Python one, or its device version)."""

    def col2im_element(cols, i, geometry):
        """dx.flat[i], gathered from the flat (C*KH*KW*N*OH*OW,) cols."""
        (batch, channels, height, width, kernel_h, kernel_w, stride_h, stride_w,
         pad_h, pad_w, dilation_h, dilation_w, out_h, out_w) = geometry
        w = i % width
        h = (i // width) % height
        c = (i // (width * height)) % channels
        n = i // (width * height * channels)
        columns = batch * out_h * out_w                   # N*OH*OW
        total = 0.0                                       # float64 accumulator, cast on store
        for kh in range(kernel_h):
            oh = output_reading(h, kh, stride_h, pad_h, dilation_h, out_h)
            if oh < 0:
                continue
            for kw in range(kernel_w):
                ow = output_reading(w, kw, stride_w, pad_w, dilation_w, out_w)
                if ow < 0:
                    continue
                row = (c * kernel_h + kh) * kernel_w + kw
                column = (n * out_h + oh) * out_w + ow
                total += cols[row * columns + column]
        return total

    return col2im_element


col2im_element = make_col2im_element(output_reading)
_col2im_element_device = cuda.jit(device=True)(make_col2im_element(_output_reading_device))


@cuda.jit
def col2im_kernel(cols, dx, geometry):
    """cols, dx: flat views; geometry: the 14-int tuple of kernels.geometry."""
    start, step = cuda.grid(1), cuda.gridsize(1)
    for i in range(start, dx.size, step):
        dx[i] = _col2im_element_device(cols, i, geometry)


def col2im_cpu(cols, x_shape, geometry):
    """CPU reference: the same per-thread function, one 'thread' after another (slow; tiny inputs)."""
    cols_flat = numpy.ascontiguousarray(cols).ravel()
    dx = numpy.empty(x_shape, dtype=cols.dtype)
    dx_flat = dx.reshape(-1)
    for i in range(dx_flat.size):
        dx_flat[i] = col2im_element(cols_flat, i, geometry)
    return dx


def col2im(cols, x_shape, kernel_h, kernel_w, stride, padding, dilation, empty=numpy.empty):
    """Same signature and result as minigrad.ops.im2col.col2im_numpy; cols a CuPy (or simulator NumPy) array.

    empty: the allocator of cols' array library (cupy.empty on a GPU; numpy.empty in the simulator).
    """
    geometry = make_geometry("col2im", tuple(x_shape), (kernel_h, kernel_w), stride, padding, dilation)
    check_shape("col2im", "cols", cols.shape, cols_shape(geometry), "(C*KH*KW, N*OH*OW)", x_shape)
    cols_flat = cols.ravel()
    dx = empty(tuple(x_shape), dtype=cols.dtype)
    if dx.size:
        blocks = (dx.size + THREADS_PER_BLOCK - 1) // THREADS_PER_BLOCK
        col2im_kernel[blocks, THREADS_PER_BLOCK](cols_flat, dx.reshape(-1), tuple(geometry))
    return dx                                             # (N, C, H, W)
