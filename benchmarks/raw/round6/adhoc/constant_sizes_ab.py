"""Strided im2col/col2im loops on ResNet-20's two 3x3 stride-2 layers, a batch of 128 in the chunks
minigrad.ops.conv cuts (1 thread): the generic windows loops, `gather_plane` compiled with the sizes as
ordinary arguments, and the loops compiled with the sizes as constants (`constant_size_loop`).
Run from the repository root: python benchmarks/raw/round6/adhoc/constant_sizes_ab.py"""
import statistics
import time

import numpy
from numba import njit
from threadpoolctl import threadpool_limits

from kernels.numba_cpu import col2im as col2im_module, im2col as im2col_module
from minigrad.ops.cpu_threads import image_chunks


@njit(nogil=True)
def gather_runtime_sizes(x, cols, kernel_h, kernel_w, stride_h, stride_w, pad_h, pad_w, out_h, out_w):
    for n in range(x.shape[0]):
        for c in range(x.shape[1]):
            im2col_module.gather_plane(x, cols, n, c, kernel_h, kernel_w, stride_h, stride_w, pad_h, pad_w,
                                       out_h, out_w)


def median_ms(work, repeats=30):
    work()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        work()
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1e3


def main():
    threadpool_limits(1)
    rng = numpy.random.default_rng(0)
    for channels, size in [(16, 32), (32, 16)]:
        out = size // 2
        x = rng.standard_normal((128, channels, size, size)).astype(numpy.float32)
        per_image = channels * 9 * out * out * 4
        chunks = image_chunks(128, per_image, 1 << 20)
        cols = [numpy.empty((channels * 9, (c.stop - c.start) * out * out), numpy.float32) for c in chunks]
        dx = numpy.empty_like(x)
        sizes = (3, 3, 2, 2, 1, 1, out, out)
        im2col_const = im2col_module.constant_size_loop(3, 3, (2, 2), (1, 1), out)
        col2im_const = col2im_module.constant_size_loop(3, 3, (2, 2), (1, 1), out)
        runs = {
            "im2col windows (generic)": lambda: [im2col_module._im2col_windows_serial(x[c], k, *sizes)
                                                 for c, k in zip(chunks, cols)],
            "im2col gather_plane, runtime sizes": lambda: [gather_runtime_sizes(x[c], k, *sizes)
                                                           for c, k in zip(chunks, cols)],
            "im2col gather_plane, constant sizes": lambda: [im2col_const(x[c], k, out) for c, k in zip(chunks, cols)],
            "col2im windows (generic)": lambda: [col2im_module._col2im_windows_serial(k, dx[c], *sizes)
                                                 for c, k in zip(chunks, cols)],
            "col2im windows, constant sizes": lambda: [col2im_const(k, dx[c], out) for c, k in zip(chunks, cols)],
        }
        print(f"{channels}->{2 * channels} {size}x{size} k3 s2 p1, batch 128 in {len(chunks)} chunks, 1 thread")
        for name, work in runs.items():
            print(f"  {name:38s} {median_ms(work):6.2f} ms")


if __name__ == "__main__":
    main()
