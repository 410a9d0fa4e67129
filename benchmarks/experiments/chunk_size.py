"""The fast conv's chunk size: how many images go through im2col and the GEMMs at once.

The whole batch's cols (C*KH*KW times x for a 3x3 stride-1 layer) streams through main memory
three times per step: im2col writes it, the GEMM reads it, col2im reads dcols. Cut the batch
into chunks whose cols fits in one core's L2 cache and the GEMM reads what im2col has just
written. Too small a chunk, though, makes thin GEMMs, and OpenBLAS packs the weight once per
product. minigrad/fast/conv.py uses tuning.CONV_CHUNK_BYTES of cols a chunk (at least the
weight's size).

Reference: minigrad.ops.conv.Conv2d, the whole batch at once (y, dx and dW).
  version 1, the whole batch in one chunk (as the reference, with the fast layer's other changes);
  versions 2-5, chunks of at most 256 KiB, 1 MiB, 4 MiB and 16 MiB of cols (at least one image,
      and at least the weight's size).
Each version equals the reference to float rounding. One call = forward + backward of one
layer of ResNet-20 (CIFAR) at --batch, float32, on --threads threads.

    python benchmarks/experiments/chunk_size.py [--batch 128] [--threads 1] [--quick]
"""
import numpy

import harness
import minigrad
from minigrad import backend
from minigrad.fast import tuning
from minigrad.fast.conv import Conv2dFast
from minigrad.fast.threads import parts_for
from minigrad.ops.conv import Conv2d


def chunked(budget_bytes):
    """Conv2dFast with chunks of at most budget_bytes of cols (None: the whole batch in one chunk)."""
    class Chunked(Conv2dFast):
        def _parts(self, x, weight_bytes):
            out_h, out_w = self.out_size
            bytes_per_image = x.shape[1] * self.kernel[0] * self.kernel[1] * out_h * out_w * x.dtype.itemsize
            budget = None if budget_bytes is None else max(budget_bytes, weight_bytes)
            return parts_for(x.shape[0], bytes_per_image, budget, backend.device_of(x))
    return Chunked


BUDGETS = {"1 whole batch": None, "2 256 KiB": 256 << 10, "3 1 MiB": 1 << 20, "4 4 MiB": 4 << 20,
           "5 16 MiB": 16 << 20}
VERSIONS = {name: chunked(budget) for name, budget in BUDGETS.items()}


def forward_backward(function_class, x, w, dy, stride, padding):
    """(y, dx, dW) of one call of function_class(stride, padding) on Tensors x and w."""
    x.grad = w.grad = None
    y = function_class(stride, padding)(x, w, None)
    y.backward(dy)
    return y.data, x.grad.data, w.grad.data


def main():
    p = harness.parser(__doc__.splitlines()[0])
    p.add_argument("--batch", type=int, default=128)
    args = p.parse_args()
    harness.setup(args, repeats=5)
    batch = 4 if args.quick else args.batch
    # (C_in, F, image size, kernel, stride): ResNet-20's 3x3 layers
    layers = [(16, 16, 32, 3, 1), (32, 32, 16, 3, 1), (64, 64, 8, 3, 1), (16, 32, 32, 3, 2)]
    if args.quick:
        layers = layers[:1]
    rng = numpy.random.default_rng(0)
    rows = []
    for c_in, filters, size, kernel, stride in layers:
        padding = kernel // 2
        out = (size + 2 * padding - kernel) // stride + 1
        x = minigrad.tensor(rng.standard_normal((batch, c_in, size, size)).astype(numpy.float32), requires_grad=True)
        w = minigrad.tensor((rng.standard_normal((filters, c_in, kernel, kernel))
                             * (2 / (c_in * kernel * kernel)) ** 0.5).astype(numpy.float32), requires_grad=True)
        dy = minigrad.tensor(rng.standard_normal((batch, filters, out, out)).astype(numpy.float32))
        label = f"{c_in}->{filters} {size}x{size} k{kernel} s{stride}, batch {batch}"
        want = forward_backward(Conv2d, x, w, dy, stride, padding)
        for name, version in VERSIONS.items():
            got = forward_backward(version, x, w, dy, stride, padding)
            for what, g, e in zip(("y", "dx", "dW"), got, want):
                harness.check(f"version {name}, {label}, {what}", g, e)
        del want, got
        times = [harness.median_ms(lambda v=version: forward_backward(v, x, w, dy, stride, padding), args.repeats)
                 for version in VERSIONS.values()]
        cols_mib = c_in * kernel * kernel * batch * out * out * 4 / 2**20
        rows.append([label, f"{cols_mib:.0f}"] + [f"{t:.2f}" for t in times])
    print(f"\nconv2d forward + backward, float32, ms per call, chunks of at most this much cols "
          f"(minigrad: tuning.CONV_CHUNK_BYTES = {tuning.CONV_CHUNK_BYTES >> 10} KiB)")
    harness.print_table(["layer", "cols MiB"] + [f"v{name}" for name in VERSIONS], rows)


if __name__ == "__main__":
    main()
