"""Every tuning threshold of the fast layer, in one place: a unit in each name and one line of why.

These numbers choose HOW the work is done (chunk sizes, which loop, which algorithm), never
WHAT is computed: every choice gives the reference's results to float rounding, and the
tests check each path against the reference. They were chosen by measurement on a 2-core
CPU with a 2 MiB L2 cache per core; docs/10_performance.md explains each one and
benchmarks/RESULTS.md holds the current measurements. Change one here, not in the code
that reads it, and run `python -m pytest tests/test_fast_*.py` and the benchmarks.

The convolutions read theirs (CHUNKS_AT_LEAST, CONV_*, WINOGRAD_*) at every call. The kernels'
limits (NUMBA_*, ELEMENTWISE_*, BUFFER_POOL_*) are handed to the kernels by
`minigrad.fast.install()`, which `import minigrad` calls: after changing one of those at run
time, call `minigrad.fast.install()` again.
"""

# ---------------------------------------------------------------- chunks and threads (fast/threads.py)
# A batch is cut into at least this many chunks on the CPU, so that up to this many threads share a layer.
# A constant, not the thread count: the partition, and so every result, is the same on any number of threads.
CHUNKS_AT_LEAST = 4

# ---------------------------------------------------------------- im2col convolution (fast/conv.py)
# A chunk's cols fits in one core's L2 cache while im2col writes it, the GEMM reads it and col2im reads dcols.
# (A chunk is never smaller than the weight, though: OpenBLAS copies (packs) the weight once per product.)
CONV_CHUNK_BYTES = 1 << 20
# Strided layers keep forward's cols for backward when cols is at most this many times x's size (rebuilding costs a GEMM).
CONV_KEEP_COLS_MAX_GROWTH = 4
# Weights up to this size sum dW^T = cols @ dY^T (the faster order for thin chunks); larger ones dW = dY @ cols^T (no big transpose).
CONV_DW_TRANSPOSED_MAX_BYTES = 1 << 20

# ---------------------------------------------------------------- Winograd F(2x2, 3x3) (fast/winograd.py)
# A chunk's transformed input V (and M beside it) stays in L2 between the transforms and the 16 GEMMs.
WINOGRAD_CHUNK_BYTES = 1 << 19
# ... but holds at least this many tiles, the GEMMs' rows: wide layers would get products too thin for BLAS.
WINOGRAD_MIN_TILES = 128
# Winograd only from this many input channels: C is the inner size of its 16 GEMMs, too short below this.
WINOGRAD_MIN_CHANNELS = 16
# ... and only on images of at least this many pixels (H*W): on tiny images im2col's one long product wins.
WINOGRAD_MIN_PIXELS = 64

# ---------------------------------------------------------------- direct convolution (fast/conv.py, kernels/numba_cpu/direct_conv.py)
# Direct loops (no cols) only for kernels of at least this many taps (KH*KW): cols is that many times x, and from
# 5x5 building it costs more than the thin products after it gain; 3x3 layers keep im2col or Winograd.
DIRECT_MIN_TAPS = 25
# ... and at most this many input channels and filters: the forward's sums run over C, dx's over F; with more,
# the products are wide enough for BLAS to beat the direct loops, which keep no more than a few filters in registers.
DIRECT_MAX_CHANNELS = 16

# ---------------------------------------------------------------- Numba CPU kernels (fast/cpu_kernels.py)
# Kernel calls under this size run their serial loop on the calling thread: waking Numba's pool costs more.
NUMBA_SERIAL_BELOW_BYTES = 4 << 20
# Chunks of cols from this size (and under NUMBA_SERIAL_BELOW_BYTES) use loops compiled for their sizes: strided
# ones, and stride-1 ones narrower than their input. Low enough for one image of LeNet's conv2 (60 KB); smaller
# calls (tests' tiny shapes) keep the generic loops and compile nothing new.
NUMBA_CONSTANT_SIZES_FROM_BYTES = 48 << 10
# Elementwise kernels (ReLU, batch norm) pay a fixed cost per call that NumPy does not: NumPy below this size.
ELEMENTWISE_NUMPY_BELOW_BYTES = 1 << 20

# ---------------------------------------------------------------- the buffer pool (kernels/numba_cpu/workspace.py)
# Arrays under this size come from numpy.empty: NumPy's own small-block cache serves them well.
BUFFER_POOL_MIN_BYTES = 1 << 20
# The pool never holds more than this; past it, arrays come from numpy.empty.
BUFFER_POOL_MAX_BYTES = 2 << 30
# Adaptive pooling's averaging matrices kept (fast/buffers.py), least recently used dropped: a network has a few.
KEPT_POOL_MATRICES = 64
