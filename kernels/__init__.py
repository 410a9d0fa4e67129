"""Hand-written kernels for minigrad's hot paths, each next to the NumPy reference it must equal.

    kernels/numba_cpu/   Numba @njit(parallel=True) loops for the CPU (im2col, col2im, max pool)
    kernels/cuda/        GPU kernels (Numba CUDA / CUDA C for CuPy)

Nothing here is imported by `import minigrad`. The op dispatchers in
minigrad/ops/ (im2col, col2im, max_pool) ask for a kernel the first time
they run; when Numba (or CuPy) is missing, the lookup returns None and the
NumPy reference is used instead. Compiling happens on first call, and the
machine code is cached on disk (cache=True) for the next process.
"""
