"""Numba CUDA kernels: the GPU kernels of kernels/cuda/*.cu written in Python.

    im2col.py    one thread per element of cols       reference: minigrad.ops.im2col.im2col_numpy
    col2im.py    one thread per input pixel (gather)  reference: minigrad.ops.im2col.col2im_numpy
    maxpool.py   one thread per output / input pixel  reference: minigrad.ops.pool (NumPy path)

Each module keeps the per-thread maths in a plain Python function that the
kernel calls as a device function and the module's CPU reference calls in a
loop. They run on a GPU with CuPy arrays (through __cuda_array_interface__)
and, without one, under Numba's CUDA simulator (NUMBA_ENABLE_CUDASIM=1, set
before numba is imported), which is how CI tests them. minigrad's GPU dispatch
(minigrad/fast/gpu.py) runs the CUDA C versions, and these twins where CuPy cannot
compile CUDA C on a machine; each launcher takes the allocator of its caller's array
library (`empty=cupy.empty`).
Importing this package imports nothing; importing a module imports numba.cuda.
"""
