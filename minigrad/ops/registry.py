"""The table of faster paths: how a reference op finds the fast layer without importing it.

Every op in minigrad/ops/ is the readable reference. Where a faster version exists, the op
asks this table in ONE visible line, and runs the reference when the table has nothing:

    kernel = find_kernel("im2col", x, im2col_numpy)      # a faster kernel for x's device, else the reference
    function = faster(Conv2d(stride, padding), x, w)     # the fast layer's Conv2d, else this one

The table starts empty. minigrad's fast layer (minigrad/fast/, optional reading, see
docs/10_performance.md) fills it when `import minigrad` runs: Numba kernels for the CPU and
CUDA C kernels for the GPU, each with the signature and results of the reference it
replaces, and faster Functions (chunked, threaded convolutions) that compute the same
numbers. ops never imports the fast layer; the fast layer imports ops. Empty the table
(`clear()`) and every op runs exactly the code you read.
"""
from minigrad import backend
from minigrad.tensor import Tensor

KERNELS = {}     # (name, device) -> function with the signature of the NumPy reference
FUNCTIONS = {}   # (Function subclass name, device) -> chooser(function, *input arrays) -> a Function


def register_kernel(name, device, function):
    """Use `function` for kernel `name` ("im2col", "relu_forward", ...) on `device` ("cpu" or "gpu")."""
    KERNELS[(name, backend.normalize_device(device))] = function


def find_kernel(name, array, fallback=None):
    """The kernel registered for `name` on the device of `array`, else `fallback`."""
    return KERNELS.get((name, backend.device_of(array)), fallback)


def register_function(name, device, chooser):
    """On `device`, `faster` hands Functions of class `name` to chooser(function, *arrays), which
    returns the Function to run instead (or the same one)."""
    FUNCTIONS[(name, backend.normalize_device(device))] = chooser


def faster(function, *inputs):
    """The Function to run in place of `function` on these inputs (Tensors or arrays): the fast
    layer's equivalent when one is registered for the inputs' device, else `function` itself."""
    arrays = [x.array if isinstance(x, Tensor) else x for x in inputs]      # the raw arrays
    chooser = FUNCTIONS.get((type(function).__name__, backend.device_of(arrays[0])))
    return function if chooser is None else chooser(function, *arrays)


def clear():
    """Forget every faster path: every op then runs its reference code (tests and comparisons)."""
    KERNELS.clear()
    FUNCTIONS.clear()
