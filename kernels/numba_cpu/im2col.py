"""im2col on the CPU with Numba: unfold every receptive field of an image into a column.

One loop iteration (one `prange` index) fills ONE ROW of `cols`, the row for
input channel c and kernel tap (kh, kw): for every image n and output
position (oh, ow) it copies the input pixel that this tap sees there.

    cols[(c, kh, kw), (n, oh, ow)] = x_padded[n, c, oh*SH + kh*DH, ow*SW + kw*DW]

    x     (N, C, H, W)                    float32 or float64
    cols  (C*KH*KW, N*OH*OW)              rows (c, kh, kw) and columns (n, oh, ow) in C order
    OH = (H + 2*PH - DH*(KH - 1) - 1) // SH + 1      (OW likewise)

Reads that fall in the zero padding write 0. Along a row of outputs, the
positions that read real pixels form one interval [lo, hi) (`valid_range`),
so the copy loop in the middle has no branch. Rows are independent: the
parallel loop has no races, and each row is written left to right. (The
strided windows path below goes plane by plane instead; each plane (n, c)
writes its own blocks of cols, so it has no races either.)
`_im2col_rows_flat` fills the same rows faster when stride is 1 and the output
is as wide as the input (3x3 with padding 1, 1x1 without): see its docstring.
For strided convolutions (dilation 1) with a kernel at least as large as the
stride, `_im2col_windows` goes image by image instead: `fill_windows` gathers each
image plane once into a small buffer in which every tap's whole (OH, OW) window is
one contiguous block, and each row of cols is then one block copy: the strided
gather happens once per (row phase, kernel column) instead of once per tap.
A strided convolution's chunks, in the size range the caller configured
(LIMITS["constant_sizes_from_bytes"] up to LIMITS["serial_below_bytes"]), go to a
third loop, `gather_plane`, the definition itself, compiled once for each geometry with its
kernel, stride, padding and output width as CONSTANTS (`constant_size_loop`): knowing them,
LLVM unrolls and vectorises the short rows that defeat it in generic code
(benchmarks/experiments/ compares the loops; docs/10_performance.md explains why).
Reference: minigrad.ops.im2col's NumPy path; every loop here agrees with it bit for bit
(a copy, no arithmetic).
"""
import numpy
from numba import njit, prange

from . import LIMITS, run_loop, workspace
from ..geometry import output_size


@njit(inline="always", cache=True)
def valid_range(n_out, stride, offset, size):
    """The outputs o in [lo, hi) whose input index o*stride + offset lies in [0, size)."""
    lo = 0
    if offset < 0:
        lo = (-offset + stride - 1) // stride             # ceil(-offset / stride)
    hi = 0
    if size - offset > 0:
        hi = (size - offset - 1) // stride + 1
    hi = min(hi, n_out)
    lo = min(lo, hi)
    return lo, hi


