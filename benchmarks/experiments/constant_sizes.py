"""Strided im2col and col2im compiled with their sizes as constants, against the generic loops.

A strided convolution's im2col (stride 2, dilation 1) copies every SW-th pixel of short rows:

    cols[(c, kh, kw), (n, oh, ow)] = x[n, c, oh*SH + kh - PH, ow*SW + kw - PW]   (0 in the padding)

and col2im adds the same entries back (its adjoint). In generic code each number costs a
padding test and an index computation; when Numba compiles the loop with the kernel size,
stride, padding and output width as CONSTANTS (a closure's variables are constants to it),
LLVM unrolls the row, settles the padding tests while compiling and vectorises the gather.
minigrad.kernels.numba_cpu compiles one such loop per geometry it meets (`constant_size_loop`).

im2col, reference minigrad.ops.im2col.im2col_numpy (every version equals it bit for bit):
  version 1, windows buffer (generic): each image plane is gathered once into a buffer in
      which every tap's (OH, OW) window is one contiguous block, then one block copy per tap.
  version 2, the definition (`gather_plane`), the sizes as ordinary arguments.
  version 3, the definition compiled with the sizes as constants (minigrad's choice for chunks).
col2im, reference minigrad.ops.im2col.col2im_numpy:
  version 1, windows buffer (generic): the adjoint of im2col's version 1. It adds a pixel's
      terms grouped by kernel column, so it equals the reference to float rounding only.
  version 2, the windows buffer compiled with the sizes as constants (minigrad's choice).
  version 3, the definition as a direct scatter, compiled with the sizes as constants (bit for bit).

All serial loops, as the fast conv runs them: ResNet-20's two 3x3 stride-2 layers at --batch,
in the chunks of images that minigrad/fast/conv.py cuts at one thread (tuning.CONV_CHUNK_BYTES).

    python benchmarks/experiments/constant_sizes.py [--batch 128] [--quick]
"""
import numpy
from numba import njit

import harness
from minigrad.fast import tuning
from minigrad.fast.threads import image_chunks
from minigrad.kernels.numba_cpu import col2im as col2im_kernels
from minigrad.kernels.numba_cpu import im2col as im2col_kernels
from minigrad.ops.im2col import col2im_numpy, im2col_numpy


# ---------------------------------------------------------------- im2col version 2: sizes as arguments
@njit(nogil=True, cache=True)
def gather_runtime_sizes(x, cols, kernel_h, kernel_w, stride_h, stride_w, pad_h, pad_w, out_h, out_w):
    for n in range(x.shape[0]):
        for c in range(x.shape[1]):
            im2col_kernels.gather_plane(x, cols, n, c, kernel_h, kernel_w, stride_h, stride_w, pad_h, pad_w,
                                        out_h, out_w)


# ---------------------------------------------------------------- col2im version 3: a direct scatter
@njit(inline="always", cache=True)
def scatter_plane(cols, dx, n, c, kernel_h, kernel_w, stride_h, stride_w, pad_h, pad_w, out_h, out_w):
    """dx[n, c, oh*SH + kh - PH, ow*SW + kw - PW] += cols[(c, kh, kw), (n, oh, ow)], tap by tap."""
    plane = dx[n, c]
    height, width = plane.shape
    plane[:, :] = 0
    taps = kernel_h * kernel_w
    outputs = out_h * out_w
    for kh in range(kernel_h):
        for kw in range(kernel_w):
            row = c * taps + kh * kernel_w + kw
            for oh in range(out_h):
                h = oh * stride_h + kh - pad_h
                if h < 0 or h >= height:                       # a row of padding
                    continue
                first = n * outputs + oh * out_w
                for ow in range(out_w):
                    w = ow * stride_w + kw - pad_w
                    if 0 <= w < width:
                        plane[h, w] += cols[row, first + ow]


def scatter_with_constant_sizes(kernel_h, kernel_w, stride_h, stride_w, pad_h, pad_w, out_w):
    """`loop(cols, dx, out_h)`, compiled with these seven numbers as constants."""
    @njit(nogil=True, cache=True)
    def loop(cols, dx, out_h):
        for n in range(dx.shape[0]):
            for c in range(dx.shape[1]):
                scatter_plane(cols, dx, n, c, kernel_h, kernel_w, stride_h, stride_w, pad_h, pad_w, out_h, out_w)
    return loop


