"""The weight gradient's GEMM, two orientations: dW = dY @ cols^T, or dW^T = cols @ dY^T.

The fast conv sums dW over the batch's chunks (minigrad/fast/conv.py), each chunk's product

    dW   += dY_c @ cols_c^T          (F, nP) @ (nP, K) -> (F, K)
or  dW^T += cols_c @ dY_c^T          (K, nP) @ (nP, F) -> (K, F), transposed once at the end

with K = C*KH*KW and nP = the chunk's output positions. The same numbers, but BLAS sees
different shapes and memory orders: the inner size nP is long and the outputs are small.
minigrad sums dW^T for weights up to tuning.CONV_DW_TRANSPOSED_MAX_BYTES, and dW for larger
ones (their final transpose is a slow copy of a big array).

Reference: the whole batch's dY @ cols^T in float64.
  version 1, dW = dY @ cols^T, chunk by chunk.
  version 2, dW^T = cols @ dY^T, chunk by chunk, then one transposing copy to (F, K).
Both equal the reference to float32 rounding. The chunks are those minigrad cuts at one thread
(tuning.CONV_CHUNK_BYTES of cols, at least the weight's size); random data of their shapes,
float32, BLAS on --threads threads.

    python benchmarks/experiments/dw_orientation.py [--batch 128] [--batch18 32] [--quick]
"""
import numpy

import harness
from minigrad.fast import tuning
from minigrad.fast.threads import image_chunks


def dw_direct(cols, dys):
    dw = numpy.zeros((dys[0].shape[0], cols[0].shape[0]), numpy.float32)    # (F, K)
    for c, d in zip(cols, dys):
        dw += d @ c.T                                   # (F, nP) @ (nP, K) -> (F, K)
    return dw


def dw_transposed(cols, dys):
    dw_t = numpy.zeros((cols[0].shape[0], dys[0].shape[0]), numpy.float32)  # (K, F)
    for c, d in zip(cols, dys):
        dw_t += c @ d.T                                 # (K, nP) @ (nP, F) -> (K, F)
    return numpy.ascontiguousarray(dw_t.T)              # (F, K)


VERSIONS = {"1 dY @ cols^T": dw_direct, "2 (cols @ dY^T)^T": dw_transposed}


def main():
    p = harness.parser(__doc__.splitlines()[0])
    p.add_argument("--batch", type=int, default=128, help="batch of ResNet-20's layers")
    p.add_argument("--batch18", type=int, default=32, help="batch of ResNet-18's layers")
    args = p.parse_args()
    harness.setup(args, repeats=15)
    batch20, batch18 = (4, 2) if args.quick else (args.batch, args.batch18)
    # (C_in, F, image size, kernel, stride, batch): ResNet-20's (CIFAR) layers, then ResNet-18's widest
    layers = [(16, 32, 32, 3, 2, batch20), (32, 64, 16, 3, 2, batch20), (64, 64, 8, 3, 1, batch20),
              (256, 512, 8, 3, 2, batch18), (512, 512, 4, 3, 1, batch18)]
    if args.quick:
        layers = [layers[0], layers[-1]]
    rng = numpy.random.default_rng(0)
    rows = []
    for c_in, filters, size, kernel, stride, batch in layers:
        k = c_in * kernel * kernel
        out = (size + 2 * (kernel // 2) - kernel) // stride + 1
        weight_bytes = filters * k * 4
        chunks = image_chunks(batch, k * out * out * 4, max(tuning.CONV_CHUNK_BYTES, weight_bytes))
        cols = [rng.standard_normal((k, (c.stop - c.start) * out * out)).astype(numpy.float32) for c in chunks]
        dys = [rng.standard_normal((filters, (c.stop - c.start) * out * out)).astype(numpy.float32) for c in chunks]
        label = f"{c_in}->{filters} {size}x{size} k{kernel} s{stride}, batch {batch}, {len(chunks)} chunks"
        want = numpy.hstack(dys).astype(numpy.float64) @ numpy.hstack(cols).astype(numpy.float64).T   # (F, K)
        for name, version in VERSIONS.items():
            harness.check(f"version {name}, {label}", version(cols, dys), want.astype(numpy.float32))
        times = [harness.median_ms(lambda v=version: v(cols, dys), args.repeats) for version in VERSIONS.values()]
        minigrad_uses = "v2" if weight_bytes <= tuning.CONV_DW_TRANSPOSED_MAX_BYTES else "v1"
        rows.append([label, f"{weight_bytes / 2**20:.2f}"] + [f"{t:.3f}" for t in times] + [minigrad_uses])
    print("\ndW of one layer summed over its chunks, float32, ms per call "
          "(each equals the reference to float rounding)")
    harness.print_table(["layer", "weight MiB"] + [f"v{name}" for name in VERSIONS] + ["minigrad"], rows)


if __name__ == "__main__":
    main()
