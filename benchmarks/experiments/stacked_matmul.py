"""A batch of small GEMMs: one stacked NumPy matmul, or a loop of 2-D products.

Winograd's F(2x2, 3x3) does 16 independent GEMMs per chunk of images (minigrad/fast/winograd.py),
and a grouped convolution one per group (minigrad/fast/conv.py):

    forward   M_k  = V_k @ U_k             (T, C) @ (C, F) -> (T, F)      k = 0 .. 15
    dW        dU_k = V_k^T @ dM_k          (C, T) @ (T, F) -> (C, F)      a TRANSPOSED operand

with T the chunk's tiles. numpy.matmul on (16, ., .) stacks hands each product to BLAS when
the operands' strides allow it; with a transposed operand some NumPy versions fall back to
a much slower loop of their own, so the fast layer's choice depends on this table.

Reference: the products in float64, one at a time.
  version 1, stacked: numpy.matmul(a, b) on the (16, ., .) stacks (a transposed view for dW).
  version 2, a loop of 16 2-D numpy.matmul calls, each into its slice of one output.
  version 3, stacked, after copying the transposed operand to a contiguous array.
All equal the reference to float32 rounding. Shapes: one chunk of ResNet-20's 3x3 stride-1
layers as the fast Winograd conv cuts it (tuning.WINOGRAD_CHUNK_BYTES of V), float32,
BLAS on --threads threads.

    python benchmarks/experiments/stacked_matmul.py [--threads 1] [--quick]
"""
import numpy

import harness
from minigrad.fast import tuning


def stacked(a, b):
    return numpy.matmul(a, b)


def loop_2d(a, b):
    out = numpy.empty((a.shape[0], a.shape[1], b.shape[2]), numpy.result_type(a, b))
    for k in range(a.shape[0]):
        numpy.matmul(a[k], b[k], out=out[k])
    return out


def stacked_contiguous(a, b):
    return numpy.matmul(numpy.ascontiguousarray(a), numpy.ascontiguousarray(b))


VERSIONS = {"1 stacked": stacked, "2 loop of 2-D": loop_2d, "3 stacked, contiguous copy": stacked_contiguous}


def main():
    p = harness.parser(__doc__.splitlines()[0])
    args = p.parse_args()
    harness.setup(args, repeats=15)
    widths = [16, 32, 64] if not args.quick else [16]        # C = F, ResNet-20's three stages
    rng = numpy.random.default_rng(0)
    rows = []
    for channels in widths:
        tiles = max(tuning.WINOGRAD_CHUNK_BYTES // (16 * channels * 4), tuning.WINOGRAD_MIN_TILES)
        v = rng.standard_normal((16, tiles, channels)).astype(numpy.float32)      # (16, T, C)
        u = rng.standard_normal((16, channels, channels)).astype(numpy.float32)   # (16, C, F)
        dm = rng.standard_normal((16, tiles, channels)).astype(numpy.float32)     # (16, T, F)
        products = {"forward V @ U": (v, u), "dW V^T @ dM": (v.transpose(0, 2, 1), dm)}
        for product, (a, b) in products.items():
            want = numpy.stack([a[k].astype(numpy.float64) @ b[k].astype(numpy.float64) for k in range(16)])
            label = f"{product}, C = F = {channels}, T = {tiles}"
            for name, version in VERSIONS.items():
                harness.check(f"version {name}, {label}", version(a, b), want.astype(numpy.float32))
            times = [harness.median_ms(lambda f=version: f(a, b), args.repeats) for version in VERSIONS.values()]
            rows.append([label] + [f"{1e3 * t:.1f}" for t in times])
    print("\n16 GEMMs of one Winograd chunk, float32, us per call (each equals the reference to float rounding)")
    harness.print_table(["product"] + [f"v{name}" for name in VERSIONS], rows)


if __name__ == "__main__":
    main()