def main():
    p = harness.parser(__doc__.splitlines()[0])
    p.add_argument("--batch", type=int, default=128)
    args = p.parse_args()
    harness.setup(args)
    batch = 4 if args.quick else args.batch
    layers = [(16, 32), (32, 16)] if not args.quick else [(16, 32)]      # (channels, image size), 3x3 stride 2
    rng = numpy.random.default_rng(0)
    im2col_rows, col2im_rows = [], []
    for channels, size in layers:
        kernel, stride, padding, out = 3, (2, 2), (1, 1), size // 2
        sizes = (kernel, kernel, 2, 2, 1, 1, out, out)       # KH, KW, SH, SW, PH, PW, OH, OW
        x = rng.standard_normal((batch, channels, size, size)).astype(numpy.float32)
        chunks = image_chunks(batch, channels * kernel * kernel * out * out * 4, tuning.CONV_CHUNK_BYTES)
        cols = [numpy.empty((channels * kernel * kernel, (c.stop - c.start) * out * out), numpy.float32)
                for c in chunks]
        dcols = [rng.standard_normal(k.shape).astype(numpy.float32) for k in cols]
        dx = numpy.empty_like(x)
        label = f"{channels}->{2 * channels} {size}x{size} k3 s2, batch {batch} in {len(chunks)} chunks"

        im2col_constant = im2col_kernels.constant_size_loop(kernel, kernel, stride, padding, out)
        im2col_versions = {
            "1 windows": lambda: [im2col_kernels._im2col_windows_serial(x[c], k, *sizes)
                                  for c, k in zip(chunks, cols)],
            "2 runtime sizes": lambda: [gather_runtime_sizes(x[c], k, *sizes) for c, k in zip(chunks, cols)],
            "3 constant sizes": lambda: [im2col_constant(x[c], k, out) for c, k in zip(chunks, cols)],
        }
        want = [im2col_numpy(x[c], kernel, kernel, stride, padding, (1, 1)) for c in chunks]
        for name, run in im2col_versions.items():
            for k in cols:
                k[...] = numpy.nan                            # a cell the version forgets shows up
            run()
            for index, (got, expected) in enumerate(zip(cols, want)):
                harness.check(f"im2col version {name}, {label}, chunk {index}", got, expected, exact=True)
        im2col_rows.append([label] + [f"{harness.median_ms(run, args.repeats):.3f}"
                                      for run in im2col_versions.values()])

        col2im_constant = col2im_kernels.constant_size_loop(kernel, kernel, stride, padding, out)
        scatter_constant = scatter_with_constant_sizes(kernel, kernel, 2, 2, 1, 1, out)
        col2im_versions = {
            "1 windows": (lambda: [col2im_kernels._col2im_windows_serial(k, dx[c], *sizes)
                                   for c, k in zip(chunks, dcols)], False),
            "2 windows, constant sizes": (lambda: [col2im_constant(k, dx[c], out)
                                                   for c, k in zip(chunks, dcols)], False),
            "3 scatter, constant sizes": (lambda: [scatter_constant(k, dx[c], out)
                                                   for c, k in zip(chunks, dcols)], True),
        }
        want = numpy.concatenate([col2im_numpy(k, x[c].shape, kernel, kernel, stride, padding, (1, 1))
                                  for c, k in zip(chunks, dcols)])
        for name, (run, exact) in col2im_versions.items():
            dx[...] = numpy.nan
            run()
            harness.check(f"col2im version {name}, {label}", dx, want, exact=exact)
        col2im_rows.append([label] + [f"{harness.median_ms(run, args.repeats):.3f}"
                                      for run, _ in col2im_versions.values()])

    print("\nim2col of a strided layer, all chunks of the batch, 1 thread, ms (each equals the reference bit for bit)")
    harness.print_table(["layer"] + [f"v{name}" for name in im2col_versions], im2col_rows)
    print("\ncol2im of a strided layer, all chunks of the batch, 1 thread, ms "
          "(v3 bit for bit; the windows versions to float rounding)")
    harness.print_table(["layer"] + [f"v{name}" for name in col2im_versions], col2im_rows)


if __name__ == "__main__":
    main()
