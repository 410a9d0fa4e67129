"""Resizing images as two matrix products.

Each output pixel is a weighted average of input pixels, and the weights of a
row do not depend on the column (the filter is separable). So resizing an
image X (H x W) to (OH x OW) is

    Y = A @ X @ B^T          A: (OH, H) weights along y,  B: (OW, W) along x

and a batch is one batched matmul. A crop is folded into the same matrices:
rows of A only weigh the input rows inside the crop, so cropping a box and
resizing it (RandomResizedCrop) costs no extra pass, and every image of a
batch may have its own box (A then has shape (N, OH, H)).

The weights (the scheme PIL and torchvision's antialiased bilinear use)
--------------------------------------------------------------------------
Output pixel i of a box [start, start + length) resized to `out` pixels sits
at input coordinate c_i = start + (i + 0.5) * s with s = length / out. Input
pixel j (centre j + 0.5) gets the triangle ("tent") weight

    w_ij = max(0, 1 - |j + 0.5 - c_i| / support),    support = max(s, 1) with antialias

normalised so that each row sums to 1. When enlarging (s < 1) the support is
1 and this is ordinary bilinear interpolation between the two nearest pixels.
When shrinking, the tent widens to s input pixels, so every input pixel
contributes (an average, not a sample: no aliasing). antialias=False keeps the
support at 1 (plain bilinear, which skips pixels when shrinking). "nearest"
takes input pixel floor(start + i * s) instead.
"""
import numpy


def resize_weights(start, length, out, size, mode="bilinear", antialias=True):
    """Weights (N, out, size): row i of image n averages input pixels start[n] ... start[n]+length[n]-1.

    start, length: (N,) integer arrays (the box of each image along this axis); size: the input length.
    """
    start = numpy.asarray(start, dtype=numpy.float64)[:, None, None]     # (N, 1, 1)
    length = numpy.asarray(length, dtype=numpy.float64)[:, None, None]
    scale = length / out                                                 # input pixels per output pixel
    i = numpy.arange(out, dtype=numpy.float64)[None, :, None]            # (1, out, 1)
    j = numpy.arange(size, dtype=numpy.float64)[None, None, :]           # (1, 1, size)
    inside = (j >= start) & (j < start + length)                         # only the box's pixels
    if mode == "nearest":
        weights = (j == numpy.floor(start + i * scale)) & inside
        return weights.astype(numpy.float32)
    center = start + (i + 0.5) * scale                                   # (N, out, 1)
    support = numpy.maximum(scale, 1.0) if antialias else numpy.ones_like(scale)
    weights = numpy.maximum(0.0, 1.0 - numpy.abs(j + 0.5 - center) / support) * inside
    return (weights / weights.sum(axis=2, keepdims=True)).astype(numpy.float32)


def resize_boxes(x, out_h, out_w, top, left, height, width, mode="bilinear", antialias=True):
    """Crop box n of image n (top, left, height, width: (N,) arrays) and resize it to (out_h, out_w).

    x: (N, C, H, W). Returns float32 (N, C, out_h, out_w); uint8 input is rounded back to uint8.
    """
    _, _, h, w = x.shape
    a = resize_weights(top, height, out_h, h, mode, antialias)           # (N, out_h, H)
    b = resize_weights(left, width, out_w, w, mode, antialias)           # (N, out_w, W)
    y = x.astype(numpy.float32, copy=False)
    y = numpy.matmul(y, b.transpose(0, 2, 1)[:, None])                   # (N, C, H, out_w)
    y = numpy.matmul(a[:, None], y)                                      # (N, C, out_h, out_w)
    if x.dtype == numpy.uint8:
        return numpy.clip(numpy.rint(y), 0, 255).astype(numpy.uint8)
    return y


def resize(x, out_h, out_w, mode="bilinear", antialias=True):
    """Resize every image of x (N, C, H, W) to (out_h, out_w): one box, the whole image, for all."""
    _, _, h, w = x.shape
    a = resize_weights([0], [h], out_h, h, mode, antialias)[0]           # (out_h, H)
    b = resize_weights([0], [w], out_w, w, mode, antialias)[0]           # (out_w, W)
    y = numpy.matmul(x.astype(numpy.float32, copy=False), b.T)           # (N, C, H, out_w)
    y = numpy.matmul(a, y)                                               # (N, C, out_h, out_w)
    if x.dtype == numpy.uint8:
        return numpy.clip(numpy.rint(y), 0, 255).astype(numpy.uint8)
    return y
