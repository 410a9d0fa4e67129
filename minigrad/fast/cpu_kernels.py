"""The Numba CPU kernels (kernels/numba_cpu/) put into the ops' table, loaded on their first call.

Each entry of the table is a lazy stand-in with the signature of the NumPy reference: the
first call imports the kernel's module (Numba compiles it, or reads its on-disk cache), so
`import minigrad` compiles nothing and imports no Numba. The stand-in sends to the NumPy
reference what the kernels are not made for: dtypes other than float32 and float64, and, for
the elementwise kernels, arrays under tuning.ELEMENTWISE_NUMPY_BELOW_BYTES (a Numba call has
a fixed cost that NumPy does not). Where Numba cannot be imported, the first call finds no
kernel and every later call runs the reference: the results are the same.
"""
import sys

import numpy

from minigrad.fast import tuning
from minigrad.kernels import numba_cpu
from minigrad.ops import activation, im2col, norm, pool, winograd
from minigrad.ops.registry import register_kernel

KERNEL_DTYPES = (numpy.dtype(numpy.float32), numpy.dtype(numpy.float64))   # what the kernels are compiled for

# kernel name -> the NumPy reference it stands in for
REFERENCES = {
    "im2col": im2col.im2col_numpy,
    "col2im": im2col.col2im_numpy,
    "max_pool2d_forward": pool.max_pool2d_forward_numpy,
    "max_pool2d_backward": pool.max_pool2d_backward_numpy,
    "batch_norm_train_forward": norm.batch_norm_train_forward_numpy,
    "batch_norm_backward": norm.batch_norm_backward_numpy,
    "relu_forward": activation.relu_forward_numpy,
    "relu_backward": activation.relu_backward_numpy,
    "add_relu_forward": activation.add_relu_forward_numpy,
    "relu_backward_from_output": activation.relu_backward_from_output_numpy,
    "gelu_forward": activation.gelu_forward_numpy,       # not ELEMENTWISE: its reference is slow at any size
    "gelu_backward": activation.gelu_backward_numpy,
    **{name: reference for name, reference in winograd.TRANSFORMS},
}
ELEMENTWISE = {"relu_forward", "relu_backward", "add_relu_forward", "relu_backward_from_output",
               "batch_norm_train_forward", "batch_norm_backward"}


_told = []        # whether this process has said that it compiles (once is enough)


def tell_about_compiling(name):
    """Say once, on stderr, that the first call compiles when Numba has no machine code on disk for
    kernel `name` yet: that first step takes many seconds, and silence looks like a hang."""
    if not _told and numba_cpu.numba_available() and not numba_cpu.compiled_on_disk(name):
        _told.append(name)
        print("minigrad: compiling the Numba kernels for this machine (first run only: they are cached on "
              "disk for the next runs; this takes a few seconds per kernel)", file=sys.stderr, flush=True)


def lazy(name, reference):
    """A stand-in for kernel `name` that loads it on its first call; some arrays go to `reference`."""
    smallest = tuning.ELEMENTWISE_NUMPY_BELOW_BYTES if name in ELEMENTWISE else 0
    loaded = []

    def run(array, *args, **options):
        if array.dtype not in KERNEL_DTYPES or array.nbytes < smallest:
            return reference(array, *args, **options)
        if not loaded:
            tell_about_compiling(name)
            loaded.append(True)
        function = numba_cpu.load(name) or reference       # None where Numba cannot be imported
        return function(array, *args, **options)

    run.__name__ = f"{name}_numba"
    run.__doc__ = f"minigrad.kernels.numba_cpu kernel {name!r}, loaded on first call; else {reference.__name__}."
    return run


def direct_conv_kernel(name):
    """Kernel `name` of kernels/numba_cpu/direct_conv.py ("conv2d_direct_forward", "..._input_grad",
    "..._weight_grad"), loaded on its first call; None where Numba cannot be imported. Not in the ops'
    table: no op asks for these; the fast conv2d's direct path (fast/conv.py) does, where Numba is.
    Their reference is minigrad/ops/conv.py's Conv2d."""
    if name not in _direct_loaded:
        tell_about_compiling(name)
        _direct_loaded.add(name)
    return numba_cpu.load(name)


_direct_loaded = set()      # the direct kernels asked for once (said whether they compile)


def install():
    """Set the kernels' size limits (tuning.py) and register a lazy stand-in for each kernel."""
    numba_cpu.configure(serial_below_bytes=tuning.NUMBA_SERIAL_BELOW_BYTES,
                        constant_sizes_from_bytes=tuning.NUMBA_CONSTANT_SIZES_FROM_BYTES,
                        pool_min_bytes=tuning.BUFFER_POOL_MIN_BYTES, pool_max_bytes=tuning.BUFFER_POOL_MAX_BYTES)
    for name, reference in REFERENCES.items():
        register_kernel(name, "cpu", lazy(name, reference))
