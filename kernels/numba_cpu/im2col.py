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
parallel loop has no races, and each row is written left to right.
`_im2col_rows_flat` fills the same rows faster when stride is 1 and the output
is as wide as the input (3x3 with padding 1, 1x1 without): see its docstring.
For strided convolutions (dilation 1), `copy_phases` first sorts the padded input
into its SH*SW phase planes and `_im2col_rows_phases` then copies contiguous runs
instead of gathering every other pixel (ResNet-20's stride-2 layers, batch 128, 1 thread,
both im2col passes of a step: 8.5 -> 6.4 ms for 16->32 channels, 5.1 -> 4.7 ms for 32->64).
Reference: minigrad.ops.im2col's NumPy path; both kernels agree with it bit for bit
(a copy, no arithmetic).
"""
import numpy
from numba import njit, prange

from kernels.numba_cpu import SERIAL_BELOW_BYTES, launch_lock, workspace


def output_size(size, kernel, stride, padding, dilation):
    """Number of kernel positions along one axis."""
    return (size + 2 * padding - dilation * (kernel - 1) - 1) // stride + 1


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
                if stride_w == 1:                        # unit stride: a contiguous copy (SIMD)
                    cols[row, column + lo:column + hi] = x[n, c, ih, lo + offset_w:hi + offset_w]
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
    (oh < oh_lo or oh >= oh_hi) are zeroed first. 2-2.7x faster than `_im2col_rows`
    on ResNet-20's 3x3 layers (per chunk of about 1 MiB, 1 thread).
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
def phase_span(phase, stride, padding, size, plane_size):
    """Along one axis, which input indices land in `phase`: (first, start, count).

    Input indices first, first + stride, ... (count of them) go to phase indices
    start, start + 1, ...: the padded index i + padding = j*stride + phase.
    """
    first = (phase - padding) % stride                      # the first i with (i + padding) % stride == phase
    start = (first + padding) // stride
    count = min((size - first + stride - 1) // stride, plane_size - start)
    return first, start, count


@njit(nogil=True, cache=True)
def copy_phases(images, phases, stride_h, stride_w, pad_h, pad_w, into_phases):
    """Between images (N, C, H, W) and their phase planes (SH, SW, N, C, PH', PW'):

        phases[p, q, n, c, i, j] = x_padded[n, c, i*SH + p, j*SW + q]

    into_phases=True: the polyphase split of a strided convolution's input (`phases` is
    zeroed first: the cells of the padding stay 0). Tap (kh, kw) at output (oh, ow) reads
    x_padded row oh*SH + kh = (oh + kh // SH)*SH + kh % SH, that is row oh + kh // SH of
    phase kh % SH (and likewise for columns). So in the phase planes every tap reads a
    plain stride-1 window, and `_im2col_rows_phases` copies runs of OW contiguous pixels
    instead of gathering every SW-th one.
    into_phases=False: the adjoint, images[n, c, h, w] = the phase cell of padded pixel
    (h + PH, w + PW) (each pixel is in exactly one phase; the padding's cells are dropped;
    pixels beyond the phase planes are left as they are, the caller zeroes them).
    """
    n_images, channels, height, width = images.shape
    if into_phases:
        phases[:] = 0
    for p in range(stride_h):
        first_h, start_h, rows = phase_span(p, stride_h, pad_h, height, phases.shape[4])
        for q in range(stride_w):
            first_w, start_w, columns = phase_span(q, stride_w, pad_w, width, phases.shape[5])
            if rows <= 0 or columns <= 0:
                continue
            for n in range(n_images):
                for c in range(channels):                    # one strided 2-D copy per plane and phase
                    pixels = images[n, c, first_h:first_h + rows * stride_h:stride_h,
                                    first_w:first_w + columns * stride_w:stride_w]
                    cells = phases[p, q, n, c, start_h:start_h + rows, start_w:start_w + columns]
                    if into_phases:
                        cells[:, :] = pixels
                    else:
                        pixels[:, :] = cells


@njit(parallel=True, cache=True)
def _im2col_rows_phases(phases, cols, kernel_h, kernel_w, stride_h, stride_w, out_h, out_w):
    """The rows of cols for a strided convolution (dilation 1), read from the phase planes."""
    n_images, channels = phases.shape[2], phases.shape[3]
    taps = kernel_h * kernel_w
    outputs = out_h * out_w
    for row in prange(channels * taps):
        c = row // taps
        kh = (row // kernel_w) % kernel_h
        kw = row % kernel_w
        shift_h, shift_w = kh // stride_h, kw // stride_w                  # the window's offset in its phase
        for n in range(n_images):
            plane = phases[kh % stride_h, kw % stride_w, n, c]
            image_row = cols[row, n * outputs:(n + 1) * outputs]
            for oh in range(out_h):
                source = plane[oh + shift_h, shift_w:shift_w + out_w]
                target = image_row[oh * out_w:(oh + 1) * out_w]
                for ow in range(out_w):                                    # a contiguous run
                    target[ow] = source[ow]


# Serial twins of the two loops, for small arrays (see SERIAL_BELOW_BYTES in __init__.py): the same
# Python function compiled without `parallel` (prange then runs as range) and with `nogil`, called
# through a cached wrapper of its own name (two cached dispatchers of one function would share a
# cache file).
_rows_serial_loop = njit(nogil=True)(_im2col_rows.py_func)
_rows_flat_serial_loop = njit(nogil=True)(_im2col_rows_flat.py_func)
_rows_phases_serial_loop = njit(nogil=True)(_im2col_rows_phases.py_func)


@njit(nogil=True, cache=True)
def _im2col_rows_serial(x, cols, kernel_h, kernel_w, stride_h, stride_w, pad_h, pad_w, dil_h, dil_w, out_h, out_w):
    _rows_serial_loop(x, cols, kernel_h, kernel_w, stride_h, stride_w, pad_h, pad_w, dil_h, dil_w, out_h, out_w)


@njit(nogil=True, cache=True)
def _im2col_rows_flat_serial(x, cols, kernel_h, kernel_w, pad_h, pad_w, dil_h, dil_w, out_h, out_w):
    _rows_flat_serial_loop(x, cols, kernel_h, kernel_w, pad_h, pad_w, dil_h, dil_w, out_h, out_w)


@njit(nogil=True, cache=True)
def _im2col_rows_phases_serial(phases, cols, kernel_h, kernel_w, stride_h, stride_w, out_h, out_w):
    _rows_phases_serial_loop(phases, cols, kernel_h, kernel_w, stride_h, stride_w, out_h, out_w)


def uses_phases(kernel_h, kernel_w, stride, dilation):
    """The phase-plane path: strided, not dilated, and every phase read by some tap (a kernel at
    least as large as the stride; a 1x1 kernel at stride 2 reads one pixel in four, and splitting
    all four phases measured 1.6x slower than gathering those pixels: 7.3 vs 4.5 ms, 32->64
    channels, batch 128)."""
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
    elif uses_phases(kernel_h, kernel_w, stride, dilation):   # strided: copy from the phase planes
        phases = workspace.empty((stride[0], stride[1], n_images, channels, out_h + (kernel_h - 1) // stride[0],
                                  out_w + (kernel_w - 1) // stride[1]), x.dtype)
        copy_phases(x, phases, stride[0], stride[1], padding[0], padding[1], True)
        loops = (_im2col_rows_phases_serial, _im2col_rows_phases)
        arguments = (phases, cols, kernel_h, kernel_w, stride[0], stride[1], out_h, out_w)
    else:
        loops = (_im2col_rows_serial, _im2col_rows)
        arguments = (x, cols, kernel_h, kernel_w, stride[0], stride[1], padding[0], padding[1],
                     dilation[0], dilation[1], out_h, out_w)
    if cols.nbytes < SERIAL_BELOW_BYTES:
        loops[0](*arguments)            # on this thread, without the GIL
    else:
        with launch_lock:               # Numba's thread pool: one launch at a time
            loops[1](*arguments)
    return cols
