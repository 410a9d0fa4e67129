"""The four tile transforms of Winograd's F(2x2, 3x3) convolution on the CPU with Numba.

minigrad/ops/winograd.py has the maths and the NumPy references (same names with
`_numpy`); each kernel here gives the same result in one pass over its arrays.

    input_transform            x (N, C, H, W)    -> V (16, T, C)      V = B^T d B per 4x4 tile d
    output_transform           M (16, T, F)      -> y (N, F, OH, OW)  y block = A^T m A
    output_transform_adjoint   dy (N, F, OH, OW) -> dM (16, T, F)     dM = A g A^T per 2x2 block g
    input_transform_adjoint    dV (16, T, C)     -> dx (N, C, H, W)   dx += B dv B^T where the tile was read

    T = N*TH*TW tiles, tile (n, th, tw) at t = (n*TH + th)*TW + tw; the 16 points (xi, nu) at 4*xi + nu.

Channels last, columns split by parity. The channel is the only long axis here (a
tile row of an 8x8 image is 4 tiles), so the loops run over channels, which are
contiguous in V and M. Each image is first copied into a plane of shape
(rows, 2, columns/2, C): channels last, and the even columns (parity 0) apart from
the odd ones. That layout makes both stages long contiguous loops:

  rows    combinations of four plane rows, elementwise over a whole row;
  columns tile tw reads columns 2tw, 2tw+1, 2tw+2, 2tw+3 = even[tw], odd[tw],
          even[tw+1], odd[tw+1]; so for all tiles of a row at once, e.g.
              V[xi, nu=0] = even[0:TW] - even[1:TW+1]       (TW*C contiguous numbers)

The plane is zero-padded as far as the tiles reach, so no loop tests for the border.
Why this layout: a loop per row of tiles runs over TW*C contiguous numbers, which LLVM
vectorises, where channels first (a plane at a time) or a loop over the channels of one
tile runs over short, strided rows. Inside the loops, slices of a flat view made once
(`flat_v[k, start:start + n]`) are used instead of `v[k, a:b].reshape(n)`, which Numba
compiles into a much slower copy.

One loop iteration (one `prange` index) handles ONE IMAGE, so iterations write
disjoint parts of the output: no races, no atomics, and the result does not depend
on the thread count. The matrices hold only 0, +-1 (B, A).
"""
import numpy
from numba import njit, prange

from . import run_loop, workspace


# Each transform is written for ONE image (`..._image`), with its scratch planes passed in, and
# run by two drivers: a parallel one (`prange` over images, scratch made per image) for big
# arrays, and a serial `nogil` one that makes its scratch once, for the cache-sized chunks the
# convolution sends (a fresh zeroed plane per image cost as much as the transform itself).

@njit(inline="always")
def _input_planes(tiles_h, tiles_w, channels, dtype):
    """Scratch of the input transform and its adjoint: the padded plane, channels last and columns
    by parity (zeroed: its border is the padding), and one row of tiles."""
    return (numpy.zeros((2 * tiles_h + 2, 2, tiles_w + 1, channels), dtype),
            numpy.empty((4, 2, tiles_w + 1, channels), dtype))


@njit(inline="always")
def _output_planes(tiles_h, tiles_w, filters, dtype):
    """Scratch of the output transform and its adjoint: the even-sized output plane (zeroed: past an
    odd edge it stays 0) and one row of tiles."""
    return (numpy.zeros((2 * tiles_h, 2, tiles_w, filters), dtype),
            numpy.empty((4, 2, tiles_w, filters), dtype))


