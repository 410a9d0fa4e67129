"""The table of faster kernels that ops use in place of their NumPy code.

Every op that has a hand-written kernel (im2col, col2im, max pooling, batch norm,
ReLU and relu(a + b), the Winograd transforms) keeps its NumPy/CuPy version as the readable reference and asks this table
first:

    kernel = find_kernel("im2col", x)             # None when nothing is registered
    forward = find_kernel("relu_forward", x, relu_forward_numpy)   # or the fallback

Keys are (name, device), device "cpu" or "gpu" (backend.device_of). The kernels/
package fills the table when an op module is imported (`register_available`):
Numba kernels for the CPU (lazy stand-ins: Numba compiles on the first call) and
CUDA C kernels for the GPU (compiled by CuPy on the first GPU call). Without
Numba or without the kernels/ package the NumPy code runs; results are the same.

`scratch` is the one allocator for the big arrays of the hot path (conv outputs and
gradients, their temporaries, a leaf's gradient): the "workspace" entry of this table,
kernels/numba_cpu/workspace.py's buffer pool on the CPU, else plain `empty`.
"""
from minigrad import backend

KERNELS = {}     # (name, device) -> function with the signature of the NumPy reference


def register_kernel(name, device, function):
    """Use `function` for kernel `name` ("im2col", "relu_forward", ...) on `device`."""
    KERNELS[(name, backend.normalize_device(device))] = function


def find_kernel(name, array, fallback=None):
    """The kernel registered for `name` on the device of `array`, else `fallback`."""
    return KERNELS.get((name, backend.device_of(array)), fallback)


def register_available(cpu_fallbacks, gpu_names=()):
    """Register the kernels that this installation has.

    cpu_fallbacks: {name: NumPy reference}, for kernels/numba_cpu (the reference also
    serves dtypes the Numba kernels are not compiled for). gpu_names: names that
    kernels/gpu_dispatch provides as CUDA C.
    """
    try:
        from kernels import numba_cpu
    except ImportError:           # minigrad without its kernels/ package: NumPy everywhere
        return
    numba_cpu.register_into(register_kernel, cpu_fallbacks)
    if gpu_names:
        from kernels import gpu_dispatch
        gpu_dispatch.register_into(register_kernel, list(gpu_names))


def scratch(shape, dtype, like):
    """An uninitialised array on the device of `like` (like numpy.empty).

    On the CPU the kernels' buffer pool (kernels/numba_cpu/workspace.py) hands out
    an idle buffer that fits when it has one: no fresh pages to fault in. A buffer
    is handed out again only once no view of it is alive, so this serves both
    temporaries that die within the op (cols, dcols) and results that outlive it
    (a convolution's output y and gradient dx).
    """
    kernel = find_kernel("workspace", like)
    if kernel is not None:
        return kernel(shape, dtype)
    return backend.array_module(like).empty(shape, dtype=dtype)


try:
    from kernels.numba_cpu import workspace as _workspace   # NumPy only: needs no Numba
    register_kernel("workspace", "cpu", _workspace.empty)
except ImportError:                 # minigrad without its kernels/ package: numpy.empty
    pass
