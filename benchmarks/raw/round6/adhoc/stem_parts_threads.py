"""Time spent in each primitive of one convolution's forward + backward, summed over the threads that
ran it, per call of the layer (mean of 20 after 5 warm-up): if two threads ran as fast as one, the sums
would not change with T. Run from the repository root, the OpenBLAS variables unset:
  T=1 python benchmarks/raw/round6/adhoc/stem_parts_threads.py 3 16 32 1 128   (C_in F size stride batch)"""
import collections
import os
import sys
import threading
import time

import numpy
from threadpoolctl import threadpool_limits

THREADS = int(os.environ.get("T", "1"))
threadpool_limits(THREADS)

import minigrad                                     # noqa: E402
import minigrad.nn.functional as F                  # noqa: E402
from minigrad.ops import conv                       # noqa: E402

seconds = collections.defaultdict(float)
lock = threading.Lock()


def timing(name, function):
    def timed(*args, **kwargs):
        start = time.perf_counter()
        result = function(*args, **kwargs)
        with lock:
            seconds[name] += time.perf_counter() - start
        return result
    return timed


conv.col2im = timing("col2im", conv.col2im)
conv.im2col = timing("im2col", conv.im2col)
conv._gemm = timing("forward and dcols GEMMs", conv._gemm)
conv._as_columns = timing("dy transposes", conv._as_columns)
channels, filters, size, stride, batch = map(int, sys.argv[1:6])
rng = numpy.random.default_rng(0)
x = minigrad.tensor(rng.standard_normal((batch, channels, size, size)).astype(numpy.float32), requires_grad=True)
w = minigrad.tensor((rng.standard_normal((filters, channels, 3, 3)) * 0.1).astype(numpy.float32), requires_grad=True)
out = (size - 1) // stride + 1
dy = minigrad.tensor(rng.standard_normal((batch, filters, out, out)).astype(numpy.float32))
for call in range(25):
    if call == 5:
        seconds.clear()
    x.grad, w.grad = None, None
    F.conv2d(x, w, stride=stride, padding=1).backward(dy)
print(f"{channels}->{filters} {size}x{size} stride {stride}, {THREADS} thread(s), ms per call summed over threads: "
      + ", ".join(f"{name} {1e3 * total / 20:.2f}" for name, total in seconds.items()))