@njit(inline="always")
def _input_transform_image(x, n, v, plane, rows, pad_h, pad_w, tiles_h, tiles_w):
    _, channels, height, width = x.shape
    for h in range(height):                                                   # channels last, columns by
        for w in range(width):                                                # parity; the border stays 0
            column = pad_w + w
            pixel = plane[pad_h + h, column & 1, column >> 1]
            for c in range(channels):
                pixel[c] = x[n, c, h, w]
    row_size = 2 * (tiles_w + 1) * channels
    half = (tiles_w + 1) * channels                                           # one parity of a row
    span = tiles_w * channels                                                 # one V row of tiles
    flat_rows = rows.reshape(4, row_size)
    flat_plane = plane.reshape(2 * tiles_h + 2, row_size)
    flat_v = v.reshape(16, v.shape[1] * channels)     # (a reshape inside the loops cost 3x the loop)
    for th in range(tiles_h):
        d0, d1, d2, d3 = flat_plane[2 * th], flat_plane[2 * th + 1], flat_plane[2 * th + 2], flat_plane[2 * th + 3]
        r0, r1, r2, r3 = flat_rows[0], flat_rows[1], flat_rows[2], flat_rows[3]
        for j in range(row_size):                                             # rows: B^T d
            r0[j] = d0[j] - d2[j]
            r1[j] = d1[j] + d2[j]
            r2[j] = d2[j] - d1[j]
            r3[j] = d1[j] - d3[j]
        start = (n * tiles_h + th) * tiles_w * channels                       # tile (n, th, 0) in flat V
        for xi in range(4):                                                   # columns: (B^T d) B, all tiles
            row = flat_rows[xi]
            e0, e1 = row[0:span], row[half:half + span]                       # columns 2tw and 2tw + 1
            e2, e3 = row[channels:channels + span], row[half + channels:half + channels + span]   # 2tw+2, 2tw+3
            v0 = flat_v[4 * xi, start:start + span]
            v1 = flat_v[4 * xi + 1, start:start + span]
            v2 = flat_v[4 * xi + 2, start:start + span]
            v3 = flat_v[4 * xi + 3, start:start + span]
            for j in range(span):
                a0, a1, a2, a3 = e0[j], e1[j], e2[j], e3[j]
                v0[j] = a0 - a2
                v1[j] = a1 + a2
                v2[j] = a2 - a1
                v3[j] = a1 - a3


@njit(parallel=True, cache=True)
def _input_transform(x, v, pad_h, pad_w, tiles_h, tiles_w):
    for n in prange(x.shape[0]):
        plane, rows = _input_planes(tiles_h, tiles_w, x.shape[1], x.dtype)
        _input_transform_image(x, n, v, plane, rows, pad_h, pad_w, tiles_h, tiles_w)


@njit(nogil=True, cache=True)
def _input_transform_serial(x, v, pad_h, pad_w, tiles_h, tiles_w):
    plane, rows = _input_planes(tiles_h, tiles_w, x.shape[1], x.dtype)
    for n in range(x.shape[0]):
        _input_transform_image(x, n, v, plane, rows, pad_h, pad_w, tiles_h, tiles_w)


@njit(inline="always")
def _output_transform_image(m, n, y, plane, cols, tiles_h, tiles_w):
    _, filters, out_h, out_w = y.shape
    span = tiles_w * filters                                                  # one parity of an output row
    flat_cols = cols.reshape(4, 2 * span)
    flat_plane = plane.reshape(2 * tiles_h, 2 * span)
    flat_m = m.reshape(16, m.shape[1] * filters)
    for th in range(tiles_h):
        start = (n * tiles_h + th) * tiles_w * filters
        for xi in range(4):                                                   # columns: m A, all tiles
            m0 = flat_m[4 * xi, start:start + span]
            m1 = flat_m[4 * xi + 1, start:start + span]
            m2 = flat_m[4 * xi + 2, start:start + span]
            m3 = flat_m[4 * xi + 3, start:start + span]
            col = flat_cols[xi]
            left, right = col[0:span], col[span:2 * span]                     # output columns 2tw, 2tw + 1
            for j in range(span):
                b1, b2 = m1[j], m2[j]
                left[j] = m0[j] + b1 + b2
                right[j] = b1 - b2 - m3[j]
        c0, c1, c2, c3 = flat_cols[0], flat_cols[1], flat_cols[2], flat_cols[3]
        top, bottom = flat_plane[2 * th], flat_plane[2 * th + 1]
        for j in range(2 * span):                                             # rows: A^T (m A)
            top[j] = c0[j] + c1[j] + c2[j]
            bottom[j] = c1[j] - c2[j] - c3[j]
    for f in range(filters):                                                  # back to channels first,
        for h in range(out_h):                                                # the odd edge dropped
            for w in range(out_w):
                y[n, f, h, w] = plane[h, w & 1, w >> 1, f]


@njit(parallel=True, cache=True)
def _output_transform(m, y, tiles_h, tiles_w):
    for n in prange(y.shape[0]):
        plane, cols = _output_planes(tiles_h, tiles_w, y.shape[1], m.dtype)
        _output_transform_image(m, n, y, plane, cols, tiles_h, tiles_w)


