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
import harness
from minigrad.fast.conv import Conv2dFast
from minigrad.ops.conv import Conv2d


class NeverKeep(Conv2dFast):
    def _keeps_cols(self, x):
        return False


class AlwaysKeep(Conv2dFast):
    def _keeps_cols(self, x):
        return len(self.needs_input_grad) > 1 and self.needs_input_grad[1]


VERSIONS = {"1 minigrad's rule": Conv2dFast, "2 never keep": NeverKeep, "3 always keep": AlwaysKeep}


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
    rows = []
    for label, cols_mib, times in harness.time_conv_versions(VERSIONS, Conv2d, layers, batch, args.repeats):
        rows.append([label] + [f"{t:.2f}" for t in times] + [f"{cols_mib:.1f}"])
    print("\nconv2d forward + backward, float32, ms per call (each version equals the reference to float rounding)")
    harness.print_table(["layer"] + [f"v{name}" for name in VERSIONS] + ["cols MiB"], rows)


if __name__ == "__main__":
    main()
