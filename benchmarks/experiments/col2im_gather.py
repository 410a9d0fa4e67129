"""col2im on the CPU, two loop orders: each pixel gathers its terms, or each plane scatters them.

col2im folds cols (C*KH*KW, N*OH*OW) back into dx (N, C, H, W), adding the entries that
im2col copied from each pixel:

    dx[n, c, h, w] = sum over taps (kh, kw) and outputs (oh, ow) with
                         h = oh*SH - PH + kh*DH   and   w = ow*SW - PW + kw*DW
                     of cols[(c, kh, kw), (n, oh, ow)]

Reference: minigrad.ops.im2col.col2im_numpy (one strided scatter-add per tap).

  version 1, gather: one loop iteration computes ONE PIXEL ROW (n, c, h); each pixel visits
      the taps that read it (tables made beforehand say which output each tap reads there, so
      the loop has no division) and adds their entries. It hops between KH*KW rows of cols.
  version 2, plane scatter (minigrad.kernels.numba_cpu.col2im, the loop minigrad uses for
      unstrided layers): one iteration owns ONE PLANE (n, c) and walks tap by tap, adding
      each tap's contiguous run of columns onto its pixels: it streams through cols row by row.

Both add a pixel's terms in (kh, kw) order, as the reference does: all three agree bit for
bit. Both are race-free under prange: no two iterations write one pixel. The two parallel
loops are timed on --threads threads; each layer of ResNet-20 (CIFAR) at --batch.

    python benchmarks/experiments/col2im_gather.py [--batch 32] [--threads 1] [--quick]
"""
import numpy
from numba import njit, prange

import harness
from minigrad.kernels import numba_cpu
from minigrad.kernels.geometry import output_size
from minigrad.kernels.numba_cpu import col2im as col2im_kernels
from minigrad.ops.im2col import col2im_numpy


# ---------------------------------------------------------------- version 1: each pixel gathers
def tap_table(size, kernel, stride, padding, dilation, n_out):
    """table[i, k] = the output o with o*stride - padding + k*dilation == i, or -1 if tap k never reads i."""
    t = numpy.arange(size)[:, None] + padding - numpy.arange(kernel)[None, :] * dilation   # (size, kernel)
    out = t // stride
    reads = (t >= 0) & (t % stride == 0) & (out < n_out)
    return numpy.where(reads, out, -1).astype(numpy.int64)


@njit(parallel=True, cache=True)
def gather_rows(cols, dx, kernel_h, kernel_w, oh_of, ow_of, out_h, out_w):
    n_images, channels, height, width = dx.shape
    taps = kernel_h * kernel_w
    for pixel_row in prange(n_images * channels * height):
        n = pixel_row // (channels * height)
        c = (pixel_row // height) % channels
        h = pixel_row % height
        for w in range(width):
            total = dx[n, c, h, w]                       # dx starts at zero: a 0 of cols' dtype
            for kh in range(kernel_h):
                oh = oh_of[h, kh]
                if oh < 0:                               # tap kh never reads row h
                    continue
                for kw in range(kernel_w):
                    ow = ow_of[w, kw]
                    if ow < 0:
                        continue
                    total += cols[c * taps + kh * kernel_w + kw, (n * out_h + oh) * out_w + ow]
            dx[n, c, h, w] = total


def col2im_gather(cols, x_shape, kernel_h, kernel_w, stride, padding, dilation):
    n_images, channels, height, width = x_shape
    out_h = output_size(height, kernel_h, stride[0], padding[0], dilation[0])
    out_w = output_size(width, kernel_w, stride[1], padding[1], dilation[1])
    oh_of = tap_table(height, kernel_h, stride[0], padding[0], dilation[0], out_h)   # (H, KH)
    ow_of = tap_table(width, kernel_w, stride[1], padding[1], dilation[1], out_w)    # (W, KW)
    dx = numpy.zeros(tuple(x_shape), dtype=cols.dtype)
    with numba_cpu.launch_lock:                          # Numba's thread pool: one launch at a time
        gather_rows(cols, dx, kernel_h, kernel_w, oh_of, ow_of, out_h, out_w)
    return dx


# ---------------------------------------------------------------- version 2: each plane scatters
def col2im_planes(cols, x_shape, kernel_h, kernel_w, stride, padding, dilation):
    n_images, channels, height, width = x_shape
    out_h = output_size(height, kernel_h, stride[0], padding[0], dilation[0])
    out_w = output_size(width, kernel_w, stride[1], padding[1], dilation[1])
    dx = numpy.empty(tuple(x_shape), dtype=cols.dtype)   # the loop zeroes each plane itself
    with numba_cpu.launch_lock:
        col2im_kernels._col2im_planes(cols, dx, kernel_h, kernel_w, stride[0], stride[1], padding[0], padding[1],
                                      dilation[0], dilation[1], out_h, out_w)
    return dx


VERSIONS = {"1 gather (per pixel)": col2im_gather, "2 plane scatter (minigrad)": col2im_planes}


def main():
    p = harness.parser(__doc__.splitlines()[0])
    p.add_argument("--batch", type=int, default=32)
    args = p.parse_args()
    harness.setup(args)
    batch = 2 if args.quick else args.batch
    # (channels, image size, kernel, stride): ResNet-20's 3x3 layers, and one stride-2 layer
    layers = [(16, 32, 3, 1), (32, 16, 3, 1), (64, 8, 3, 1), (16, 32, 3, 2)]
    if args.quick:
        layers = layers[:1]
    rng = numpy.random.default_rng(0)
    rows = []
    for channels, size, kernel, stride in layers:
        x_shape = (batch, channels, size, size)
        geometry = ((stride, stride), (kernel // 2, kernel // 2), (1, 1))
        out = output_size(size, kernel, stride, kernel // 2, 1)
        cols = rng.standard_normal((channels * kernel * kernel, batch * out * out)).astype(numpy.float32)
        want = col2im_numpy(cols, x_shape, kernel, kernel, *geometry)
        for name, version in VERSIONS.items():
            harness.check(f"version {name}, {x_shape}", version(cols, x_shape, kernel, kernel, *geometry), want,
                          exact=True)
        times = [harness.median_ms(lambda v=version: v(cols, x_shape, kernel, kernel, *geometry), args.repeats)
                 for version in VERSIONS.values()]
        rows.append([f"{channels}ch {size}x{size} k{kernel} s{stride}, batch {batch}"]
                    + [f"{t:.3f}" for t in times] + [f"{times[0] / times[1]:.2f}"])
    print("\ncol2im, float32, ms per call (all versions equal the reference bit for bit)")
    harness.print_table(["layer"] + [f"v{name}" for name in VERSIONS] + ["v1 / v2"], rows)


if __name__ == "__main__":
    main()