@njit(nogil=True, cache=True)
def _output_transform_serial(m, y, tiles_h, tiles_w):
    plane, cols = _output_planes(tiles_h, tiles_w, y.shape[1], m.dtype)
    for n in range(y.shape[0]):
        _output_transform_image(m, n, y, plane, cols, tiles_h, tiles_w)


@njit(inline="always")
def _output_transform_adjoint_image(dy, n, dm, plane, rows, tiles_h, tiles_w):
    _, filters, out_h, out_w = dy.shape
    for h in range(out_h):                                                    # channels last, by parity;
        for w in range(out_w):                                                # past an odd edge it stays 0
            pixel = plane[h, w & 1, w >> 1]
            for f in range(filters):
                pixel[f] = dy[n, f, h, w]
    span = tiles_w * filters
    flat_rows = rows.reshape(4, 2 * span)
    flat_plane = plane.reshape(2 * tiles_h, 2 * span)
    flat_dm = dm.reshape(16, dm.shape[1] * filters)
    for th in range(tiles_h):
        g0, g1 = flat_plane[2 * th], flat_plane[2 * th + 1]
        r0, r1, r2, r3 = flat_rows[0], flat_rows[1], flat_rows[2], flat_rows[3]
        for j in range(2 * span):                                             # rows: A g
            r0[j] = g0[j]
            r1[j] = g0[j] + g1[j]
            r2[j] = g0[j] - g1[j]
            r3[j] = -g1[j]
        start = (n * tiles_h + th) * tiles_w * filters
        for xi in range(4):                                                   # columns: (A g) A^T, all tiles
            row = flat_rows[xi]
            left, right = row[0:span], row[span:2 * span]
            d0 = flat_dm[4 * xi, start:start + span]
            d1 = flat_dm[4 * xi + 1, start:start + span]
            d2 = flat_dm[4 * xi + 2, start:start + span]
            d3 = flat_dm[4 * xi + 3, start:start + span]
            for j in range(span):
                a, b = left[j], right[j]
                d0[j] = a
                d1[j] = a + b
                d2[j] = a - b
                d3[j] = -b


@njit(parallel=True, cache=True)
def _output_transform_adjoint(dy, dm, tiles_h, tiles_w):
    for n in prange(dy.shape[0]):
        plane, rows = _output_planes(tiles_h, tiles_w, dy.shape[1], dy.dtype)
        _output_transform_adjoint_image(dy, n, dm, plane, rows, tiles_h, tiles_w)


@njit(nogil=True, cache=True)
def _output_transform_adjoint_serial(dy, dm, tiles_h, tiles_w):
    plane, rows = _output_planes(tiles_h, tiles_w, dy.shape[1], dy.dtype)
    for n in range(dy.shape[0]):
        _output_transform_adjoint_image(dy, n, dm, plane, rows, tiles_h, tiles_w)


@njit(inline="always")
def _input_transform_adjoint_image(dv, n, dx, plane, rows, pad_h, pad_w, tiles_h, tiles_w):
    _, channels, height, width = dx.shape
    row_size = 2 * (tiles_w + 1) * channels
    half = (tiles_w + 1) * channels
    span = tiles_w * channels
    plane[:] = 0
    flat_rows = rows.reshape(4, row_size)
    flat_plane = plane.reshape(2 * tiles_h + 2, row_size)
    flat_dv = dv.reshape(16, dv.shape[1] * channels)
    for th in range(tiles_h):
        start = (n * tiles_h + th) * tiles_w * channels
        for xi in range(4):                                                   # columns: dv B^T, all tiles
            v0 = flat_dv[4 * xi, start:start + span]
            v1 = flat_dv[4 * xi + 1, start:start + span]
            v2 = flat_dv[4 * xi + 2, start:start + span]
            v3 = flat_dv[4 * xi + 3, start:start + span]
            row = flat_rows[xi]
            even, odd = row[0:half], row[half:row_size]                       # columns 2k and 2k + 1
            for j in range(span):                                             # tile tw's columns 0 and 1 ...
                even[j] = v0[j]
                odd[j] = v1[j] - v2[j] + v3[j]
            for j in range(span, half):
                even[j] = 0
                odd[j] = 0
            even_next, odd_next = even[channels:half], odd[channels:half]     # ... its columns 2 and 3 are
            for j in range(span):                                             # the next tile's 0 and 1: add
                even_next[j] += v2[j] + v1[j] - v0[j]
                odd_next[j] -= v3[j]
        r0, r1, r2, r3 = flat_rows[0], flat_rows[1], flat_rows[2], flat_rows[3]
        p0, p1, p2, p3 = flat_plane[2 * th], flat_plane[2 * th + 1], flat_plane[2 * th + 2], flat_plane[2 * th + 3]
        for j in range(row_size):                                             # rows: B (dv B^T); tiles overlap
            p0[j] += r0[j]
            p1[j] += r1[j] - r2[j] + r3[j]
            p2[j] += r2[j] + r1[j] - r0[j]
            p3[j] -= r3[j]
    for c in range(channels):                                                 # back to channels first,
        for h in range(height):                                               # the padding's share dropped
            for w in range(width):
                column = pad_w + w
                dx[n, c, h, w] = plane[pad_h + h, column & 1, column >> 1, c]


