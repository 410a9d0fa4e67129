"""The geometry of a sliding window (convolution or pooling): the one definition of `pair`, of the
output size and of the shape checks, shared by minigrad's ops, its fast layer and every kernel.

    N, C, H, W      batch, channels, input height and width
    KH, KW          window (kernel) height and width
    SH, SW          stride;  PH, PW  zero padding;  DH, DW  dilation
    OH, OW          output height and width:

        OH = (H + 2 PH - DH (KH - 1) - 1) // SH + 1        (OW likewise)

`check_conv` and `pool_output_size` are the argument checks of conv2d and the pooling ops;
their errors name the op, the argument, the shapes and what was expected.

The same 14 integers of a window, in this order, are

    - the fields of `struct Geometry` in kernels/cuda/*.cu (passed by value to
      CuPy RawKernels as a NumPy structured scalar, GEOMETRY_DTYPE below),
    - the tuple that the Numba CUDA kernels in kernels/numba_cuda/ unpack.
"""
from collections import namedtuple

import numpy

FIELDS = (
    "batch", "channels", "height", "width",
    "kernel_h", "kernel_w", "stride_h", "stride_w",
    "pad_h", "pad_w", "dilation_h", "dilation_w",
    "out_h", "out_w",
)

Geometry = namedtuple("Geometry", FIELDS)

# 14 int32 fields, no padding: the same bytes as the C struct in kernels/cuda/geometry.cuh.
GEOMETRY_DTYPE = numpy.dtype([(name, numpy.int32) for name in FIELDS], align=True)


def pair(value, op, argument):
    """An int or a pair of ints -> (h, w); an error naming op and argument otherwise."""
    if isinstance(value, (int, numpy.integer)):
        return int(value), int(value)
    if isinstance(value, (tuple, list)) and len(value) == 2 and all(
        isinstance(v, (int, numpy.integer)) for v in value
    ):
        return int(value[0]), int(value[1])
    raise TypeError(f"{op}: {argument} must be an int or a pair of ints, got {value!r}")


def output_size(size, kernel, stride, pad, dilation):
    """Number of window positions along one axis."""
    return (size + 2 * pad - dilation * (kernel - 1) - 1) // stride + 1


def make_geometry(op, x_shape, kernel_size, stride=1, padding=0, dilation=1):
    """Check a window against an (N, C, H, W) shape and return its Geometry.

    Raises ValueError naming `op` when the shape is not 4-D, an argument is out of
    range, or the window does not fit in the padded input.
    """
    if len(x_shape) != 4:
        raise ValueError(f"{op}: x must have shape (N, C, H, W), got shape {tuple(x_shape)}")
    kernel_h, kernel_w = pair(kernel_size, op, "kernel_size")
    stride_h, stride_w = pair(stride, op, "stride")
    pad_h, pad_w = pair(padding, op, "padding")
    dilation_h, dilation_w = pair(dilation, op, "dilation")
    for argument, values, least in (
        ("kernel_size", (kernel_h, kernel_w), 1),
        ("stride", (stride_h, stride_w), 1),
        ("padding", (pad_h, pad_w), 0),
        ("dilation", (dilation_h, dilation_w), 1),
    ):
        if min(values) < least:
            raise ValueError(f"{op}: {argument} must be >= {least}, got {values}")
    batch, channels, height, width = (int(s) for s in x_shape)
    out_h = output_size(height, kernel_h, stride_h, pad_h, dilation_h)
    out_w = output_size(width, kernel_w, stride_w, pad_w, dilation_w)
    if out_h < 1 or out_w < 1:
        raise ValueError(
            f"{op}: a {kernel_h}x{kernel_w} window (dilation {(dilation_h, dilation_w)}) does not fit "
            f"in input of shape {tuple(x_shape)} with padding {(pad_h, pad_w)}: output would be "
            f"{out_h}x{out_w}"
        )
    return Geometry(
        batch, channels, height, width, kernel_h, kernel_w, stride_h, stride_w,
        pad_h, pad_w, dilation_h, dilation_w, out_h, out_w,
    )


def tap_window(kh, kw, out_h, out_w, stride, dilation=(1, 1)):
    """(rows, columns): the strided slices of the padded input that window tap (kh, kw) reads at every
    output position, for NumPy's vectorised im2col, col2im and pooling."""
    top, left = kh * dilation[0], kw * dilation[1]
    return (slice(top, top + stride[0] * (out_h - 1) + 1, stride[0]),
            slice(left, left + stride[1] * (out_w - 1) + 1, stride[1]))


def pool_geometry(op, x_shape, kernel_size, stride, padding):
    """A max pool window's Geometry, checked as `pool_output_size` checks it (padding at most half the window)."""
    kernel, stride, padding = pair(kernel_size, op, "kernel_size"), pair(stride, op, "stride"), pair(padding, op, "padding")
    pool_output_size(op, x_shape, kernel, stride, padding)
    return make_geometry(op, x_shape, kernel, stride, padding, 1)


