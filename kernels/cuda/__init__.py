"""CUDA C sources (*.cu, *.cuh) compiled at run time by CuPy (RawModule, NVRTC).

This folder is a package only so that the sources ship inside an installed
minigrad and are found with importlib.resources (see minigrad/fast/gpu.py),
not through a path into the repository. Each .cu file says what one thread
computes, names the NumPy reference it must equal, and carries a CPU reference
(the same per-thread function run in a plain loop) that tests call through
ctypes after compiling the file with nvcc.
"""