@njit(parallel=True, cache=True)
def _input_transform_adjoint(dv, dx, pad_h, pad_w, tiles_h, tiles_w):
    for n in prange(dx.shape[0]):
        plane, rows = _input_planes(tiles_h, tiles_w, dx.shape[1], dv.dtype)
        _input_transform_adjoint_image(dv, n, dx, plane, rows, pad_h, pad_w, tiles_h, tiles_w)


@njit(nogil=True, cache=True)
def _input_transform_adjoint_serial(dv, dx, pad_h, pad_w, tiles_h, tiles_w):
    plane, rows = _input_planes(tiles_h, tiles_w, dx.shape[1], dv.dtype)
    for n in range(dx.shape[0]):
        _input_transform_adjoint_image(dv, n, dx, plane, rows, pad_h, pad_w, tiles_h, tiles_w)


def _tiles(out_h, out_w):
    """(TH, TW), as minigrad.ops.winograd.tile_counts (kernels/ does not import minigrad)."""
    return (out_h + 1) // 2, (out_w + 1) // 2


def input_transform(x, padding, out_h, out_w):
    """V (16, N*TH*TW, C) from x (N, C, H, W): B^T d B for every 4x4 tile d of the padded input."""
    n_images, channels, _, _ = x.shape
    tiles_h, tiles_w = _tiles(out_h, out_w)
    x = numpy.ascontiguousarray(x)
    v = workspace.empty((16, n_images * tiles_h * tiles_w, channels), x.dtype)
    run_loop(_input_transform_serial, _input_transform, v.nbytes,
             x, v, padding[0], padding[1], tiles_h, tiles_w)
    return v


def output_transform(m, out):
    """out (N, F, OH, OW) <- A^T m A for every tile of M (16, N*TH*TW, F). Returns out."""
    _, _, out_h, out_w = out.shape
    tiles_h, tiles_w = _tiles(out_h, out_w)
    run_loop(_output_transform_serial, _output_transform, m.nbytes,
             numpy.ascontiguousarray(m), out, tiles_h, tiles_w)
    return out


def output_transform_adjoint(dy):
    """dM (16, N*TH*TW, F) from dy (N, F, OH, OW): A g A^T for every 2x2 block g of dy."""
    n_images, filters, out_h, out_w = dy.shape
    tiles_h, tiles_w = _tiles(out_h, out_w)
    dy = numpy.ascontiguousarray(dy)
    dm = workspace.empty((16, n_images * tiles_h * tiles_w, filters), dy.dtype)
    run_loop(_output_transform_adjoint_serial, _output_transform_adjoint, dm.nbytes,
             dy, dm, tiles_h, tiles_w)
    return dm


def input_transform_adjoint(dv, padding, out):
    """out (N, C, H, W) <- the sum of B dv B^T over the tiles that read each pixel. Returns out."""
    _, _, height, width = out.shape
    tiles_h, tiles_w = _tiles(height + 2 * padding[0] - 2, width + 2 * padding[1] - 2)
    run_loop(_input_transform_adjoint_serial, _input_transform_adjoint, dv.nbytes,
             numpy.ascontiguousarray(dv), out, padding[0], padding[1], tiles_h, tiles_w)
    return out