def check_shape(op, name, shape, expected, layout, x_shape):
    """Raise ValueError unless `shape` is `expected`; the message names the layout and the input shape."""
    if tuple(shape) != tuple(expected):
        raise ValueError(f"{op}: {name} must have shape {layout} = {tuple(expected)} for x_shape "
                         f"{tuple(x_shape)}, got {tuple(shape)}")


def as_struct(geometry):
    """The Geometry as a one-element NumPy array of GEOMETRY_DTYPE.

    A CuPy RawKernel passes a size-one NumPy array BY VALUE (its bytes become the
    `struct Geometry g` argument); ctypes passes its address to the CPU references.
    """
    return numpy.array([tuple(geometry)], dtype=GEOMETRY_DTYPE)


def cols_shape(geometry):
    """(C*KH*KW, N*OH*OW): the shape of im2col's output."""
    g = geometry
    return (g.channels * g.kernel_h * g.kernel_w, g.batch * g.out_h * g.out_w)


def pooled_shape(geometry):
    """(N, C, OH, OW): the shape of a pooling output."""
    g = geometry
    return (g.batch, g.channels, g.out_h, g.out_w)


def check_conv(op, x_shape, weight_shape, bias_shape, padding, dilation, groups):
    """Check conv2d's shapes: x (N, C, H, W), weight (F, C/groups, KH, KW), bias (F,) or None.

    padding and dilation are (h, w) pairs. Errors name the argument, the expected and the actual shapes.
    """
    x_shape, weight_shape = tuple(x_shape), tuple(weight_shape)
    if len(x_shape) != 4:
        raise ValueError(f"{op}: input must have 4 dimensions (N, C, H, W), got shape {x_shape}")
    if len(weight_shape) != 4:
        raise ValueError(f"{op}: weight must have 4 dimensions (F, C/groups, KH, KW), got shape {weight_shape}")
    _, channels, height, width = x_shape
    filters, c_group, kernel_h, kernel_w = weight_shape
    if channels % groups or filters % groups:
        raise ValueError(
            f"{op}: groups={groups} must divide both the input channels ({channels}, input shape "
            f"{x_shape}) and the filters ({filters}, weight shape {weight_shape})"
        )
    if c_group * groups != channels:
        raise ValueError(
            f"{op}: weight of shape {weight_shape} expects C = {c_group}*groups = {c_group * groups} input "
            f"channels (groups={groups}), but the input of shape {x_shape} has {channels}"
        )
    if bias_shape is not None and tuple(bias_shape) != (filters,):
        raise ValueError(f"{op}: bias must have shape ({filters},) (one per filter), got {tuple(bias_shape)}")
    span_h = dilation[0] * (kernel_h - 1) + 1
    span_w = dilation[1] * (kernel_w - 1) + 1
    if span_h > height + 2 * padding[0] or span_w > width + 2 * padding[1]:
        raise ValueError(
            f"{op}: kernel of size {span_h}x{span_w} (weight shape {weight_shape}, dilation "
            f"{tuple(dilation)}) is larger than the padded input of size "
            f"{height + 2 * padding[0]}x{width + 2 * padding[1]} (input shape {x_shape}, padding {tuple(padding)})"
        )


def pool_output_size(op, x_shape, kernel, stride, padding):
    """Check a pooling window (kernel, stride, padding: (h, w) pairs) against x's shape; return (OH, OW).

    Padding may be at most half the window, else a window could hold only padding.
    """
    if len(x_shape) != 4:
        raise ValueError(f"{op}: input must have 4 dimensions (N, C, H, W), got shape {tuple(x_shape)}")
    if min(kernel) < 1 or min(stride) < 1 or min(padding) < 0:
        raise ValueError(
            f"{op}: need kernel_size >= 1, stride >= 1 and padding >= 0, got "
            f"kernel_size={tuple(kernel)}, stride={tuple(stride)}, padding={tuple(padding)}"
        )
    if padding[0] > kernel[0] // 2 or padding[1] > kernel[1] // 2:
        raise ValueError(
            f"{op}: padding {tuple(padding)} must be at most half the kernel size {tuple(kernel)} "
            f"(else a window could hold only padding)"
        )
    height, width = x_shape[2], x_shape[3]
    if kernel[0] > height + 2 * padding[0] or kernel[1] > width + 2 * padding[1]:
        raise ValueError(
            f"{op}: kernel_size {tuple(kernel)} is larger than the padded input "
            f"{height + 2 * padding[0]}x{width + 2 * padding[1]} (input shape {tuple(x_shape)}, "
            f"padding {tuple(padding)})"
        )
    return (output_size(height, kernel[0], stride[0], padding[0], 1),
            output_size(width, kernel[1], stride[1], padding[1], 1))
