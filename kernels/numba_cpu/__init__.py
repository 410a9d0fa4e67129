"""Numba CPU kernels for the hot paths, loaded lazily.

    im2col.py    image -> columns            reference: minigrad.ops.im2col.im2col_numpy
    col2im.py    columns -> image (adjoint)  reference: minigrad.ops.im2col.col2im_numpy
    maxpool.py   max pool forward/backward   reference: minigrad.ops.pool.max_pool2d_*_numpy
    batchnorm.py batch norm (training)       reference: minigrad.ops.norm.batch_norm_*_numpy
    relu.py      ReLU forward/backward, and relu(a + b) fused   reference: minigrad.ops.activation.*_numpy
    gelu.py      the exact GELU forward/backward (a compiled erf) reference: minigrad.ops.activation.gelu_*_numpy
    winograd.py  F(2x2, 3x3) tile transforms reference: minigrad.ops.winograd.*_numpy
    direct_conv.py  conv2d at stride 1 without cols (few channels, large kernels)
                 reference: minigrad.ops.conv.Conv2d and conv2d_reference
    workspace.py a small caching allocator for the kernels' outputs

Every kernel has the signature and result of the NumPy reference it stands in for.
Like the rest of kernels/, this package imports nothing from minigrad, and importing it
does not import Numba: `load(name)` imports the kernel's module on first use (Numba then
compiles, or reads its on-disk cache) and returns the function, or None when Numba cannot
be imported. minigrad's fast layer (minigrad/fast/cpu_kernels.py) registers lazy stand-ins
that call `load` on their first call.

The kernels provide mechanisms; the caller sets the policy with `configure`: from which
size a loop runs on Numba's thread pool, from which size a strided chunk uses the loop
compiled for its sizes (im2col.py), and the buffer pool's limits (workspace.py). Until
`configure` is called every loop runs in parallel, nothing is compiled per size and
nothing is pooled: the plainest behaviour, with the same results.

Threads: Numba's `workqueue` threading layer, chosen when the first kernel loads unless
the user chose a layer (NUMBA_THREADING_LAYER, or numba.config.THREADING_LAYER). NumPy's
OpenBLAS keeps its own pool of threads and the two pools take turns (a GEMM, then an
im2col, then a GEMM ...). Numba's default `omp` layer loads GNU OpenMP, whose idle workers
spin while OpenBLAS works, and with it in the process OpenBLAS's multi-threaded GEMMs
became erratic (docs/10_performance.md); the workqueue layer loads no OpenMP and its
workers sleep. Numba fixes its layer when it first starts threads, so code that starts
them before the first kernel loads keeps the layer it got. The workqueue layer must not
be entered by two Python threads at once (Numba aborts the process), so every launch of
a parallel loop holds one lock (`launch_lock`), while the serial `nogil` twins of the
loops (small arrays) run side by side on several threads.
"""
import importlib
import os
import threading
from pathlib import Path

# public name -> (module, function)
KERNELS = {
    "im2col": ("im2col", "im2col"),
    "col2im": ("col2im", "col2im"),
    "max_pool2d_forward": ("maxpool", "max_pool2d_forward"),
    "max_pool2d_backward": ("maxpool", "max_pool2d_backward"),
    "batch_norm_train_forward": ("batchnorm", "batch_norm_train_forward"),
    "batch_norm_backward": ("batchnorm", "batch_norm_backward"),
    "relu_forward": ("relu", "relu_forward"),
    "relu_backward": ("relu", "relu_backward"),
    "add_relu_forward": ("relu", "add_relu_forward"),
    "relu_backward_from_output": ("relu", "relu_backward_from_output"),
    "gelu_forward": ("gelu", "gelu_forward"),
    "gelu_backward": ("gelu", "gelu_backward"),
    "winograd_input_transform": ("winograd", "input_transform"),
    "winograd_output_transform": ("winograd", "output_transform"),
    "winograd_output_transform_adjoint": ("winograd", "output_transform_adjoint"),
    "winograd_input_transform_adjoint": ("winograd", "input_transform_adjoint"),
    "conv2d_direct_forward": ("direct_conv", "conv2d_forward"),
    "conv2d_direct_input_grad": ("direct_conv", "conv2d_input_grad"),
    "conv2d_direct_weight_grad": ("direct_conv", "conv2d_weight_grad"),
}

