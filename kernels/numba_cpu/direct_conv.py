"""Direct convolution on the CPU with Numba: every output straight from its input window, no cols.

For layers with few channels and large kernels (LeNet's 5x5 on 3 or 6 channels) im2col's
cols is KH*KW = 25 times the input, and the products that follow are too thin (6 or 16
filters) for BLAS to make up for building it. These loops read the input in place.
Stride 1, dilation 1, one group; zero padding is copied in one image at a time.

`correlate`: one loop iteration (one `prange` index) computes ONE IMAGE of

    y[n, f, oh, ow] = b[f] + sum_(c, kh, kw) w[f, c, kh, kw] * x_padded[n, c, oh + kh, ow + kw]

It serves the forward pass and the input gradient: dx is the "full" correlation of dy
(padded by KH-1-PH and KW-1-PW) with the filters flipped and F and C swapped,

    dx[n, c, h, w] = sum_(f, kh, kw) w[f, c, KH-1-kh, KW-1-kw] * dy_padded[n, f, h + kh, w + kw]

The "wide rows" trick: on a flattened plane of width W, output (oh, ow) reads pixel
(oh + kh)*W + ow + kw, which is p + kh*W + kw for p = oh*W + ow. So one long loop over
p = 0 .. (OH-1)*W + OW - 1 computes every output (and, at ow >= OW, a few that are
thrown away), each tap adding a contiguous, shifted run of the plane: long runs vectorise,
where rows of OW = 10 would not. `block` filters share each load of the input; the loops
over them and over kw are compiled with their sizes as constants (`correlate_loops`), so
LLVM unrolls them and vectorises the loop over p.

`weight_grad`: one loop iteration computes one PART of the batch's sum (parts fixed by the
caller, so the sum does not depend on the threads); the parts are added in order:

    dw[f, c, kh, kw] = sum_(n, oh, ow) dy[n, f, oh, ow] * x_padded[n, c, oh + kh, ow + kw]

Each term is a dot product over the wide rows (dy is zero at ow >= OW), computed for 2
filters x 4 taps at once so that each load of dy and x serves several sums, with
`fastmath={"reassoc"}` so that LLVM may split each sum over SIMD lanes: the same sum to
rounding, in an order fixed by the sizes.

Reference: minigrad.ops.conv's Conv2d (forward, dx, dw) and conv2d_reference; the results
agree to float rounding.
"""
import numpy
from numba import njit, prange

from . import LIMITS, run_loop, workspace

SUM_ORDER_FREE = {"reassoc", "contract"}    # fastmath flags of the dot products (see the docstring)


def filter_block(filters):
    """Filters computed together in `correlate`: 3 or 2 share each load of the input; more would
    not fit LLVM's registers (their running sums, the input run and the weights)."""
    for block in (3, 2):
        if filters % block == 0:
            return block
    return 1


@njit(inline="always", cache=True)
def pad_image(x, n, padded, pad_h, pad_w):
    """padded[c] = x[n, c] with pad_h rows and pad_w columns of zeros around it (padded is zeroed once)."""
    channels, height, width = x.shape[1], x.shape[2], x.shape[3]
    for c in range(channels):
        for h in range(height):
            for w in range(width):
                padded[c, pad_h + h, pad_w + w] = x[n, c, h, w]


def _correlate_body(block, kernel_w, width, out_h, out_w):
    """The loop of `correlate` for one image, with `block`, `kernel_w` and, unless -1 (then read from the
    arrays), the padded input's width and the output's size as constants: a closure's variables are, to
    Numba, frozen values that LLVM sees like literals. Knowing the filters and kw, it unrolls their loops;
    knowing the length of the loop over p, it vectorises it without a remainder loop to test for."""
    @njit(inline="always", cache=True)
    def correlate_image(planes, w, b, y, n, wide):
        channels = planes.shape[0]
        filters, _, kernel_h, _ = w.shape
        rows = y.shape[2] if out_h < 0 else out_h
        columns = y.shape[3] if out_w < 0 else out_w
        plane_w = columns + kernel_w - 1 if width < 0 else width
        length = (rows - 1) * plane_w + columns              # wide positions p = oh*W + ow
        for f0 in range(0, filters, block):
            for j in range(block):
                for p in range(length):
                    wide[j, p] = b[f0 + j]
            for c in range(channels):
                for kh in range(kernel_h):
                    run = planes[c, kh * plane_w:]           # tap (kh, kw) reads run[p + kw]
                    for p in range(length):
                        for j in range(block):
                            total = wide[j, p]
                            for kw in range(kernel_w):
                                total += w[f0 + j, c, kh, kw] * run[p + kw]
                            wide[j, p] = total
            for j in range(block):                           # keep the real outputs (ow < OW)
                for oh in range(rows):
                    for ow in range(columns):
                        y[n, f0 + j, oh, ow] = wide[j, oh * plane_w + ow]
    return correlate_image


