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
registered for the array's device (kernels/ fills it: Numba on CPU, CUDA on GPU),
and otherwise use the NumPy/CuPy versions below, which loop only over (kh, kw)
and copy one strided slice of all N*C*OH*OW pixels per step.
"""
from minigrad import backend
from minigrad.ops.registry import find_kernel, register_available


def pair(value, name, op_name):
    """An int or a pair of ints -> a (h, w) tuple of ints; an error naming op and argument otherwise."""
    if isinstance(value, int):
        return (value, value)
    try:
        h, w = value
        return (int(h), int(w))
    except (TypeError, ValueError):
        raise TypeError(f"{op_name}: {name} must be an int or a pair (h, w) of ints, got {value!r}") from None


def conv_output_size(size, kernel, stride, padding, dilation):
    """Output length along one axis: floor((size + 2 padding - dilation (kernel - 1) - 1) / stride) + 1.

    dilation (kernel - 1) + 1 is the span of the dilated kernel; the output counts
    how many strided placements of that span fit in the padded input.
    """
    return (size + 2 * padding - dilation * (kernel - 1) - 1) // stride + 1


def check_conv_shapes(x, weight, bias, padding, dilation, groups):
    """Errors that name the argument, the expected and the actual shapes."""
    if x.ndim != 4:
        raise ValueError(f"conv2d: input must have 4 dimensions (N, C, H, W), got shape {tuple(x.shape)}")
    if weight.ndim != 4:
        raise ValueError(
            f"conv2d: weight must have 4 dimensions (F, C/groups, KH, KW), got shape {tuple(weight.shape)}"
        )
    n, c, height, width = x.shape
    filters, c_group, kernel_h, kernel_w = weight.shape
    if c % groups or filters % groups:
        raise ValueError(
            f"conv2d: groups={groups} must divide both the input channels ({c}, input shape "
            f"{tuple(x.shape)}) and the filters ({filters}, weight shape {tuple(weight.shape)})"
        )
    if c_group * groups != c:
        raise ValueError(
            f"conv2d: weight of shape {tuple(weight.shape)} expects C = {c_group}*groups = "
            f"{c_group * groups} input channels (groups={groups}), but the input of shape "
            f"{tuple(x.shape)} has {c}"
        )
    if bias is not None and tuple(bias.shape) != (filters,):
        raise ValueError(f"conv2d: bias must have shape ({filters},) (one per filter), got {tuple(bias.shape)}")
    span_h = dilation[0] * (kernel_h - 1) + 1
    span_w = dilation[1] * (kernel_w - 1) + 1
    if span_h > height + 2 * padding[0] or span_w > width + 2 * padding[1]:
        raise ValueError(
            f"conv2d: kernel of size {span_h}x{span_w} (weight shape {tuple(weight.shape)}, dilation "
            f"{tuple(dilation)}) is larger than the padded input of size "
            f"{height + 2 * padding[0]}x{width + 2 * padding[1]} (input shape {tuple(x.shape)}, "
            f"padding {tuple(padding)})"
        )


# ------------------------------------------------------------------ kernel registry
# FASTER KERNELS PLUG IN HERE (minigrad/ops/registry.py): kernels/ registers functions with
# the signatures of the NumPy versions below under "im2col" and "col2im", for "cpu" (Numba)
# and "gpu" (CUDA C). With nothing registered the NumPy/CuPy code runs.


def im2col(x, kernel_h, kernel_w, stride, padding, dilation):
    """x (N, C, H, W) -> cols (C*KH*KW, N*OH*OW); stride, padding, dilation are (h, w) pairs."""
    kernel = find_kernel("im2col", x)
    if kernel is not None:
        return kernel(x, kernel_h, kernel_w, stride, padding, dilation)
    return im2col_numpy(x, kernel_h, kernel_w, stride, padding, dilation)


def col2im(cols, x_shape, kernel_h, kernel_w, stride, padding, dilation, out=None):
    """cols (C*KH*KW, N*OH*OW) -> dx (N, C, H, W), the adjoint of im2col (scatter-add).

    out: an array of x_shape to write dx into (returned), else a new array.
    """
    kernel = find_kernel("col2im", cols, col2im_numpy)
    return kernel(cols, x_shape, kernel_h, kernel_w, stride, padding, dilation, out=out)


# ------------------------------------------------------------------ NumPy / CuPy versions
def _output_hw(x_shape, kernel_h, kernel_w, stride, padding, dilation):
    _, _, height, width = x_shape
    out_h = conv_output_size(height, kernel_h, stride[0], padding[0], dilation[0])
    out_w = conv_output_size(width, kernel_w, stride[1], padding[1], dilation[1])
    if out_h < 1 or out_w < 1:
        raise ValueError(
            f"im2col: the dilated kernel ({kernel_h}x{kernel_w}, dilation {tuple(dilation)}) is larger "
            f"than the padded input {height}x{width} (padding {tuple(padding)})"
        )
    return out_h, out_w


def _window(kh, kw, out_h, out_w, stride, dilation):
    """The strided slice of the padded input that kernel tap (kh, kw) sees at every output position."""
    top, left = kh * dilation[0], kw * dilation[1]
    rows = slice(top, top + stride[0] * (out_h - 1) + 1, stride[0])
    columns = slice(left, left + stride[1] * (out_w - 1) + 1, stride[1])
    return rows, columns


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
            rows, columns = _window(kh, kw, out_h, out_w, stride, dilation)
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
            rows, columns = _window(kh, kw, out_h, out_w, stride, dilation)
            dx_padded[:, :, rows, columns] += cols[:, kh, kw].transpose(1, 0, 2, 3)  # (N, C, OH, OW)
    dx = dx_padded[:, :, ph:ph + height, pw:pw + width]                  # (N, C, H, W)
    if out is None:
        return xp.ascontiguousarray(dx)
    out[...] = dx                                                       # (out= as the kernels take it)
    return out


# ------------------------------------------------------------------ kernels
# Numba (CPU, lazy: compiled on the first convolution) and CUDA C (GPU) versions.
register_available({"im2col": im2col_numpy, "col2im": col2im_numpy}, gpu_names=["im2col", "col2im"])
