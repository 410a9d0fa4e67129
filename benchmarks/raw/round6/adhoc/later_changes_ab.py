"""The sixth round's changes after the constant-size loops, each switched off and on in one process,
alternating, minigrad alone (no torch), median of 9 calls after 2 warm-up, three rounds:

  weight-sized chunks  conv chunks at least as large as the weight (off: CHUNK_BYTES alone)
  dW direct            dW = dY @ cols^T for weights over 1 MiB (off: dW^T summed, then transposed)
  equal chunks         image_chunks' equal parts per thread (off: round 5's image_chunks)
  fresh gradients      a leaf takes conv's new dx without a copy (off: every leaf gradient copied)

Run from the repository root, the OpenBLAS variables unset:
  env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE .venv/bin/python benchmarks/raw/round6/adhoc/later_changes_ab.py"""
import statistics
import sys
import time

import numpy
from threadpoolctl import threadpool_limits

import minigrad
from minigrad.ops import conv as conv_module
from minigrad.ops import cpu_threads


def round5_image_chunks(n, bytes_per_image, budget, at_least=1):
    """image_chunks as it was before this round: equal steps, the remainder in a short last chunk."""
    if budget is None:
        return [slice(0, n)]
    step = max(1, min(n, budget // max(1, bytes_per_image), -(-n // max(1, at_least))))
    return [slice(start, min(n, start + step)) for start in range(0, n, step)]


def layer_ms(x_np, w_np, stride):
    x = minigrad.tensor(x_np, requires_grad=True)
    w = minigrad.tensor(w_np, requires_grad=True)
    times = []
    for call in range(11):
        x.grad, w.grad = None, None
        start = time.perf_counter()
        y = conv_module.conv2d(x, w, stride=stride, padding=1)
        y.backward(numpy.ones(y.shape, numpy.float32))
        if call >= 2:
            times.append(time.perf_counter() - start)
    return statistics.median(times) * 1e3


def switch(name, on, monkey):
    """Set change `name` on or off; `monkey` holds the originals."""
    if name == "weight-sized chunks":
        conv_module.Conv2d._chunks = monkey["chunks"] if on else (
            lambda self, x, weight_bytes: monkey["chunks"](self, x, 0))
    elif name == "dW direct":
        conv_module.DW_TRANSPOSED_UP_TO = monkey["dw"] if on else 1 << 62
    elif name == "equal chunks":
        cpu_threads.image_chunks = monkey["image_chunks"] if on else round5_image_chunks
    elif name == "fresh gradients":
        conv_module.Conv2d.fresh_gradients = monkey["fresh"] if on else ()


def main(threads):
    threadpool_limits(threads)
    monkey = {"chunks": conv_module.Conv2d._chunks, "dw": conv_module.DW_TRANSPOSED_UP_TO,
              "image_chunks": cpu_threads.image_chunks, "fresh": conv_module.Conv2d.fresh_gradients}
    rng = numpy.random.default_rng(0)
    cases = {
        "weight-sized chunks": [("ResNet-18 512->512 4x4 k3 s1, batch 32", 32, 512, 512, 4, 1)],
        "dW direct": [("ResNet-18 512->512 4x4 k3 s1, batch 32", 32, 512, 512, 4, 1),
                      ("ResNet-18 256->512 8x8 k3 s2, batch 32", 32, 256, 512, 8, 2)],
        "equal chunks": [("ResNet-20 16->32 32x32 k3 s2, batch 128", 128, 16, 32, 32, 2),
                         ("ResNet-20 32->64 16x16 k3 s2, batch 128", 128, 32, 64, 16, 2)],
        "fresh gradients": [("ResNet-20 16->32 32x32 k3 s2, batch 128", 128, 16, 32, 32, 2),
                            ("ResNet-20 32->64 16x16 k3 s2, batch 128", 128, 32, 64, 16, 2)],
    }
    print(f"{threads} thread(s); ms, minigrad alone, fwd+bwd with a leaf x; off / on, three rounds")
    for name, layers in cases.items():
        for label, n, c, f, size, stride in layers:
            x_np = rng.standard_normal((n, c, size, size)).astype(numpy.float32)
            w_np = (rng.standard_normal((f, c, 3, 3)) * 0.05).astype(numpy.float32)
            rounds = []
            for _ in range(3):
                pair = []
                for on in (False, True):
                    switch(name, on, monkey)
                    pair.append(layer_ms(x_np, w_np, stride))
                rounds.append(pair)
            switch(name, True, monkey)
            text = ", ".join(f"{off:.1f} / {on:.1f}" for off, on in rounds)
            print(f"  {name:20s} {label:42s} {text}")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 1)
