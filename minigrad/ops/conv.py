"""2-D convolution (cross-correlation, as in every deep-learning library) via im2col.

Shapes:  N batch, C input channels, H x W input size, F filters (output channels),
         G groups, C/G and F/G channels per group, KH x KW kernel size,
         OH x OW output size, P = N*OH*OW output positions, K = C/G*KH*KW.

    y[n, f, oh, ow] = b[f] + sum_(c in group of f, kh, kw)
                      w[f, c, kh, kw] * x_padded[n, c, oh*SH + kh*DH, ow*SW + kw*DW]

`conv2d_reference` computes exactly this with loops. `Conv2d` gathers every
patch into the columns of one matrix with im2col (see im2col.py) and does ONE
matrix product per group; at heart, three lines:

    cols = im2col(x)                                   (C*KH*KW, P) = G blocks of (K, P)
    y_g  = W_g @ cols_g                                (F/G, K) @ (K, P) -> (F/G, P)
    y    = y_g laid out as (N, F, OH, OW), plus b

Backward, with dY_g = dy for group g's filters laid out as (F/G, P):
    dW_g    = dY_g @ cols_g^T                          (F/G, P) @ (P, K) -> (F/G, K)
    db      = sum of dy over n, oh, ow                 (F,)
    dcols_g = W_g^T @ dY_g                             (K, F/G) @ (F/G, P) -> (K, P)
    dx      = col2im(dcols)                            (N, C, H, W)
col2im is the adjoint of im2col, which is what the chain rule asks for.

A faster engine computes the same numbers (minigrad/fast/conv.py and winograd.py: the batch
in cache-sized chunks on several cores, and Winograd's algorithm for 3x3 layers; chapter 10).
`conv2d` reaches it through one line, `faster(...)`; without the fast layer this Conv2d runs.
"""
import numpy

from minigrad import backend
from minigrad.function import Function
from minigrad.kernels.geometry import check_conv, output_size, pair
from minigrad.ops.im2col import col2im, im2col
from minigrad.ops.registry import faster


