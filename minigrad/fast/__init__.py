"""The fast layer: everything in minigrad that exists only for speed. Optional reading.

The ops in minigrad/ops/ are the reference: the maths, readable, and correct on their own.
This package makes them fast without changing a number (each path equals its reference to
float rounding, and tests/test_fast_*.py says so):

    tuning.py       every threshold below, with its unit and why
    conv.py         the im2col convolution in cache-sized chunks of images, on several cores
    winograd.py     Winograd's F(2x2, 3x3) in chunks, and when to use it instead of im2col
    threads.py      blocks of chunks on separate threads, one BLAS thread each
    buffers.py      `scratch`: big arrays from a pool, not fresh pages every step; adaptive pooling's
                    matrices, built once
    gpu_batchnorm.py  batch norm's CUDA C kernels (kernels/cuda/batchnorm_*.cu), one launch each way
    cpu_kernels.py  the Numba kernels (kernels/numba_cpu/) for im2col, col2im, pooling, batch norm, ReLU
    gpu.py          the CUDA C kernels (kernels/cuda/*.cu) on CuPy arrays

`install()` (called by `import minigrad`) fills the ops' table of faster paths
(minigrad/ops/registry.py). It compiles nothing, imports neither Numba nor CuPy and changes
no environment variable: kernels load on their first call. Imports point one way: this
package imports the core, ops and kernels; none of them imports it. docs/10_performance.md
is the chapter to read alongside.
"""
from minigrad.fast import buffers, conv, cpu_kernels, gpu


def install(use_winograd=True):
    """Register every fast path: the Numba CPU kernels, the CUDA C GPU kernels and the fast conv2d
    (with Winograd where it suits, unless use_winograd=False)."""
    cpu_kernels.install()
    gpu.install()
    buffers.install()
    conv.install(use_winograd)
