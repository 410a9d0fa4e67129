"""When each thread's block of chunks starts and ends inside one convolution (ms from the start of
run_blocks), and the layer's forward and backward times: minigrad alone, the last of 12 calls.
Run from the repository root, the OpenBLAS variables unset:
  T=2 python benchmarks/raw/round6/adhoc/block_timeline.py 16 32 32 2 128   (C_in F size stride batch)"""
import os
import sys
import time

import numpy
from threadpoolctl import threadpool_limits

THREADS = int(os.environ.get("T", "1"))
threadpool_limits(THREADS)

import minigrad                                     # noqa: E402
import minigrad.nn.functional as F                  # noqa: E402
from minigrad.ops import conv, cpu_threads, winograd  # noqa: E402

log = []


def timed_run_blocks(work, chunks, device):
    start = time.perf_counter()

    def timed(block):
        begin = time.perf_counter()
        result = work(block)
        log.append((work.__name__, round((begin - start) * 1e3, 2), round((time.perf_counter() - start) * 1e3, 2),
                    sum(c.stop - c.start for c in block)))
        return result
    timed.__name__ = work.__name__
    return cpu_threads.run_blocks(timed, chunks, device)


conv.run_blocks = winograd.run_blocks = timed_run_blocks
channels, filters, size, stride, batch = map(int, sys.argv[1:6])
rng = numpy.random.default_rng(0)
x = minigrad.tensor(rng.standard_normal((batch, channels, size, size)).astype(numpy.float32), requires_grad=True)
w = minigrad.tensor((rng.standard_normal((filters, channels, 3, 3)) * 0.1).astype(numpy.float32), requires_grad=True)
out = (size - 1) // stride + 1
dy = minigrad.tensor(rng.standard_normal((batch, filters, out, out)).astype(numpy.float32))
for _ in range(12):
    log.clear()
    x.grad, w.grad = None, None
    t0 = time.perf_counter()
    y = F.conv2d(x, w, stride=stride, padding=1)
    t1 = time.perf_counter()
    y.backward(dy)
    t2 = time.perf_counter()
print(f"{channels}->{filters} {size}x{size} stride {stride}, batch {batch}, {THREADS} thread(s): "
      f"forward {1e3 * (t1 - t0):.2f} ms, backward {1e3 * (t2 - t1):.2f} ms")
for name, begin, end, images in log:
    print(f"  {name:15s} {begin:6.2f} -> {end:6.2f} ms, {images} images")