class Conv2d(Function):
    """y = conv2d(x, w) + b with x (N, C, H, W), w (F, C/G, KH, KW), b (F,) or None."""

    fresh_gradients = (0, 1, 2)      # dx, dW and db are new arrays (see Function)

    def __init__(self, stride=1, padding=0, dilation=1, groups=1):
        self.stride = pair(stride, "conv2d", "stride")
        self.padding = pair(padding, "conv2d", "padding")
        self.dilation = pair(dilation, "conv2d", "dilation")
        self.groups = int(groups)
        if min(self.stride) < 1 or min(self.dilation) < 1 or min(self.padding) < 0 or self.groups < 1:
            raise ValueError(
                f"conv2d: need stride >= 1, dilation >= 1, padding >= 0 and groups >= 1, got "
                f"stride={self.stride}, dilation={self.dilation}, padding={self.padding}, groups={self.groups}"
            )

    def check(self, x, weight, bias):
        """Shapes, and the output size (OH, OW)."""
        check_conv("conv2d", x.shape, weight.shape, None if bias is None else bias.shape,
                   self.padding, self.dilation, self.groups)
        (_, _, height, width), (_, _, kernel_h, kernel_w) = x.shape, weight.shape
        return (output_size(height, kernel_h, self.stride[0], self.padding[0], self.dilation[0]),
                output_size(width, kernel_w, self.stride[1], self.padding[1], self.dilation[1]))

    def forward(self, x, weight, bias=None):
        out_h, out_w = self.check(x, weight, bias)
        n, groups = x.shape[0], self.groups
        filters, _, kernel_h, kernel_w = weight.shape
        cols = im2col(x, kernel_h, kernel_w, self.stride, self.padding, self.dilation)  # (C*KH*KW, P)
        cols = cols.reshape(groups, -1, cols.shape[-1])                                 # (G, K, P)
        w_2d = weight.reshape(groups, filters // groups, -1)                            # (G, F/G, K)
        y = w_2d @ cols                                      # (G, F/G, K) @ (G, K, P) -> (G, F/G, P)
        y = y.reshape(filters, n, out_h, out_w).transpose(1, 0, 2, 3)                   # (N, F, OH, OW)
        if bias is not None:
            y = y + bias.reshape(1, filters, 1, 1)
        self.saved = (x.shape, cols, w_2d, weight.shape, bias is not None)
        return backend.array_module(y).ascontiguousarray(y)

    def backward(self, dy):
        x_shape, cols, w_2d, w_shape, has_bias = self.saved
        groups = self.groups
        filters, _, kernel_h, kernel_w = w_shape
        dy_2d = dy.transpose(1, 0, 2, 3).reshape(groups, filters // groups, -1)         # (G, F/G, P)
        dw = (dy_2d @ cols.transpose(0, 2, 1)).reshape(w_shape)   # (G, F/G, P) @ (G, P, K) -> (F, C/G, KH, KW)
        db = dy.sum(axis=(0, 2, 3)) if has_bias else None                                # (F,)
        dx = None
        if self.needs_input_grad[0]:
            dcols = w_2d.transpose(0, 2, 1) @ dy_2d          # (G, K, F/G) @ (G, F/G, P) -> (G, K, P)
            dx = col2im(dcols.reshape(-1, dcols.shape[-1]), x_shape, kernel_h, kernel_w,
                        self.stride, self.padding, self.dilation)                       # (N, C, H, W)
        return dx, dw, db


def conv2d(x, weight, bias=None, stride=1, padding=0, dilation=1, groups=1):
    """torch.nn.functional.conv2d: x (N, C, H, W), weight (F, C/groups, KH, KW), bias (F,) or None.

    Raw NumPy/CuPy arrays are accepted too.
    """
    function = faster(Conv2d(stride, padding, dilation, groups), x, weight)   # same numbers, faster (fast/)
    return function(x, weight, bias)


def conv2d_reference(x, weight, bias=None, stride=1, padding=0, dilation=1, groups=1):
    """The definition of conv2d with plain loops (NumPy arrays in and out, forward only).

    Slow on purpose: one output number at a time, written as the formula at the
    top of this file. For teaching and as the oracle that Conv2d is tested against.
    """
    x, weight = numpy.asarray(x), numpy.asarray(weight)
    if int(groups) < 1:
        raise ValueError(f"conv2d: need groups >= 1, got groups={groups}")
    (sh, sw), (ph, pw), (dh, dw) = (pair(value, "conv2d", name) for name, value in
                                    (("stride", stride), ("padding", padding), ("dilation", dilation)))
    check_conv("conv2d", x.shape, weight.shape, None if bias is None else numpy.shape(bias), (ph, pw), (dh, dw), groups)
    n_batch, channels, height, width = x.shape
    filters, c_group, kernel_h, kernel_w = weight.shape
    f_group = filters // groups
    out_h = output_size(height, kernel_h, sh, ph, dh)
    out_w = output_size(width, kernel_w, sw, pw, dw)
    x_padded = numpy.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)))
    y = numpy.zeros((n_batch, filters, out_h, out_w), dtype=numpy.result_type(x, weight))
    for n in range(n_batch):
        for f in range(filters):
            first_channel = (f // f_group) * c_group          # the group of filter f sees these channels
            for oh in range(out_h):
                for ow in range(out_w):
                    total = 0.0 if bias is None else float(bias[f])
                    for c in range(c_group):
                        for kh in range(kernel_h):
                            for kw in range(kernel_w):
                                pixel = x_padded[n, first_channel + c, oh * sh + kh * dh, ow * sw + kw * dw]
                                total += weight[f, c, kh, kw] * pixel
                    y[n, f, oh, ow] = total
    return y
