"""col2im on the CPU with Numba: fold columns back into an image, summing overlaps.

col2im is the adjoint (transpose) of im2col: im2col copies each input pixel
into every column whose receptive field covers it, so the gradient of that
pixel is the SUM of those column entries:

    dx[n, c, h, w] = sum over taps (kh, kw) and outputs (oh, ow) with
                         h = oh*SH - PH + kh*DH   and   w = ow*SW - PW + kw*DW
                     of cols[(c, kh, kw), (n, oh, ow)]

    cols  (C*KH*KW, N*OH*OW)    dx (N, C, H, W)

Deterministic and race-free under `prange`: no two parallel iterations ever
write the same pixel, and every pixel adds its terms in the same order on every
run and every thread count: (kh, kw) order, except on the strided windows path
below, which groups them by kw. (A plain scatter over columns, "add each entry
to its pixel", would race.)

One iteration owns ONE PLANE (n, c) and walks tap by tap, adding each tap's
contiguous run of columns into its pixels: it streams through `cols` row by
row. (A per-pixel gather, each pixel visiting the taps that read it, hops
between KH*KW rows instead and is slower: benchmarks/experiments/col2im_gather.py.)
For strided convolutions (dilation 1) it goes image by image through the windows
buffer of im2col's `fill_windows` (`_col2im_windows`): each tap's columns are
added onto their contiguous block, then `add_windows` adds the buffer onto the
pixels. A pixel's terms are then added grouped by kernel column (kw), not in
(kh, kw) order: the same sum to rounding, not bit for bit. Chunks in the size
range the caller configured run that loop compiled with their sizes as
constants (`constant_size_loop`, as in im2col.py): the same sums, faster.

Reference: minigrad.ops.im2col's NumPy path, which also adds tap by tap; the
results agree to float rounding (bit for bit, except on the strided windows path).
"""
import numpy
from numba import njit, prange

from . import run_loop, workspace
from ..geometry import check_shape, output_size
from .im2col import loop_for_sizes, takes_constant_size_loop, uses_windows, valid_range, windows_shape


@njit(parallel=True, cache=True, fastmath=False)
def _col2im_planes(cols, dx, kernel_h, kernel_w, stride_h, stride_w, pad_h, pad_w, dil_h, dil_w, out_h, out_w):
    n_images, channels, height, width = dx.shape
    taps = kernel_h * kernel_w
    for plane in prange(n_images * channels):
        n = plane // channels
        c = plane % channels
        dx[n, c] = 0                                     # dx comes uninitialised from the workspace
        for kh in range(kernel_h):
            for kw in range(kernel_w):
                row = c * taps + kh * kernel_w + kw
                offset_w = kw * dil_w - pad_w            # input column = ow*SW + offset_w
                lo, hi = valid_range(out_w, stride_w, offset_w, width)
                for oh in range(out_h):
                    h = oh * stride_h - pad_h + kh * dil_h
                    if h < 0 or h >= height:
                        continue
                    column = (n * out_h + oh) * out_w    # first column of (n, oh, :)
                    if stride_w == 1:                    # unit stride: contiguous runs (SIMD)
                        # Slices, and an index i that counts up from 0: Numba then knows no index
                        # is negative, drops its wrap-around test and LLVM vectorises the loop
                        # (indexing dx_row[ow + offset_w] instead keeps the test and does not vectorise).
                        target = dx[n, c, h, lo + offset_w:hi + offset_w]
                        source = cols[row, column + lo:column + hi]
                        for i in range(hi - lo):
                            target[i] += source[i]
                    else:
                        for ow in range(lo, hi):
                            dx[n, c, h, ow * stride_w + offset_w] += cols[row, column + ow]


@njit(inline="always", cache=True)
def add_windows(windows, plane, stride_h, stride_w, pad_h, pad_w):
    """The adjoint of im2col's `fill_windows`: plane[h, w] += every window cell copied from it.

    fill_windows set windows[p, kw, i, ow] = x_padded[i*SH + p, ow*SW + kw]; so here each
    cell is added back onto that pixel (cells of the padding are dropped). Within one (p, kw)
    the cells land on distinct pixels; different (p, kw) add up, in a fixed order.
    """
    height, width = plane.shape
    phases, kernel_w, rows_per_phase, out_w = windows.shape
    for kw in range(kernel_w):
        offset_w = kw - pad_w
        lo, hi = valid_range(out_w, stride_w, offset_w, width)
        if hi <= lo:
            continue
        first = lo * stride_w + offset_w
        for p in range(phases):
            for i in range(rows_per_phase):
                h = i * stride_h + p - pad_h
                if h < 0 or h >= height:
                    continue
                source = windows[p, kw, i, lo:hi]
                target = plane[h, first:]
                for j in range(hi - lo):
                    target[j * stride_w] += source[j]


