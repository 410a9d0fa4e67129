"""im2col and col2im: turn a convolution into one big matrix product, and back.

Shapes:  N batch, C channels, H x W input size, KH x KW kernel size,
         OH x OW output size, P = N*OH*OW output positions.

im2col copies every receptive field (patch) of x into a column:

    cols[(c, kh, kw), (n, oh, ow)] = x_padded[n, c, oh*SH + kh*DH, ow*SW + kw*DW]

so cols has shape (C*KH*KW, N*OH*OW); both indices are flattened in C order.
A convolution with weights W (F, C, KH, KW) is then ONE matrix product:

    y_2d = W.reshape(F, C*KH*KW) @ cols          (F, C*KH*KW) @ (C*KH*KW, P) -> (F, P)

Memory cost: every input pixel is copied into up to KH*KW columns, so cols
holds about KH*KW times as many numbers as x (9x for a 3x3 kernel at stride 1).
That is the price of turning a convolution into a fast matrix product.

col2im is the ADJOINT (transpose) of im2col, not its inverse. im2col is linear,
cols = A x for a 0/1 matrix A with one 1 per row of A (each column entry comes
from exactly one padded pixel). Its adjoint A^T takes a cols-shaped array c and
adds every entry back onto the pixel it was copied from (a scatter-ADD: pixels
in several overlapping patches receive several contributions; entries that were
copied from the zero padding are dropped). By construction

    <im2col(x), c> = sum_(rows, cols) (A x) * c = sum_pixels x * (A^T c) = <x, col2im(c)>

and this is exactly what backward needs: if y = f(im2col(x)), then
dL/dx = A^T dL/dcols = col2im(dL/dcols). tests/test_ops_conv.py checks the identity.

Dispatch: `im2col` / `col2im` pick a faster kernel from minigrad/ops/registry.py when one is
registered for the array's device (the fast layer fills it: Numba on the CPU, CUDA C on the
GPU, from kernels/), and otherwise use the NumPy/CuPy versions below, which loop only over
(kh, kw) and copy one strided slice of all N*C*OH*OW pixels per step.
"""
from minigrad import backend
from minigrad.kernels.geometry import make_geometry, output_size as conv_output_size, pair, tap_window
from minigrad.ops.registry import find_kernel

__all__ = ["col2im", "col2im_numpy", "conv_output_size", "im2col", "im2col_numpy", "pair"]


# ------------------------------------------------------------------ the dispatchers
# The fast layer (minigrad/fast/) registers kernels with the signatures of the NumPy versions
# below under "im2col" and "col2im", for "cpu" (Numba) and "gpu" (CUDA C). With nothing
# registered the NumPy/CuPy code runs.


def im2col(x, kernel_h, kernel_w, stride, padding, dilation):
    """x (N, C, H, W) -> cols (C*KH*KW, N*OH*OW); stride, padding, dilation are (h, w) pairs."""
    kernel = find_kernel("im2col", x, im2col_numpy)       # a faster kernel for x's device, else the one below
    return kernel(x, kernel_h, kernel_w, stride, padding, dilation)


def col2im(cols, x_shape, kernel_h, kernel_w, stride, padding, dilation, out=None):
    """cols (C*KH*KW, N*OH*OW) -> dx (N, C, H, W), the adjoint of im2col (scatter-add).

    out: an array of x_shape to write dx into (returned), else a new array.
    """
    kernel = find_kernel("col2im", cols, col2im_numpy)
    return kernel(cols, x_shape, kernel_h, kernel_w, stride, padding, dilation, out=out)


# ------------------------------------------------------------------ NumPy / CuPy versions
def _output_hw(x_shape, kernel_h, kernel_w, stride, padding, dilation):
    """(OH, OW), after checking that the window fits (kernels/geometry.py, shared with every kernel)."""
    geometry = make_geometry("im2col", x_shape, (kernel_h, kernel_w), stride, padding, dilation)
    return geometry.out_h, geometry.out_w


def im2col_numpy(x, kernel_h, kernel_w, stride, padding, dilation):
    """Vectorised im2col: one strided copy per kernel tap (kh, kw), no per-pixel loop."""
    xp = backend.array_module(x)
    n, c, _, _ = x.shape
    out_h, out_w = _output_hw(x.shape, kernel_h, kernel_w, stride, padding, dilation)
    (ph, pw) = padding
    x_padded = xp.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)))          # (N, C, H+2PH, W+2PW)
    cols = xp.empty((c, kernel_h, kernel_w, n, out_h, out_w), dtype=x.dtype)
    for kh in range(kernel_h):
        for kw in range(kernel_w):
            rows, columns = tap_window(kh, kw, out_h, out_w, stride, dilation)
            tap = x_padded[:, :, rows, columns]                          # (N, C, OH, OW)
            cols[:, kh, kw] = tap.transpose(1, 0, 2, 3)                  # (C, N, OH, OW)
    return cols.reshape(c * kernel_h * kernel_w, n * out_h * out_w)     # (C*KH*KW, N*OH*OW)


def col2im_numpy(cols, x_shape, kernel_h, kernel_w, stride, padding, dilation, out=None):
    """Vectorised col2im: one strided scatter-add per kernel tap (kh, kw), then drop the padding.

    Within one tap the strided slice touches each padded pixel at most once, so
    `+=` on the slice is exact; overlaps between taps add up across iterations.
    """
    xp = backend.array_module(cols)
    n, c, height, width = x_shape
    out_h, out_w = _output_hw(x_shape, kernel_h, kernel_w, stride, padding, dilation)
    (ph, pw) = padding
    cols = cols.reshape(c, kernel_h, kernel_w, n, out_h, out_w)         # (C, KH, KW, N, OH, OW)
    dx_padded = xp.zeros((n, c, height + 2 * ph, width + 2 * pw), dtype=cols.dtype)
    for kh in range(kernel_h):
        for kw in range(kernel_w):
            rows, columns = tap_window(kh, kw, out_h, out_w, stride, dilation)
            dx_padded[:, :, rows, columns] += cols[:, kh, kw].transpose(1, 0, 2, 3)  # (N, C, OH, OW)
    dx = dx_padded[:, :, ph:ph + height, pw:pw + width]                  # (N, C, H, W)
    if out is None:
        return xp.ascontiguousarray(dx)
    out[...] = dx                                                       # (out= as the kernels take it)
    return out
