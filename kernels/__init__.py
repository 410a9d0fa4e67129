"""Hand-written kernels for minigrad's hot paths, each next to the NumPy reference it must equal.

    geometry.py          the one definition of a sliding window: pair, output size, shape checks
    numba_cpu/           Numba loops for the CPU: im2col, col2im, max pool, batch norm, ReLU,
                         the Winograd transforms, and the buffer pool their outputs come from
    numba_cuda/          the GPU kernels written with Numba CUDA (tested under its simulator)
    cuda/                the GPU kernels in CUDA C, compiled by CuPy at run time

This folder installs as the package `minigrad.kernels`, and it is a leaf: nothing here
imports minigrad (imports inside are relative), so each kernel can be read, run and tested
on its own. minigrad's ops use `geometry`; minigrad's fast layer (minigrad/fast/) puts the
kernels into the ops' table of faster paths, and each kernel module loads on first use:
importing this package imports neither Numba nor CuPy. Numba compiles a kernel on its first
call and caches the machine code on disk (cache=True) for the next process.
"""
