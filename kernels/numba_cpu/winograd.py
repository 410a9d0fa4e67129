"""The four tile transforms of Winograd's F(2x2, 3x3) convolution on the CPU with Numba.

minigrad/ops/winograd.py has the maths and the NumPy references (same names with
`_numpy`); each kernel here gives the same result in one pass over its arrays.

    input_transform            x (N, C, H, W)    -> V (16, T, C)      V = B^T d B per 4x4 tile d
    output_transform           M (16, T, F)      -> y (N, F, OH, OW)  y block = A^T m A
    output_transform_adjoint   dy (N, F, OH, OW) -> dM (16, T, F)     dM = A g A^T per 2x2 block g
    input_transform_adjoint    dV (16, T, C)     -> dx (N, C, H, W)   dx += B dv B^T where the tile was read

    T = N*TH*TW tiles, tile (n, th, tw) at t = (n*TH + th)*TW + tw; the 16 points (xi, nu) at 4*xi + nu.

Channels last inside. The channel is the only long axis here (a tile row of an 8x8
image is 4 tiles), so every loop that does arithmetic runs over channels, which are
contiguous in V and M: each image is first copied into a plane with its channels
last, (rows, columns, C), zero-padded as far as all its tiles reach, so the tile
loops never test for the border. Then the nesting is "rows, then columns": the
combinations of four plane rows are long contiguous loops over (column, channel),
and the combinations of four columns inside those rows are loops over channels. Both
vectorise. (A first version with channels first, a plane at a time, had inner loops
of 4 to 16 tiles and ran the transforms 5-8 times slower.)

One loop iteration (one `prange` index) handles ONE IMAGE, so iterations write
disjoint parts of the output: no races, no atomics, and the result does not depend
on the thread count. The matrices hold only 0, +-1 (B, A).
"""
import numpy
from numba import njit, prange

from kernels.numba_cpu import SERIAL_BELOW_BYTES, launch_lock, workspace


# Each transform is written for ONE image (`..._image`), with its scratch planes passed in, and
# run by two drivers: a parallel one (`prange` over images, scratch made per image) for big
# arrays, and a serial `nogil` one that makes its scratch once, for the cache-sized chunks the
# convolution sends (a fresh zeroed plane per image cost as much as the transform itself).

@njit(inline="always")
def _input_transform_image(x, n, v, plane, rows, pad_h, pad_w, tiles_h, tiles_w):
    _, channels, height, width = x.shape
    plane_w = 2 * tiles_w + 2
    for h in range(height):                                                   # channels last; the border
        for w in range(width):                                                # of `plane` stays 0
            pixel = plane[pad_h + h, pad_w + w]
            for c in range(channels):
                pixel[c] = x[n, c, h, w]
    flat_rows = rows.reshape(4, plane_w * channels)
    flat_plane = plane.reshape(2 * tiles_h + 2, plane_w * channels)
    for th in range(tiles_h):
        d0, d1, d2, d3 = flat_plane[2 * th], flat_plane[2 * th + 1], flat_plane[2 * th + 2], flat_plane[2 * th + 3]
        r0, r1, r2, r3 = flat_rows[0], flat_rows[1], flat_rows[2], flat_rows[3]
        for j in range(plane_w * channels):                                   # rows: B^T d
            r0[j] = d0[j] - d2[j]
            r1[j] = d1[j] + d2[j]
            r2[j] = d2[j] - d1[j]
            r3[j] = d1[j] - d3[j]
        first = (n * tiles_h + th) * tiles_w                                  # tile index t of (n, th, 0)
        for xi in range(4):                                                   # columns: (B^T d) B
            row = flat_rows[xi]
            for tw in range(tiles_w):
                left = 2 * tw * channels
                e0, e1 = row[left:left + channels], row[left + channels:left + 2 * channels]
                e2, e3 = row[left + 2 * channels:left + 3 * channels], row[left + 3 * channels:left + 4 * channels]
                v0, v1, v2, v3 = v[4 * xi, first + tw], v[4 * xi + 1, first + tw], \
                    v[4 * xi + 2, first + tw], v[4 * xi + 3, first + tw]
                for c in range(channels):
                    a0, a1, a2, a3 = e0[c], e1[c], e2[c], e3[c]
                    v0[c] = a0 - a2
                    v1[c] = a1 + a2
                    v2[c] = a2 - a1
                    v3[c] = a1 - a3