def _compile_correlate(block, kernel_w, width, out_h, out_w):
    """(serial, parallel) loops of `correlate` for these constants (see `_correlate_body`). The wide rows'
    buffer has a constant row length too when the sizes are constants: LLVM then knows its rows apart."""
    correlate_image = _correlate_body(block, kernel_w, width, out_h, out_w)
    known_length = (out_h - 1) * width + out_w if width >= 0 else -1

    @njit(inline="always", cache=True)
    def wide_length(y, plane_w):
        return known_length if known_length >= 0 else (y.shape[2] - 1) * plane_w + y.shape[3]

    @njit(parallel=True, cache=True)
    def parallel_loop(x, w, b, y, pad_h, pad_w):
        n_images, channels, height, x_width = x.shape
        shape = (channels, height + 2 * pad_h, x_width + 2 * pad_w)
        length = wide_length(y, shape[2])
        for n in prange(n_images):
            wide = numpy.empty((block, length), y.dtype)
            if pad_h or pad_w:
                padded = numpy.zeros(shape, x.dtype)
                pad_image(x, n, padded, pad_h, pad_w)
                correlate_image(padded.reshape(channels, -1), w, b, y, n, wide)
            else:
                correlate_image(x[n].reshape(channels, -1), w, b, y, n, wide)

    @njit(nogil=True, cache=True)
    def serial_loop(x, w, b, y, pad_h, pad_w):
        n_images, channels, height, x_width = x.shape
        shape = (channels, height + 2 * pad_h, x_width + 2 * pad_w)
        wide = numpy.empty((block, wide_length(y, shape[2])), y.dtype)
        padded = numpy.zeros(shape, x.dtype)                 # its border stays zero
        for n in range(n_images):
            if pad_h or pad_w:
                pad_image(x, n, padded, pad_h, pad_w)
                correlate_image(padded.reshape(channels, -1), w, b, y, n, wide)
            else:
                correlate_image(x[n].reshape(channels, -1), w, b, y, n, wide)

    return serial_loop, parallel_loop


_correlate_loops = {}     # (block, KW, W, OH, OW) -> (serial, parallel); W, OH, OW -1: read at run time


def correlate_loops(block, kernel_w, width=-1, out_h=-1, out_w=-1):
    """The loops of `correlate` compiled for these constants, once per process (and kept in Numba's disk
    cache: the constants are part of its key). Two threads asking at once may both compile; one is kept."""
    key = (block, kernel_w, width, out_h, out_w)
    loops = _correlate_loops.get(key)
    if loops is None:
        loops = _correlate_loops.setdefault(key, _compile_correlate(*key))
    return loops


def correlate(x, w, b, pad_h, pad_w):
    """y (N, F, OH, OW), OH = H + 2 PH - KH + 1: x (N, C, H, W) correlated with w (F, C, KH, KW), plus b (F,).

    Inputs from LIMITS["constant_sizes_from_bytes"] run the loop compiled for their sizes; smaller ones (tests'
    tiny shapes) the loop that reads them at run time, so that they compile nothing new per shape."""
    x, w = numpy.ascontiguousarray(x), numpy.ascontiguousarray(w, dtype=x.dtype)
    b = numpy.zeros(w.shape[0], x.dtype) if b is None else numpy.ascontiguousarray(b, dtype=x.dtype)
    n_images, _, height, width = x.shape
    out_h, out_w = height + 2 * pad_h - w.shape[2] + 1, width + 2 * pad_w - w.shape[3] + 1
    y = workspace.empty((n_images, w.shape[0], out_h, out_w), x.dtype)            # see workspace.py
    if not y.size:
        return y
    smallest = LIMITS["constant_sizes_from_bytes"]
    sizes = (width + 2 * pad_w, out_h, out_w) if smallest is not None and x.nbytes >= smallest else ()
    loops = correlate_loops(filter_block(w.shape[0]), w.shape[3], *sizes)
    run_loop(*loops, x.nbytes, x, w, b, y, pad_h, pad_w)
    return y


def conv2d_forward(x, weight, bias, padding):
    """conv2d at stride 1: y (N, F, OH, OW) from x (N, C, H, W), weight (F, C, KH, KW), bias (F,) or None."""
    return correlate(x, weight, bias, padding[0], padding[1])


def conv2d_input_grad(dy, weight, padding):
    """dx (N, C, H, W) of conv2d at stride 1 from dy (N, F, OH, OW): the full correlation (module docstring)."""
    kernel_h, kernel_w = weight.shape[2:]
    flipped = numpy.ascontiguousarray(weight[:, :, ::-1, ::-1].transpose(1, 0, 2, 3), dtype=dy.dtype)  # (C, F, KH, KW)
    return correlate(dy, flipped, None, kernel_h - 1 - padding[0], kernel_w - 1 - padding[1])


