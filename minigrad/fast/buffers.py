"""`scratch`: the one allocator of the fast layer's big arrays (conv outputs, gradients, their temporaries).

On the CPU it takes a buffer from the kernels' pool (kernels/numba_cpu/workspace.py): an idle
buffer that fits, so that every training step does not fault in fresh pages of memory for the
same shapes again. A buffer is handed out again only once no view of it is alive, so scratch
serves both temporaries that die within an op (cols, dcols) and results that outlive it (a
convolution's output y and gradient dx). On the GPU, CuPy's own memory pool does this for
`empty`. The pool's limits are tuning.BUFFER_POOL_MIN_BYTES and BUFFER_POOL_MAX_BYTES.
"""
from minigrad import backend
from minigrad.kernels.numba_cpu import workspace


def add_bias(y, bias):
    """y + b for b one number per filter (F,): in place, in y's buffer, when b's dtype fits y's; else a new
    array of the wider dtype, the dtype the reference's y + b gives (a float64 bias on float32 maps)."""
    b = bias.reshape(1, -1, 1, 1)
    if backend.array_module(y).result_type(y, b) != y.dtype:
        return y + b
    y += b
    return y


def scratch(shape, dtype, like):
    """An uninitialised array (like numpy.empty) on the device of `like`, pooled on the CPU."""
    if backend.device_of(like) == backend.CPU:
        return workspace.empty(shape, dtype)
    return backend.array_module(like).empty(shape, dtype=dtype)