@njit(parallel=True, cache=True)
def _input_transform(x, v, pad_h, pad_w, tiles_h, tiles_w):
    for n in prange(x.shape[0]):
        plane = numpy.zeros((2 * tiles_h + 2, 2 * tiles_w + 2, x.shape[1]), x.dtype)
        rows = numpy.empty((4, 2 * tiles_w + 2, x.shape[1]), x.dtype)
        _input_transform_image(x, n, v, plane, rows, pad_h, pad_w, tiles_h, tiles_w)


@njit(nogil=True, cache=True)
def _input_transform_serial(x, v, pad_h, pad_w, tiles_h, tiles_w):
    plane = numpy.zeros((2 * tiles_h + 2, 2 * tiles_w + 2, x.shape[1]), x.dtype)   # padded, channels last
    rows = numpy.empty((4, 2 * tiles_w + 2, x.shape[1]), x.dtype)                  # B^T d, one row of tiles
    for n in range(x.shape[0]):
        _input_transform_image(x, n, v, plane, rows, pad_h, pad_w, tiles_h, tiles_w)


@njit(inline="always")
def _output_transform_image(m, n, y, plane, cols, tiles_h, tiles_w):
    _, filters, out_h, out_w = y.shape
    flat_cols = cols.reshape(4, 2 * tiles_w * filters)
    flat_plane = plane.reshape(2 * tiles_h, 2 * tiles_w * filters)
    for th in range(tiles_h):
        first = (n * tiles_h + th) * tiles_w
        for xi in range(4):                                                   # columns: m A
            col = flat_cols[xi]
            for tw in range(tiles_w):
                m0, m1, m2, m3 = m[4 * xi, first + tw], m[4 * xi + 1, first + tw], \
                    m[4 * xi + 2, first + tw], m[4 * xi + 3, first + tw]
                left = 2 * tw * filters
                out0, out1 = col[left:left + filters], col[left + filters:left + 2 * filters]
                for f in range(filters):
                    b1, b2 = m1[f], m2[f]
                    out0[f] = m0[f] + b1 + b2
                    out1[f] = b1 - b2 - m3[f]
        c0, c1, c2, c3 = flat_cols[0], flat_cols[1], flat_cols[2], flat_cols[3]
        top, bottom = flat_plane[2 * th], flat_plane[2 * th + 1]
        for j in range(2 * tiles_w * filters):                                # rows: A^T (m A)
            top[j] = c0[j] + c1[j] + c2[j]
            bottom[j] = c1[j] - c2[j] - c3[j]
    for f in range(filters):                                                  # back to channels first,
        for h in range(out_h):                                                # the odd edge dropped
            for w in range(out_w):
                y[n, f, h, w] = plane[h, w, f]


@njit(parallel=True, cache=True)
def _output_transform(m, y, tiles_h, tiles_w):
    for n in prange(y.shape[0]):
        plane = numpy.empty((2 * tiles_h, 2 * tiles_w, y.shape[1]), m.dtype)
        cols = numpy.empty((4, 2 * tiles_w, y.shape[1]), m.dtype)
        _output_transform_image(m, n, y, plane, cols, tiles_h, tiles_w)


@njit(nogil=True, cache=True)
def _output_transform_serial(m, y, tiles_h, tiles_w):
    plane = numpy.empty((2 * tiles_h, 2 * tiles_w, y.shape[1]), m.dtype)     # even-sized output, channels last
    cols = numpy.empty((4, 2 * tiles_w, y.shape[1]), m.dtype)                # m A for one row of tiles
    for n in range(y.shape[0]):
        _output_transform_image(m, n, y, plane, cols, tiles_h, tiles_w)