@njit(parallel=True, cache=True, fastmath=False)
def _im2col_rows(x, cols, kernel_h, kernel_w, stride_h, stride_w, pad_h, pad_w, dil_h, dil_w, out_h, out_w):
    n_images, channels, height, width = x.shape
    taps = kernel_h * kernel_w
    for row in prange(channels * taps):
        c = row // taps
        kh = (row // kernel_w) % kernel_h
        kw = row % kernel_w
        offset_w = kw * dil_w - pad_w                    # input column = ow*SW + offset_w
        lo, hi = valid_range(out_w, stride_w, offset_w, width)
        for n in range(n_images):
            for oh in range(out_h):
                ih = oh * stride_h - pad_h + kh * dil_h
                column = (n * out_h + oh) * out_w        # first column of (n, oh, :)
                if ih < 0 or ih >= height:               # this whole output row reads padding
                    for ow in range(out_w):
                        cols[row, column + ow] = 0
                    continue
                for ow in range(lo):
                    cols[row, column + ow] = 0
                if stride_w == 1:                        # unit stride: a contiguous run, vectorised by LLVM
                    for ow in range(lo, hi):             # (a loop: a slice copy costs more for short rows)
                        cols[row, column + ow] = x[n, c, ih, ow + offset_w]
                else:
                    for ow in range(lo, hi):
                        cols[row, column + ow] = x[n, c, ih, ow * stride_w + offset_w]
                for ow in range(hi, out_w):
                    cols[row, column + ow] = 0


@njit(parallel=True, cache=True, fastmath=False)
def _im2col_rows_flat(x, cols, kernel_h, kernel_w, pad_h, pad_w, dil_h, dil_w, out_h, out_w):
    """The same rows as `_im2col_rows`, for stride 1 and out_w == W (a "same" convolution).

    Then one row of cols, for one image, is the flattened image plane SHIFTED by
    (kh*DH - PH) rows and (kw*DW - PW) columns: output (oh, ow) reads flat pixel
    (oh + offset_h) * W + ow + offset_w, one long contiguous run instead of OH runs of
    OW. The run also fills the padding columns (ow < lo or ow >= hi) with pixels of
    the neighbouring image row, so those are set to 0 afterwards; the padding rows
    (oh < oh_lo or oh >= oh_hi) are zeroed first. Long runs vectorise far better than
    `_im2col_rows`' short ones.
    """
    n_images, channels, height, width = x.shape
    taps = kernel_h * kernel_w
    plane = height * width
    outputs = out_h * out_w
    x_flat = x.reshape(n_images, channels, plane)
    for row in prange(channels * taps):
        c = row // taps
        kh = (row // kernel_w) % kernel_h
        kw = row % kernel_w
        offset_h = kh * dil_h - pad_h                    # input row = oh + offset_h
        offset_w = kw * dil_w - pad_w                    # input column = ow + offset_w
        lo, hi = valid_range(out_w, 1, offset_w, width)
        oh_lo, oh_hi = valid_range(out_h, 1, offset_h, height)
        for n in range(n_images):
            image_row = cols[row, n * outputs:(n + 1) * outputs]     # this image's (oh, ow), flat
            for i in range(oh_lo * out_w):                           # rows that read padding
                image_row[i] = 0
            for i in range(oh_hi * out_w, outputs):
                image_row[i] = 0
            first = (oh_lo + offset_h) * width + offset_w            # flat pixel read at (oh_lo, 0)
            skip = max(0, -first)                                    # (it is -1 for offset_w = -1)
            last = min((oh_hi + offset_h) * width + offset_w, plane)
            target = image_row[oh_lo * out_w + skip:]
            source = x_flat[n, c, first + skip:last]
            for i in range(last - first - skip):                     # the long contiguous copy
                target[i] = source[i]
            for oh in range(oh_lo, oh_hi):                           # padding columns read the wrong row
                for ow in range(lo):
                    image_row[oh * out_w + ow] = 0
                for ow in range(hi, out_w):
                    image_row[oh * out_w + ow] = 0


@njit(inline="always", cache=True)
def fill_windows(plane, windows, stride_h, stride_w, pad_h, pad_w):
    """The strided path's buffer for one image plane (H, W), dilation 1:

        windows[p, kw, i, ow] = x_padded[i*SH + p, ow*SW + kw]

    p a row phase (0 <= p < SH), kw a kernel column, i a row of that phase, ow an output
    column. Tap (kh, kw) at output (oh, ow) reads padded row oh*SH + kh = (oh + kh // SH)*SH
    + kh % SH, that is row oh + kh // SH of phase p = kh % SH. So the whole (OH, OW) window
    of tap (kh, kw) is rows kh // SH ... kh // SH + OH - 1 of windows[kh % SH, kw]: one
    CONTIGUOUS block of OH*OW numbers, which is exactly its row of cols for this image.
    The strided gather (every SW-th pixel) happens here, once per (p, kw) instead of once
    per tap, and reads a plane that sits in the L1 cache.
    """
    height, width = plane.shape
    phases, kernel_w, rows_per_phase, out_w = windows.shape
    windows[:] = 0                                         # the padding's cells
    for kw in range(kernel_w):
        offset_w = kw - pad_w                              # input column = ow*SW + offset_w
        lo, hi = valid_range(out_w, stride_w, offset_w, width)
        if hi <= lo:
            continue
        first = lo * stride_w + offset_w                   # >= 0: the first real pixel it reads
        for p in range(phases):
            for i in range(rows_per_phase):
                h = i * stride_h + p - pad_h
                if h < 0 or h >= height:
                    continue
                # Slices, then an index that counts up from 0: no wrap-around test, a tight loop.
                source = plane[h, first:]
                target = windows[p, kw, i, lo:hi]
                for j in range(hi - lo):
                    target[j] = source[j * stride_w]


@njit(inline="always", cache=True)
def windows_shape(kernel_h, kernel_w, stride_h, out_h, out_w):
    """(phases, KW, rows per phase, OW): only the row phases some tap reads (kh % SH for kh < KH)."""
    return (min(stride_h, kernel_h), kernel_w, out_h + (kernel_h - 1) // stride_h, out_w)


@njit(inline="always", cache=True)
def _plane_to_cols(x, cols, n, c, windows, kernel_h, stride_h, stride_w, pad_h, pad_w, out_h, out_w):
    """Plane (n, c)'s part of cols through `fill_windows`, one block copy per tap:

        cols[(c, kh, kw), (n, oh, ow)] = windows[kh % SH, kw, oh + kh // SH, ow]
    """
    kernel_w = windows.shape[1]
    taps = kernel_h * kernel_w
    outputs = out_h * out_w
    flat = windows.reshape(windows.shape[0], kernel_w, windows.shape[2] * out_w)  # (phases, KW, rows*OW)
    fill_windows(x[n, c], windows, stride_h, stride_w, pad_h, pad_w)
    for kh in range(kernel_h):
        start = (kh // stride_h) * out_w                       # the window's first row, flattened
        for kw in range(kernel_w):
            source = flat[kh % stride_h, kw, start:start + outputs]
            target = cols[c * taps + kh * kernel_w + kw, n * outputs:(n + 1) * outputs]
            for i in range(outputs):                           # one contiguous block per tap
                target[i] = source[i]


@njit(parallel=True, cache=True)
def _im2col_windows(x, cols, kernel_h, kernel_w, stride_h, stride_w, pad_h, pad_w, out_h, out_w):
    """The rows of cols for a strided convolution (dilation 1), one image plane (n, c) per iteration.
    (Numba moves the allocation below out of the loop, one buffer per thread; iterations write
    disjoint blocks of cols.)"""
    channels = x.shape[1]
    for plane in prange(x.shape[0] * channels):
        windows = numpy.empty(windows_shape(kernel_h, kernel_w, stride_h, out_h, out_w), x.dtype)
        _plane_to_cols(x, cols, plane // channels, plane % channels, windows, kernel_h, stride_h, stride_w,
                       pad_h, pad_w, out_h, out_w)


@njit(nogil=True, cache=True)
def _im2col_windows_serial(x, cols, kernel_h, kernel_w, stride_h, stride_w, pad_h, pad_w, out_h, out_w):
    """The serial twin of `_im2col_windows` (LIMITS["serial_below_bytes"]), with ONE windows buffer: an
    allocation per image is a noticeable share of the time on small planes."""
    windows = numpy.empty(windows_shape(kernel_h, kernel_w, stride_h, out_h, out_w), x.dtype)
    for n in range(x.shape[0]):
        for c in range(x.shape[1]):
            _plane_to_cols(x, cols, n, c, windows, kernel_h, stride_h, stride_w, pad_h, pad_w, out_h, out_w)


@njit(inline="always", cache=True)
def gather_plane(x, cols, n, c, kernel_h, kernel_w, stride_h, stride_w, pad_h, pad_w, out_h, out_w, width=-1):
    """Plane (n, c)'s part of cols straight from the definition (dilation 1), one number at a time:

        cols[(c, kh, kw), (n, oh, ow)] = x[n, c, oh*SH + kh - PH, ow*SW + kw - PW]   (0 in the padding)

    As generic code this is slow: a padding test and an index computation for every number. It is
    compiled with the kernel, stride, padding and OW as CONSTANTS (`constant_size_loop`): LLVM then
    unrolls the ow loop, settles every padding test while compiling and reads a row's every SW-th
    pixel with vector shuffles, and it beats both the windows buffer and this same code compiled
    with the sizes as ordinary arguments (benchmarks/experiments/constant_sizes.py times all three).
    `width`, the input's, may be a constant too (-1: read it from x): then the test against the
    right edge is settled while compiling as well, which nearly halves LeNet's 5x5 gathers.
    """
    plane = x[n, c]
    height = plane.shape[0]
    if width < 0:
        width = plane.shape[1]
    taps = kernel_h * kernel_w
    outputs = out_h * out_w
    for kh in range(kernel_h):
        for kw in range(kernel_w):
            row = c * taps + kh * kernel_w + kw
            for oh in range(out_h):
                h = oh * stride_h + kh - pad_h
                first = n * outputs + oh * out_w               # the column of (n, oh, 0)
                if h < 0 or h >= height:                       # a row of padding
                    for ow in range(out_w):
                        cols[row, first + ow] = 0
                else:
                    for ow in range(out_w):
                        w = ow * stride_w + kw - pad_w
                        cols[row, first + ow] = plane[h, w] if 0 <= w < width else 0


_constant_size_loops = {}      # (KH, KW, SH, SW, PH, PW, OW, W) -> the serial loop compiled for them (W -1: read at run time)


def takes_constant_size_loop(kernel_h, kernel_w, stride, dilation, cols_bytes, unit_stride=False):
    """Whether im2col and col2im run the loop compiled for these sizes: a strided (windows-path)
    convolution's chunk, from LIMITS["constant_sizes_from_bytes"] of cols and under
    LIMITS["serial_below_bytes"] (see `configure` in __init__.py; smaller calls keep the generic
    loop and compile nothing new). unit_stride: im2col's loop serves stride-1 convolutions too
    (the "valid" ones, narrower than their input, like LeNet's 5x5: `gather_plane` with its sizes
    known copies their short rows several times faster than the generic row loop)."""
    smallest = LIMITS["constant_sizes_from_bytes"]
    geometry = uses_windows(kernel_h, kernel_w, stride, dilation) or (
        unit_stride and tuple(stride) == (1, 1) and tuple(dilation) == (1, 1))
    return smallest is not None and geometry and smallest <= cols_bytes < LIMITS["serial_below_bytes"]


def constant_size_loop(kernel_h, kernel_w, stride, padding, out_w, width=-1):
    """The serial im2col loop, `loop(x, cols, out_h)`, compiled with these sizes as constants
    (and the input's width, when given: im2col gives it).

    Like the JIT convolution kernels of oneDNN, minigrad compiles this loop once for every
    (kernel, stride, padding, output width) it meets: a ResNet has two or three. Numba keeps
    each compiled loop in its on-disk cache (the constants are part of the cache key), so a
    new process loads it instead of compiling again. The loops are kept for the
    life of the process: inputs of ever new widths would each pay a compile and keep a loop.
    """
    return loop_for_sizes(_constant_size_loops, _compile_constant_size_loop,
                          kernel_h, kernel_w, stride, padding, out_w, width)


def loop_for_sizes(loops, compile_loop, kernel_h, kernel_w, stride, padding, out_w, *more):
    """loops[sizes], made by compile_loop(*sizes) the first time these sizes come (im2col's and
    col2im's `constant_size_loop`). Two threads asking at once may both make one; one is kept."""
    sizes = (kernel_h, kernel_w, stride[0], stride[1], padding[0], padding[1], out_w, *more)
    loop = loops.get(sizes)
    if loop is None:
        loop = loops.setdefault(sizes, compile_loop(*sizes))
    return loop


def _compile_constant_size_loop(kernel_h, kernel_w, stride_h, stride_w, pad_h, pad_w, out_w, width=-1):
    """A Numba function in which these numbers are constants: a closure's variables are,
    to Numba, frozen values that LLVM sees like literals."""
    @njit(nogil=True, cache=True)
    def gather_with_constant_sizes(x, cols, out_h):
        for n in range(x.shape[0]):
            for c in range(x.shape[1]):
                gather_plane(x, cols, n, c, kernel_h, kernel_w, stride_h, stride_w, pad_h, pad_w, out_h, out_w,
                             width)
    return gather_with_constant_sizes


# Serial twins of the two loops, for small arrays (see LIMITS["serial_below_bytes"] in __init__.py): the same
# Python function compiled without `parallel` (prange then runs as range) and with `nogil`, called
# through a cached wrapper of its own name (two cached dispatchers of one function would share a
# cache file and its keys. The constant-size loops above share one file too, safely: Numba puts a
# closure's variables into the key.)
_rows_serial_loop = njit(nogil=True)(_im2col_rows.py_func)
_rows_flat_serial_loop = njit(nogil=True)(_im2col_rows_flat.py_func)


@njit(nogil=True, cache=True)
def _im2col_rows_serial(x, cols, kernel_h, kernel_w, stride_h, stride_w, pad_h, pad_w, dil_h, dil_w, out_h, out_w):
    _rows_serial_loop(x, cols, kernel_h, kernel_w, stride_h, stride_w, pad_h, pad_w, dil_h, dil_w, out_h, out_w)


@njit(nogil=True, cache=True)
def _im2col_rows_flat_serial(x, cols, kernel_h, kernel_w, pad_h, pad_w, dil_h, dil_w, out_h, out_w):
    _rows_flat_serial_loop(x, cols, kernel_h, kernel_w, pad_h, pad_w, dil_h, dil_w, out_h, out_w)


def uses_windows(kernel_h, kernel_w, stride, dilation):
    """The windows path: strided, not dilated, and a kernel at least as large as the stride, so
    that taps share the buffer's gathers. A 1x1 kernel at stride 2 reads each pixel it uses once:
    a buffer would only add a copy."""
    return (tuple(dilation) == (1, 1) and max(stride) > 1
            and kernel_h >= stride[0] and kernel_w >= stride[1])


def im2col(x, kernel_h, kernel_w, stride, padding, dilation):
    """cols (C*KH*KW, N*OH*OW) from x (N, C, H, W); stride/padding/dilation are (h, w) pairs."""
    n_images, channels, height, width = x.shape
    out_h = output_size(height, kernel_h, stride[0], padding[0], dilation[0])
    out_w = output_size(width, kernel_w, stride[1], padding[1], dilation[1])
    if out_h < 1 or out_w < 1:
        raise ValueError(f"im2col: the dilated kernel ({kernel_h}x{kernel_w}, dilation {tuple(dilation)}) is "
                         f"larger than the padded input {height}x{width} (padding {tuple(padding)})")
    x = numpy.ascontiguousarray(x)
    cols = workspace.empty((channels * kernel_h * kernel_w, n_images * out_h * out_w), x.dtype)  # see workspace.py
    if not cols.size:
        return cols
    if tuple(stride) == (1, 1) and out_w == width:
        loops = (_im2col_rows_flat_serial, _im2col_rows_flat)
        arguments = (x, cols, kernel_h, kernel_w, padding[0], padding[1], dilation[0], dilation[1], out_h, out_w)
    elif takes_constant_size_loop(kernel_h, kernel_w, stride, dilation, cols.nbytes, unit_stride=True):   # a chunk
        constant_size_loop(kernel_h, kernel_w, stride, padding, out_w, width)(x, cols, out_h)
        return cols
    elif uses_windows(kernel_h, kernel_w, stride, dilation):   # strided: through `fill_windows`
        loops = (_im2col_windows_serial, _im2col_windows)
        arguments = (x, cols, kernel_h, kernel_w, stride[0], stride[1], padding[0], padding[1], out_h, out_w)
    else:
        loops = (_im2col_rows_serial, _im2col_rows)
        arguments = (x, cols, kernel_h, kernel_w, stride[0], stride[1], padding[0], padding[1],
                     dilation[0], dilation[1], out_h, out_w)
    run_loop(*loops, cols.nbytes, *arguments)
    return cols
