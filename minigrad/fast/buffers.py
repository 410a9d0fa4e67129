"""`scratch`: the one allocator of the fast layer's big arrays (conv outputs, gradients, their temporaries).

On the CPU it takes a buffer from the kernels' pool (kernels/numba_cpu/workspace.py): an idle
buffer that fits, so that every training step does not fault in fresh pages of memory for the
same shapes again. A buffer is handed out again only once no view of it is alive, so scratch
serves both temporaries that die within an op (cols, dcols) and results that outlive it (a
convolution's output y and gradient dx). On the GPU, CuPy's own memory pool does this for
`empty`. The pool's limits are tuning.BUFFER_POOL_MIN_BYTES and BUFFER_POOL_MAX_BYTES.

`kept_pool_matrix`: adaptive average pooling's small averaging matrices, built once and kept.
"""
import functools

import numpy

from minigrad import backend
from minigrad.fast import tuning
from minigrad.kernels.numba_cpu import workspace
from minigrad.ops.pool import adaptive_pool_matrix
from minigrad.ops.registry import register_kernel


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


def kept_pool_matrix(xp, size, out_size, dtype):
    """adaptive_pool_matrix (minigrad/ops/pool.py), built once per (L, O, dtype, device) and shared.

    A network pools the same few sizes at every step; the reference builds each matrix anew, which on
    the GPU is a few small launches and a copy per call. The kept matrices are never written to (the
    NumPy ones are read-only, to keep it so)."""
    device = None if xp is numpy else xp.cuda.Device().id                   # each GPU keeps its own
    return _kept_pool_matrix(xp, int(size), int(out_size), numpy.dtype(dtype), device)


@functools.lru_cache(maxsize=tuning.KEPT_POOL_MATRICES)
def _kept_pool_matrix(xp, size, out_size, dtype, device):
    matrix = adaptive_pool_matrix(xp, size, out_size, dtype)
    if xp is numpy:
        matrix.flags.writeable = False
    return matrix


def install():
    """Keep adaptive pooling's matrices on both devices."""
    for device in (backend.CPU, backend.GPU):
        register_kernel("adaptive_pool_matrix", device, kept_pool_matrix)