@njit(inline="always", fastmath=SUM_ORDER_FREE, cache=True)
def _dot_block(planes, wide, dw, f, c, tap, offsets, length, two, four):
    """dw[f + i, c, tap + j] += sum_p wide[f + i, p] * planes[c, p + offsets[tap + j]], for i < 2 (1 if not
    `two`), j < 4 (1 if not `four`): the products that share loads, their sums in registers."""
    d0 = wide[f]
    d1 = wide[f + 1] if two else wide[f]
    x0 = planes[c, offsets[tap]:]
    x1 = planes[c, offsets[tap + 1]:] if four else x0
    x2 = planes[c, offsets[tap + 2]:] if four else x0
    x3 = planes[c, offsets[tap + 3]:] if four else x0
    s00 = s01 = s02 = s03 = s10 = s11 = s12 = s13 = dw.dtype.type(0)
    for p in range(length):
        a, b = d0[p], d1[p]
        s00 += a * x0[p]
        s01 += a * x1[p]
        s02 += a * x2[p]
        s03 += a * x3[p]
        s10 += b * x0[p]
        s11 += b * x1[p]
        s12 += b * x2[p]
        s13 += b * x3[p]
    dw[f, c, tap] += s00
    if four:
        dw[f, c, tap + 1] += s01
        dw[f, c, tap + 2] += s02
        dw[f, c, tap + 3] += s03
    if two:
        dw[f + 1, c, tap] += s10
        if four:
            dw[f + 1, c, tap + 1] += s11
            dw[f + 1, c, tap + 2] += s12
            dw[f + 1, c, tap + 3] += s13


@njit(nogil=True, fastmath=SUM_ORDER_FREE, cache=True)
def _weight_grad_part(x, dy, dw, first, last, kernel_h, kernel_w, pad_h, pad_w):
    """dw (F, C, KH*KW) = the sum over images first .. last - 1 (see the module docstring). A function of its
    own, not inlined: its fastmath flags would not survive inlining into loops compiled without them."""
    channels, height, width = x.shape[1], x.shape[2] + 2 * pad_h, x.shape[3] + 2 * pad_w
    filters, out_h, out_w = dy.shape[1], dy.shape[2], dy.shape[3]
    taps = kernel_h * kernel_w
    length = (out_h - 1) * width + out_w
    offsets = numpy.empty(taps, numpy.int64)                 # tap (kh, kw) reads p + kh*W + kw
    for kh in range(kernel_h):
        for kw in range(kernel_w):
            offsets[kh * kernel_w + kw] = kh * width + kw
    padded = numpy.zeros((channels, height, width), x.dtype)
    planes = padded.reshape(channels, height * width)
    wide = numpy.zeros((filters, length), dy.dtype)          # dy on the wide rows: 0 at ow >= OW
    dw[:] = 0
    for n in range(first, last):
        pad_image(x, n, padded, pad_h, pad_w)
        for f in range(filters):
            for oh in range(out_h):
                for ow in range(out_w):
                    wide[f, oh * width + ow] = dy[n, f, oh, ow]
        for f in range(0, filters, 2):
            two = f + 1 < filters
            for c in range(channels):
                tap = 0
                while tap + 4 <= taps:
                    _dot_block(planes, wide, dw, f, c, tap, offsets, length, two, True)
                    tap += 4
                while tap < taps:
                    _dot_block(planes, wide, dw, f, c, tap, offsets, length, two, False)
                    tap += 1


@njit(parallel=True, cache=True)
def _weight_grad_parts(x, dy, parts, bounds, kernel_h, kernel_w, pad_h, pad_w):
    for part in prange(parts.shape[0]):
        _weight_grad_part(x, dy, parts[part], bounds[part], bounds[part + 1], kernel_h, kernel_w, pad_h, pad_w)


@njit(nogil=True, cache=True)
def _weight_grad_parts_serial(x, dy, parts, bounds, kernel_h, kernel_w, pad_h, pad_w):
    for part in range(parts.shape[0]):
        _weight_grad_part(x, dy, parts[part], bounds[part], bounds[part + 1], kernel_h, kernel_w, pad_h, pad_w)


def conv2d_weight_grad(x, dy, kernel_size, padding, parts=1):
    """dw (F, C, KH, KW) of conv2d at stride 1, from x (N, C, H, W) and dy (N, F, OH, OW): the batch cut into
    `parts` equal parts, each summed on its own (on Numba's threads), then the parts added in order."""
    x, dy = numpy.ascontiguousarray(x), numpy.ascontiguousarray(dy, dtype=numpy.result_type(x, dy))
    x = x.astype(dy.dtype, copy=False)
    kernel_h, kernel_w = kernel_size
    parts = max(1, min(int(parts), x.shape[0]))
    bounds = numpy.linspace(0, x.shape[0], parts + 1).round().astype(numpy.int64)
    sums = numpy.empty((parts, dy.shape[1], x.shape[1], kernel_h * kernel_w), dy.dtype)
    run_loop(_weight_grad_parts_serial, _weight_grad_parts, x.nbytes,
             x, dy, sums, bounds, kernel_h, kernel_w, padding[0], padding[1])
    dw = sums[0]
    for part in sums[1:]:                                    # in part order: the threads change nothing
        dw += part
    return dw.reshape(dy.shape[1], x.shape[1], kernel_h, kernel_w)