@njit(inline="always")
def _output_transform_adjoint_image(dy, n, dm, plane, rows, tiles_h, tiles_w):
    _, filters, out_h, out_w = dy.shape
    for h in range(out_h):                                                    # channels last; past an odd
        for w in range(out_w):                                                # edge `plane` stays 0
            pixel = plane[h, w]
            for f in range(filters):
                pixel[f] = dy[n, f, h, w]
    flat_rows = rows.reshape(4, 2 * tiles_w * filters)
    flat_plane = plane.reshape(2 * tiles_h, 2 * tiles_w * filters)
    for th in range(tiles_h):
        g0, g1 = flat_plane[2 * th], flat_plane[2 * th + 1]
        r0, r1, r2, r3 = flat_rows[0], flat_rows[1], flat_rows[2], flat_rows[3]
        for j in range(2 * tiles_w * filters):                                # rows: A g
            r0[j] = g0[j]
            r1[j] = g0[j] + g1[j]
            r2[j] = g0[j] - g1[j]
            r3[j] = -g1[j]
        first = (n * tiles_h + th) * tiles_w
        for xi in range(4):                                                   # columns: (A g) A^T
            row = flat_rows[xi]
            for tw in range(tiles_w):
                left = 2 * tw * filters
                e0, e1 = row[left:left + filters], row[left + filters:left + 2 * filters]
                d0, d1, d2, d3 = dm[4 * xi, first + tw], dm[4 * xi + 1, first + tw], \
                    dm[4 * xi + 2, first + tw], dm[4 * xi + 3, first + tw]
                for f in range(filters):
                    a, b = e0[f], e1[f]
                    d0[f] = a
                    d1[f] = a + b
                    d2[f] = a - b
                    d3[f] = -b


@njit(parallel=True, cache=True)
def _output_transform_adjoint(dy, dm, tiles_h, tiles_w):
    for n in prange(dy.shape[0]):
        plane = numpy.zeros((2 * tiles_h, 2 * tiles_w, dy.shape[1]), dy.dtype)
        rows = numpy.empty((4, 2 * tiles_w, dy.shape[1]), dy.dtype)
        _output_transform_adjoint_image(dy, n, dm, plane, rows, tiles_h, tiles_w)


@njit(nogil=True, cache=True)
def _output_transform_adjoint_serial(dy, dm, tiles_h, tiles_w):
    plane = numpy.zeros((2 * tiles_h, 2 * tiles_w, dy.shape[1]), dy.dtype)   # dy, channels last
    rows = numpy.empty((4, 2 * tiles_w, dy.shape[1]), dy.dtype)              # A g for one row of tiles
    for n in range(dy.shape[0]):
        _output_transform_adjoint_image(dy, n, dm, plane, rows, tiles_h, tiles_w)


@njit(inline="always")
def _input_transform_adjoint_image(dv, n, dx, plane, rows, pad_h, pad_w, tiles_h, tiles_w):
    _, channels, height, width = dx.shape
    plane_w = 2 * tiles_w + 2
    plane[:] = 0
    flat_rows = rows.reshape(4, plane_w * channels)
    flat_plane = plane.reshape(2 * tiles_h + 2, plane_w * channels)
    for th in range(tiles_h):
        rows[:] = 0
        first = (n * tiles_h + th) * tiles_w
        for xi in range(4):                                                   # columns: dv B^T; the last two
            row = flat_rows[xi]                                               # of a tile are the next one's first two
            for tw in range(tiles_w):
                v0, v1, v2, v3 = dv[4 * xi, first + tw], dv[4 * xi + 1, first + tw], \
                    dv[4 * xi + 2, first + tw], dv[4 * xi + 3, first + tw]
                left = 2 * tw * channels
                e0, e1 = row[left:left + channels], row[left + channels:left + 2 * channels]
                e2, e3 = row[left + 2 * channels:left + 3 * channels], row[left + 3 * channels:left + 4 * channels]
                for c in range(channels):
                    a0, a1, a2, a3 = v0[c], v1[c], v2[c], v3[c]
                    e0[c] += a0
                    e1[c] += a1 - a2 + a3
                    e2[c] += a2 + a1 - a0
                    e3[c] -= a3
        r0, r1, r2, r3 = flat_rows[0], flat_rows[1], flat_rows[2], flat_rows[3]
        p0, p1, p2, p3 = flat_plane[2 * th], flat_plane[2 * th + 1], flat_plane[2 * th + 2], flat_plane[2 * th + 3]
        for j in range(plane_w * channels):                                   # rows: B (dv B^T); tiles overlap
            p0[j] += r0[j]
            p1[j] += r1[j] - r2[j] + r3[j]
            p2[j] += r2[j] + r1[j] - r0[j]
            p3[j] -= r3[j]
    for c in range(channels):                                                 # back to channels first,
        for h in range(height):                                               # the padding's share dropped
            for w in range(width):
                dx[n, c, h, w] = plane[pad_h + h, pad_w + w, c]