# The policy (see `configure`), read at each call. The defaults are the plainest behaviour.
LIMITS = {
    "serial_below_bytes": 0,            # arrays smaller than this run a loop's serial twin on the caller's thread
    "constant_sizes_from_bytes": None,  # chunks / images from this size use loops compiled for their sizes (None: never)
}

_functions = {}   # name -> the loaded kernel function
_numba = {}       # "module": numba, or None when it cannot be imported (looked up once)
# Every call of a `parallel=True` loop holds this lock: the workqueue layer is not re-entrant.
launch_lock = threading.Lock()


KEEP = object()   # an argument of `configure` left at this keeps its current value


def configure(serial_below_bytes=KEEP, constant_sizes_from_bytes=KEEP, pool_min_bytes=None, pool_max_bytes=None):
    """Set the size limits that choose between the kernels' loops, and the buffer pool's limits.

    serial_below_bytes: arrays under this size run serially on the calling thread, without the GIL.
    constant_sizes_from_bytes: chunks of cols (im2col.py, col2im.py) and padded images (direct_conv.py)
    from this size (and under serial_below_bytes) use the loops compiled for their sizes; None: never. pool_min_bytes / pool_max_bytes:
    see workspace.py (None keeps the current value). Arguments left out keep their current value.
    """
    from . import workspace

    if serial_below_bytes is not KEEP:
        LIMITS["serial_below_bytes"] = int(serial_below_bytes)
    if constant_sizes_from_bytes is not KEEP:
        LIMITS["constant_sizes_from_bytes"] = None if constant_sizes_from_bytes is None else int(constant_sizes_from_bytes)
    workspace.configure(min_bytes=pool_min_bytes, max_bytes=pool_max_bytes)


def run_loop(serial_loop, parallel_loop, nbytes, *arguments):
    """serial_loop(*arguments) on this thread, without the GIL, for arrays under LIMITS["serial_below_bytes"];
    else parallel_loop(*arguments) on Numba's threads, one launch at a time. The one place that chooses
    between a kernel's serial twin and its parallel loop."""
    if nbytes < LIMITS["serial_below_bytes"]:
        serial_loop(*arguments)
    else:
        with launch_lock:
            parallel_loop(*arguments)


def numba_module():
    """The numba module, or None when it is missing or cannot be imported (for example a Numba
    too old for the NumPy beside it). Imported once, on first use; picks the threading layer."""
    if "module" not in _numba:
        try:
            import numba
        except Exception:               # ImportError, or a version check that raised
            numba = None
        if numba is not None and "NUMBA_THREADING_LAYER" not in os.environ \
                and numba.config.THREADING_LAYER == "default":
            numba.config.THREADING_LAYER = "workqueue"     # see the module docstring
        _numba["module"] = numba
    return _numba["module"]


def numba_available():
    """True when Numba can be imported (importing it, once)."""
    return numba_module() is not None


def compiled_on_disk(name):
    """Whether Numba's on-disk cache already holds machine code from kernel `name`'s module (its index
    files, `<module>.<function>-<line>.pyXY.nbi`): under NUMBA_CACHE_DIR when it is set (Numba then uses
    it alone), else in the module's __pycache__ or the user's cache folder. When it does not, the first
    call compiles, which takes seconds."""
    module_name = KERNELS[name][0]
    if os.environ.get("NUMBA_CACHE_DIR"):
        folders = [Path(os.environ["NUMBA_CACHE_DIR"])]
    else:
        folders = [Path(__file__).resolve().parent / "__pycache__", Path.home() / ".cache" / "numba"]
    return any(next(folder.rglob(f"{module_name}.*.nbi"), None) is not None
               for folder in folders if folder.is_dir())


def load(name):
    """The kernel called `name` (see KERNELS), or None when Numba cannot be imported."""
    if name not in KERNELS:
        raise KeyError(f"minigrad.kernels.numba_cpu.load: unknown kernel {name!r}; known: {sorted(KERNELS)}")
    if name not in _functions:
        if not numba_available():
            return None
        module_name, function_name = KERNELS[name]
        module = importlib.import_module(f"{__name__}.{module_name}")
        _functions[name] = getattr(module, function_name)
    return _functions[name]
