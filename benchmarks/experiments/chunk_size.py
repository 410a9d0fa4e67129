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
import harness
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
    rows = []
    for label, cols_mib, times in harness.time_conv_versions(VERSIONS, Conv2d, layers, batch, args.repeats):
        rows.append([label, f"{cols_mib:.0f}"] + [f"{t:.2f}" for t in times])
    print(f"\nconv2d forward + backward, float32, ms per call, chunks of at most this much cols "
          f"(minigrad: tuning.CONV_CHUNK_BYTES = {tuning.CONV_CHUNK_BYTES >> 10} KiB)")
    harness.print_table(["layer", "cols MiB"] + [f"v{name}" for name in VERSIONS], rows)


if __name__ == "__main__":
    main()
