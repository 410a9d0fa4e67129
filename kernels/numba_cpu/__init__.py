"""Numba CPU kernels for the convolution hot path, loaded lazily.

    im2col.py    image -> columns           reference: minigrad.ops.im2col.im2col_numpy
    col2im.py    columns -> image (adjoint) reference: minigrad.ops.im2col.col2im_numpy
    maxpool.py   max pool forward/backward  reference: minigrad.ops.pool.max_pool2d_*_numpy
    batchnorm.py batch norm (training)      reference: minigrad.ops.norm.batch_norm_*_numpy
    relu.py      ReLU forward/backward, and relu(a + b) fused   reference: minigrad.ops.activation.*_numpy
    winograd.py  F(2x2, 3x3) tile transforms reference: minigrad.ops.winograd.*_numpy
    workspace.py a small caching allocator: im2col/col2im outputs reuse idle buffers

Every kernel has the signature and result of the NumPy reference it stands in
for. `import kernels.numba_cpu` does not import Numba: `load(name)` imports the
kernel module on first use (Numba then compiles, or reads its on-disk cache)
and returns the function, or None when Numba is not installed. The op
dispatchers in minigrad/ops/ register lazy stand-ins with `register_into`:

    register_into(register_kernel, {"im2col": im2col_numpy, "col2im": col2im_numpy})

so nothing compiles until a convolution first runs on the CPU.

Threads: the `workqueue` threading layer, one kernel at a time.
NumPy's OpenBLAS keeps its own pool of threads, and the two pools take turns
(a GEMM, then an im2col, then a GEMM ...). Numba's default `omp` layer loads
GNU OpenMP (libgomp); with it in the process, OpenBLAS's 2-thread GEMMs were
erratic on the 2-core benchmark machine (the same product took 2.6 ms or 800
ms, one core busy), and OpenMP's idle workers spin while OpenBLAS works.
Measured, one ResNet-20 training step (batch 128), minigrad alone, 2 threads,
wall / process CPU time (benchmarks/RESULTS.md; the machine was shared):

    omp layer (Numba's default)          29 s / 15 s,  22.9 s / 22.9 s,  1.85 s / 3.55 s
    omp + OMP_WAIT_POLICY=passive        33 s / 17 s
    omp + OPENBLAS_THREAD_TIMEOUT=4      17 s / 10 s
    workqueue layer                      0.97-0.99 s / 1.9 s (earlier, busier: 4-7 s)
    1 thread (either layer)              1.2 s / 1.2 s

The workqueue layer loads no OpenMP and its workers sleep, so minigrad selects it
when this package is imported (by `import minigrad`), unless the user chose a
layer (the environment variable NUMBA_THREADING_LAYER, or
numba.config.THREADING_LAYER changed from its default). Numba fixes its layer
when it first starts threads (the first parallel kernel, or
numba.set_num_threads), so code that starts them before importing minigrad
keeps the layer it got. The workqueue layer must not be entered by two Python threads
at once (Numba aborts the process), so every launch of a parallel loop holds one lock
(`launch_lock`): parallel kernels from several threads run one after the other, while
the serial `nogil` loops of im2col/col2im (small arrays) run side by side.
Single-thread speed is unchanged (a parallel loop on one thread is the same
loop under either layer).
"""
import importlib
import importlib.util
import os
import sys
import threading

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
    "batch_norm_train_forward": ("batchnorm", "batch_norm_train_forward"),
    "batch_norm_backward": ("batchnorm", "batch_norm_backward"),
    "relu_forward": ("relu", "relu_forward"),
    "relu_backward": ("relu", "relu_backward"),
    "add_relu_forward": ("relu", "add_relu_forward"),
    "relu_backward_from_output": ("relu", "relu_backward_from_output"),
    "winograd_input_transform": ("winograd", "input_transform"),
    "winograd_output_transform": ("winograd", "output_transform"),
    "winograd_output_transform_adjoint": ("winograd", "output_transform_adjoint"),
    "winograd_input_transform_adjoint": ("winograd", "input_transform_adjoint"),
}

# im2col and col2im run their loops on the calling thread alone for arrays smaller than this.
# The convolution sends them cache-sized chunks (about 1 MiB of cols, minigrad/ops/conv.py), and
# waking Numba's worker threads for each chunk cost more than it saved: at 2 threads one ResNet-20
# step spent 162 ms in im2col and 126 ms in col2im, against 135 and 85 ms at 1 thread.
SERIAL_BELOW_BYTES = 4 << 20

# Elementwise kernels pay a fixed cost per call (Numba's dispatch, the thread pool) that NumPy
# does not; below these sizes NumPy is faster. ReLU on a (128, 256) float32 batch, 1 thread:
# Numba 48 us forward / 37 us backward, NumPy 9 / 32 us; on (128, 16, 32, 32): Numba 1.9 / 1.6 ms,
# NumPy 3.8 / 2.0 ms.
NUMPY_BELOW_BYTES = {"relu_forward": 1 << 20, "relu_backward": 1 << 20,
                     "add_relu_forward": 1 << 20, "relu_backward_from_output": 1 << 20,
                     "batch_norm_train_forward": 1 << 20, "batch_norm_backward": 1 << 20}

_functions = {}   # name -> the loaded kernel function
# Every call of a `parallel=True` loop holds this lock: the workqueue layer is not re-entrant.
# Serial `nogil` loops (im2col/col2im on small arrays) do not need it and run on several threads.
launch_lock = threading.Lock()


def run_loop(serial_loop, parallel_loop, nbytes, *arguments):
    """serial_loop(*arguments) on this thread, without the GIL, for arrays under SERIAL_BELOW_BYTES
    (read at each call); else parallel_loop(*arguments) on Numba's threads, one launch at a time.
    The one place that chooses between a kernel's serial twin and its parallel loop."""
    if nbytes < SERIAL_BELOW_BYTES:
        serial_loop(*arguments)
    else:
        with launch_lock:
            parallel_loop(*arguments)


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
        _choose_threading_layer()
        module_name, function_name = KERNELS[name]
        module = importlib.import_module(f"{__name__}.{module_name}")
        _functions[name] = getattr(module, function_name)
    return _functions[name]


def _choose_threading_layer():
    """Select Numba's workqueue layer (see the module docstring) unless the user picked one."""
    if "NUMBA_THREADING_LAYER" in os.environ:
        return
    numba = sys.modules.get("numba")
    if numba is None:                   # numba reads this when it is imported
        os.environ["NUMBA_THREADING_LAYER"] = "workqueue"
    elif numba.config.THREADING_LAYER == "default":
        numba.config.THREADING_LAYER = "workqueue"


def lazy(name, fallback):
    """A stand-in for kernel `name` that loads (and compiles) it on its first call.

    Arrays whose dtype is not in KERNEL_DTYPES go to `fallback` (the NumPy reference),
    and so do arrays smaller than NUMPY_BELOW_BYTES[name].
    """
    smallest = NUMPY_BELOW_BYTES.get(name, 0)

    def run(array, *args, **options):
        if array.dtype not in KERNEL_DTYPES or array.nbytes < smallest:
            return fallback(array, *args, **options)
        function = _functions.get(name) or load(name)
        return function(array, *args, **options)

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


_choose_threading_layer()