@njit(inline="always", cache=True)
def _cols_to_plane(cols, dx, n, c, windows, kernel_h, stride_h, stride_w, pad_h, pad_w, out_h, out_w):
    """Plane (n, c) of dx from its part of cols: the adjoint of im2col's `_plane_to_cols`,

        windows[kh % SH, kw, oh + kh // SH, ow] += cols[(c, kh, kw), (n, oh, ow)]   (tap by tap)

    then `add_windows` adds the buffer onto the zeroed plane.
    """
    kernel_w = windows.shape[1]
    taps = kernel_h * kernel_w
    outputs = out_h * out_w
    flat = windows.reshape(windows.shape[0], kernel_w, windows.shape[2] * out_w)  # (phases, KW, rows*OW)
    windows[:] = 0
    for kh in range(kernel_h):
        start = (kh // stride_h) * out_w
        for kw in range(kernel_w):
            target = flat[kh % stride_h, kw, start:start + outputs]
            source = cols[c * taps + kh * kernel_w + kw, n * outputs:(n + 1) * outputs]
            for i in range(outputs):                       # one contiguous block per tap
                target[i] += source[i]
    dx[n, c] = 0                                           # dx comes uninitialised from the workspace
    add_windows(windows, dx[n, c], stride_h, stride_w, pad_h, pad_w)


@njit(parallel=True, cache=True, fastmath=False)
def _col2im_windows(cols, dx, kernel_h, kernel_w, stride_h, stride_w, pad_h, pad_w, out_h, out_w):
    """For a strided convolution (dilation 1): one plane (n, c) per iteration, so no two write one pixel.
    (Numba moves the allocation below out of the loop, one buffer per thread.)"""
    channels = dx.shape[1]
    for plane in prange(dx.shape[0] * channels):
        windows = numpy.empty(windows_shape(kernel_h, kernel_w, stride_h, out_h, out_w), dx.dtype)
        _cols_to_plane(cols, dx, plane // channels, plane % channels, windows, kernel_h, stride_h, stride_w,
                       pad_h, pad_w, out_h, out_w)


@njit(nogil=True, cache=True)
def _col2im_windows_serial(cols, dx, kernel_h, kernel_w, stride_h, stride_w, pad_h, pad_w, out_h, out_w):
    """The serial twin of `_col2im_windows`, with one windows buffer (see im2col's `_im2col_windows_serial`)."""
    windows = numpy.empty(windows_shape(kernel_h, kernel_w, stride_h, out_h, out_w), dx.dtype)
    for n in range(dx.shape[0]):
        for c in range(dx.shape[1]):
            _cols_to_plane(cols, dx, n, c, windows, kernel_h, stride_h, stride_w, pad_h, pad_w, out_h, out_w)


_constant_size_loops = {}      # (KH, KW, SH, SW, PH, PW, OW) -> the serial loop compiled for them


def constant_size_loop(kernel_h, kernel_w, stride, padding, out_w):
    """The serial strided col2im loop, `loop(cols, dx, out_h)`, compiled with these sizes as constants
    (see im2col's `constant_size_loop`): `_cols_to_plane`, the windows path, with every loop bound
    known to LLVM. The same sums in the same order as the generic loop, bit for bit, and faster.
    (A direct scatter like im2col's `gather_plane`, compiled the same way, was not faster.)
    """
    return loop_for_sizes(_constant_size_loops, _compile_constant_size_loop,
                          kernel_h, kernel_w, stride, padding, out_w)


def _compile_constant_size_loop(kernel_h, kernel_w, stride_h, stride_w, pad_h, pad_w, out_w):
    """A Numba function in which these seven numbers are constants (a closure's variables)."""
    @njit(nogil=True, cache=True)
    def scatter_with_constant_sizes(cols, dx, out_h):
        windows = numpy.empty(windows_shape(kernel_h, kernel_w, stride_h, out_h, out_w), dx.dtype)
        for n in range(dx.shape[0]):
            for c in range(dx.shape[1]):
                _cols_to_plane(cols, dx, n, c, windows, kernel_h, stride_h, stride_w, pad_h, pad_w, out_h, out_w)
    return scatter_with_constant_sizes


# The serial twin of `_col2im_planes` for small arrays (see im2col.py and LIMITS["serial_below_bytes"]).
_planes_serial_loop = njit(nogil=True)(_col2im_planes.py_func)


@njit(nogil=True, cache=True)
def _col2im_planes_serial(cols, dx, kernel_h, kernel_w, stride_h, stride_w, pad_h, pad_w, dil_h, dil_w, out_h,
                          out_w):
    _planes_serial_loop(cols, dx, kernel_h, kernel_w, stride_h, stride_w, pad_h, pad_w, dil_h, dil_w, out_h, out_w)




def _check_and_size(cols, x_shape, kernel_h, kernel_w, stride, padding, dilation):
    n_images, channels, height, width = x_shape
    out_h = output_size(height, kernel_h, stride[0], padding[0], dilation[0])
    out_w = output_size(width, kernel_w, stride[1], padding[1], dilation[1])
    expected = (channels * kernel_h * kernel_w, n_images * out_h * out_w)
    check_shape("col2im", "cols", cols.shape, expected, "(C*KH*KW, N*OH*OW)", x_shape)
    return out_h, out_w


_unit_stride_loops = {}        # (KH, KW, 1, 1, PH, PW, OW, W) -> the stride-1 loop compiled for them


def unit_stride_loop(kernel_h, kernel_w, padding, out_w, width):
    """`_col2im_planes` for stride 1 (dilation 1), serial, compiled with the kernel, padding, OW and the
    input's width as constants (see im2col's `constant_size_loop`): the same sums in the same order,
    bit for bit, with the bounds of its short rows known to LLVM (LeNet's 5x5 layers)."""
    return loop_for_sizes(_unit_stride_loops, _compile_unit_stride_loop,
                          kernel_h, kernel_w, (1, 1), padding, out_w, width)


def _compile_unit_stride_loop(kernel_h, kernel_w, stride_h, stride_w, pad_h, pad_w, out_w, width):
    @njit(nogil=True, cache=True)
    def scatter_unit_stride(cols, dx, out_h):
        n_images, channels, height = dx.shape[0], dx.shape[1], dx.shape[2]
        taps = kernel_h * kernel_w
        for plane in range(n_images * channels):
            n = plane // channels
            c = plane % channels
            dx[n, c] = 0
            for kh in range(kernel_h):
                for kw in range(kernel_w):
                    row = c * taps + kh * kernel_w + kw
                    offset_w = kw - pad_w
                    lo, hi = valid_range(out_w, 1, offset_w, width)
                    for oh in range(out_h):
                        h = oh - pad_h + kh
                        if h < 0 or h >= height:
                            continue
                        column = (n * out_h + oh) * out_w
                        target = dx[n, c, h, lo + offset_w:hi + offset_w]
                        source = cols[row, column + lo:column + hi]
                        for i in range(hi - lo):
                            target[i] += source[i]
    return scatter_unit_stride


def col2im(cols, x_shape, kernel_h, kernel_w, stride, padding, dilation, out=None):
    """dx (N, C, H, W) from cols (C*KH*KW, N*OH*OW): the adjoint of im2col.

    out: a C-contiguous array of x_shape and cols' dtype to write dx into (the convolution passes
    its chunk of the whole batch's dx), else dx comes from the buffer pool.
    """
    out_h, out_w = _check_and_size(cols, x_shape, kernel_h, kernel_w, stride, padding, dilation)
    cols = numpy.ascontiguousarray(cols)
    if out is not None and (tuple(out.shape) != tuple(x_shape) or out.dtype != cols.dtype
                            or not out.flags.c_contiguous):
        raise ValueError(f"col2im: out must be a C-contiguous {cols.dtype} array of shape {tuple(x_shape)}, "
                         f"got {out.dtype} {tuple(out.shape)} (contiguous: {out.flags.c_contiguous})")
    dx = workspace.empty(x_shape, cols.dtype) if out is None else out
    if dx.size and not cols.size:
        dx[...] = 0
    elif dx.size and takes_constant_size_loop(kernel_h, kernel_w, stride, dilation, cols.nbytes):  # a chunk
        constant_size_loop(kernel_h, kernel_w, stride, padding, out_w)(cols, dx, out_h)
    elif (dx.size and tuple(stride) == (1, 1) and out_w != x_shape[3]          # a stride-1 "valid" chunk
          and takes_constant_size_loop(kernel_h, kernel_w, stride, dilation, cols.nbytes, unit_stride=True)):
        unit_stride_loop(kernel_h, kernel_w, padding, out_w, x_shape[3])(cols, dx, out_h)
    elif dx.size and uses_windows(kernel_h, kernel_w, stride, dilation):   # strided: through the windows
        arguments = (cols, dx, kernel_h, kernel_w, stride[0], stride[1], padding[0], padding[1], out_h, out_w)
        run_loop(_col2im_windows_serial, _col2im_windows, cols.nbytes, *arguments)
    elif dx.size:
        arguments = (cols, dx, kernel_h, kernel_w, stride[0], stride[1], padding[0], padding[1],
                     dilation[0], dilation[1], out_h, out_w)
        run_loop(_col2im_planes_serial, _col2im_planes, cols.nbytes, *arguments)
    return dx
