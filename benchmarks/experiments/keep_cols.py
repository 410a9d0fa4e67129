"""The fast conv's backward: keep forward's cols, or build it again with one more im2col.

dW_g = dY_g @ cols_g^T needs cols, the (C*KH*KW, N*OH*OW) matrix of every receptive field.
Keeping it from forward costs memory: KH*KW / (SH*SW) times the size of x, for every layer
of the network at once until backward reaches it. Building it again costs one im2col per
chunk in backward. minigrad/fast/conv.py keeps it only for strided layers whose cols is at
most tuning.CONV_KEEP_COLS_MAX_GROWTH times x (there im2col is slow next to the small GEMMs).

Reference: minigrad.ops.conv.Conv2d, the plain im2col convolution (y, dx and dW).
  version 1, minigrad's rule: Conv2dFast as it ships.
  version 2, never keep: backward always builds cols again.
  version 3, always keep: every layer keeps its cols, stride 1 included.
Each version equals the reference to float rounding. One call = forward + backward of one
layer of ResNet-20 (CIFAR) at --batch, float32, on --threads threads; the last column is
the memory that keeping cols holds (the whole batch's cols).

    python benchmarks/experiments/keep_cols.py [--batch 64] [--threads 1] [--quick]
"""
import numpy

import harness
import minigrad
from minigrad.fast.conv import Conv2dFast
from minigrad.ops.conv import Conv2d


class NeverKeep(Conv2dFast):
    def _keeps_cols(self, x):
        return False


class AlwaysKeep(Conv2dFast):
    def _keeps_cols(self, x):
        return len(self.needs_input_grad) > 1 and self.needs_input_grad[1]


VERSIONS = {"1 minigrad's rule": Conv2dFast, "2 never keep": NeverKeep, "3 always keep": AlwaysKeep}


def forward_backward(function_class, x, w, dy, stride, padding):
    """(y, dx, dW) of one call of function_class(stride, padding) on Tensors x and w."""
    x.grad = w.grad = None
    y = function_class(stride, padding)(x, w, None)
    y.backward(dy)
    return y.data, x.grad.data, w.grad.data


def main():
    p = harness.parser(__doc__.splitlines()[0])
    p.add_argument("--batch", type=int, default=64)
    args = p.parse_args()
    harness.setup(args)
    batch = 2 if args.quick else args.batch
    # (C_in, F, image size, kernel, stride): the strided layers and shortcuts of ResNet-20, and a stride-1 layer
    layers = [(16, 32, 32, 3, 2), (32, 64, 16, 3, 2), (16, 32, 32, 1, 2), (32, 64, 16, 1, 2), (16, 16, 32, 3, 1)]
    if args.quick:
        layers = [layers[0], layers[-1]]
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
        times = [harness.median_ms(lambda v=version: forward_backward(v, x, w, dy, stride, padding), args.repeats)
                 for version in VERSIONS.values()]
        cols_mib = c_in * kernel * kernel * batch * out * out * 4 / 2**20
        rows.append([label] + [f"{t:.2f}" for t in times] + [f"{cols_mib:.1f}"])
    print("\nconv2d forward + backward, float32, ms per call (each version equals the reference to float rounding)")
    harness.print_table(["layer"] + [f"v{name}" for name in VERSIONS] + ["cols MiB"], rows)


if __name__ == "__main__":
    main()
