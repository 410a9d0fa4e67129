"""A small caching allocator for the big arrays of the hot path: the kernels' outputs (im2col,
col2im, batch norm, ReLU, max pooling, the Winograd transforms) and, through minigrad's fast
layer (`scratch` in minigrad/fast/buffers.py), the convolutions' outputs and gradients.

Why: im2col's output for one ResNet-20 layer at batch 128 is 75 MB. A fresh
NumPy array that large is new memory from the operating system, and the first
write to each page costs a page fault (the operating system zeroes the page and
maps it in), which can cost as much as the im2col copy itself. Every training
step needs the same shapes again, so, like the caching allocators of PyTorch and
CuPy, we keep the buffers and hand them out again once nobody uses them any more.

How "nobody uses it" is known: the pool owns each buffer as an instance of the
private subclass `_PoolBuffer` and makes one plain ndarray VIEW of it, the
owner view. NumPy points every further view (reshape, transpose, slice, the
array handed out) at that owner view (it stops at the subclass boundary), so
the buffer is in use exactly while the owner view is alive, which a weak
reference tells us. No reference counting by hand, no explicit free.

    cols = workspace.empty((rows, columns), numpy.float32)   # contents are garbage, like numpy.empty

Arrays under LIMITS["min_bytes"] come straight from numpy.empty, and the pool never
holds more than LIMITS["max_bytes"] (then it also falls back to numpy.empty); `clear()`
drops the idle buffers. Both limits are set by the caller (`configure`, called by
minigrad's fast layer); until then max_bytes is 0 and nothing is pooled.
"""
import bisect
import math
import threading
import weakref

import numpy

LIMITS = {"min_bytes": 0, "max_bytes": 0}   # set by `configure`; max_bytes 0: the pool is off

_lock = threading.Lock()
_slots = []                # [buffer of raw bytes, weakref to the handed-out view or None], smallest first
_sizes = []                # the bytes of each buffer in _slots, for bisect
_pooled_bytes = 0


class _PoolBuffer(numpy.ndarray):
    """The owner of one pooled buffer; only plain views of it leave this module."""


def empty(shape, dtype):
    """An uninitialised array of `shape` and `dtype`, reusing an idle pooled buffer when one fits.

    Buffers are raw bytes, so one buffer serves any shape and dtype that fits in it:
    the idle buffer with the fewest bytes that are enough is taken (a layer's cols, the
    next layer's dcols ...), and a new one is made only when none fits.
    """
    global _pooled_bytes
    shape, dtype = tuple(int(s) for s in shape), numpy.dtype(dtype)
    nbytes = math.prod(shape) * dtype.itemsize     # (math.prod: numpy.prod costs far more per call)
    if nbytes == 0 or nbytes < LIMITS["min_bytes"] or nbytes > LIMITS["max_bytes"]:
        return numpy.empty(shape, dtype)
    with _lock:
        first = bisect.bisect_left(_sizes, nbytes)            # skip the buffers that are too small
        slot = next((s for s in _slots[first:] if s[1] is None or s[1]() is None), None)
        if slot is None:
            if _pooled_bytes + nbytes > LIMITS["max_bytes"]:
                return numpy.empty(shape, dtype)
            slot = [_PoolBuffer((nbytes,), numpy.uint8), None]
            index = bisect.bisect_right(_sizes, nbytes)       # keep both lists sorted by size
            _slots.insert(index, slot)
            _sizes.insert(index, nbytes)
            _pooled_bytes += nbytes
        owner = slot[0].view(numpy.ndarray)          # every view below points back to `owner`
        slot[1] = weakref.ref(owner)
        return owner[:nbytes].view(dtype).reshape(shape)


def configure(min_bytes=None, max_bytes=None):
    """Pool arrays of at least min_bytes, and hold at most max_bytes in all (None: keep the current value)."""
    if min_bytes is not None:
        LIMITS["min_bytes"] = int(min_bytes)
    if max_bytes is not None:
        LIMITS["max_bytes"] = int(max_bytes)


def clear():
    """Release every idle buffer to the operating system; buffers in use stay."""
    global _pooled_bytes
    with _lock:
        busy = [s for s in _slots if s[1] is not None and s[1]() is not None]
        _pooled_bytes = sum(s[0].nbytes for s in busy)
        _slots[:] = busy
        _sizes[:] = [s[0].nbytes for s in busy]


def pooled_bytes():
    """Bytes held by the pool (busy and idle)."""
    return _pooled_bytes
