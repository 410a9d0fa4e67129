"""Numba CPU kernels for the convolution hot path, loaded lazily.

    im2col.py    image -> columns           reference: minigrad.ops.im2col.im2col_numpy
    col2im.py    columns -> image (adjoint) reference: minigrad.ops.im2col.col2im_numpy
    maxpool.py   max pool forward/backward  reference: minigrad.ops.pool.max_pool2d_*_numpy
    workspace.py a small caching allocator: im2col/col2im outputs reuse idle buffers

Every kernel has the signature and result of the NumPy reference it stands in
for. `import kernels.numba_cpu` does not import Numba: `load(name)` imports the
kernel module on first use (Numba then compiles, or reads its on-disk cache)
and returns the function, or None when Numba is not installed. The op
dispatchers in minigrad/ops/ register lazy stand-ins with `register_into`:

    register_into(register_kernel, {"im2col": im2col_numpy, "col2im": col2im_numpy})

so nothing compiles until a convolution first runs on the CPU.
"""
import importlib
import importlib.util

import numpy

# The kernels are compiled for these; other dtypes (float16, ints) take the NumPy fallback.
KERNEL_DTYPES = (numpy.dtype(numpy.float32), numpy.dtype(numpy.float64))

# public name -> (module, function)
KERNELS = {
    "im2col": ("im2col", "im2col"),
    "col2im": ("col2im", "col2im"),
    "col2im_gather": ("col2im", "col2im_gather"),
    "max_pool2d_forward": ("maxpool", "max_pool2d_forward"),
    "max_pool2d_backward": ("maxpool", "max_pool2d_backward"),
}

_functions = {}   # name -> the loaded kernel function


def numba_available():
    """True when Numba is installed (found without importing it)."""
    return importlib.util.find_spec("numba") is not None


def load(name):
    """The kernel called `name` (see KERNELS), or None when Numba is absent."""
    if name not in KERNELS:
        raise KeyError(f"kernels.numba_cpu.load: unknown kernel {name!r}; known: {sorted(KERNELS)}")
    if name not in _functions:
        if not numba_available():
            return None
        module_name, function_name = KERNELS[name]
        module = importlib.import_module(f"{__name__}.{module_name}")
        _functions[name] = getattr(module, function_name)
    return _functions[name]


def lazy(name, fallback):
    """A stand-in for kernel `name` that loads (and compiles) it on its first call.

    Arrays whose dtype is not in KERNEL_DTYPES go to `fallback` (the NumPy reference).
    """
    def run(array, *args):
        if array.dtype not in KERNEL_DTYPES:
            return fallback(array, *args)
        function = _functions.get(name) or load(name)
        return function(array, *args)

    run.__name__ = f"{name}_numba"
    run.__doc__ = f"kernels.numba_cpu kernel {name!r}, loaded on first call."
    return run


def register_into(register_kernel, fallbacks):
    """Register lazy CPU kernels with a dispatcher's register_kernel(name, device, function).

    fallbacks: {kernel name: the NumPy function to use for dtypes the kernels do not take}.
    Does nothing when Numba is absent, so the dispatcher keeps its NumPy path.
    """
    if not numba_available():
        return False
    for name, fallback in fallbacks.items():
        register_kernel(name, "cpu", lazy(name, fallback))
    return True