@njit(parallel=True, cache=True)
def _input_transform_adjoint(dv, dx, pad_h, pad_w, tiles_h, tiles_w):
    for n in prange(dx.shape[0]):
        plane = numpy.empty((2 * tiles_h + 2, 2 * tiles_w + 2, dx.shape[1]), dv.dtype)
        rows = numpy.empty((4, 2 * tiles_w + 2, dx.shape[1]), dv.dtype)
        _input_transform_adjoint_image(dv, n, dx, plane, rows, pad_h, pad_w, tiles_h, tiles_w)


@njit(nogil=True, cache=True)
def _input_transform_adjoint_serial(dv, dx, pad_h, pad_w, tiles_h, tiles_w):
    plane = numpy.empty((2 * tiles_h + 2, 2 * tiles_w + 2, dx.shape[1]), dv.dtype)  # gradient of the padded plane
    rows = numpy.empty((4, 2 * tiles_w + 2, dx.shape[1]), dv.dtype)                 # dv B^T, one row of tiles
    for n in range(dx.shape[0]):
        _input_transform_adjoint_image(dv, n, dx, plane, rows, pad_h, pad_w, tiles_h, tiles_w)


_SERIAL = {_input_transform: _input_transform_serial, _output_transform: _output_transform_serial,
           _output_transform_adjoint: _output_transform_adjoint_serial,
           _input_transform_adjoint: _input_transform_adjoint_serial}


def _launch(loop, nbytes, *arguments):
    """Run `loop` on this thread for small arrays, else on Numba's threads (one launch at a time)."""
    if nbytes < SERIAL_BELOW_BYTES:
        _SERIAL[loop](*arguments)
    else:
        with launch_lock:
            loop(*arguments)


def _tiles(out_h, out_w):
    return (out_h + 1) // 2, (out_w + 1) // 2


def input_transform(x, padding, out_h, out_w):
    """V (16, N*TH*TW, C) from x (N, C, H, W): B^T d B for every 4x4 tile d of the padded input."""
    n_images, channels, _, _ = x.shape
    tiles_h, tiles_w = _tiles(out_h, out_w)
    x = numpy.ascontiguousarray(x)
    v = workspace.empty((16, n_images * tiles_h * tiles_w, channels), x.dtype)
    _launch(_input_transform, v.nbytes, x, v, padding[0], padding[1], tiles_h, tiles_w)
    return v


def output_transform(m, out):
    """out (N, F, OH, OW) <- A^T m A for every tile of M (16, N*TH*TW, F). Returns out."""
    _, _, out_h, out_w = out.shape
    tiles_h, tiles_w = _tiles(out_h, out_w)
    _launch(_output_transform, m.nbytes, numpy.ascontiguousarray(m), out, tiles_h, tiles_w)
    return out


def output_transform_adjoint(dy):
    """dM (16, N*TH*TW, F) from dy (N, F, OH, OW): A g A^T for every 2x2 block g of dy."""
    n_images, filters, out_h, out_w = dy.shape
    tiles_h, tiles_w = _tiles(out_h, out_w)
    dy = numpy.ascontiguousarray(dy)
    dm = workspace.empty((16, n_images * tiles_h * tiles_w, filters), dy.dtype)
    _launch(_output_transform_adjoint, dm.nbytes, dy, dm, tiles_h, tiles_w)
    return dm


def input_transform_adjoint(dv, padding, out):
    """out (N, C, H, W) <- the sum of B dv B^T over the tiles that read each pixel. Returns out."""
    _, _, height, width = out.shape
    tiles_h, tiles_w = _tiles(height + 2 * padding[0] - 2, width + 2 * padding[1] - 2)
    _launch(_input_transform_adjoint, dv.nbytes, numpy.ascontiguousarray(dv), out, padding[0], padding[1],
            tiles_h, tiles_w)
    return out
