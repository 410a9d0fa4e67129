"""kernels/numba_cpu/workspace.py: the buffer pool of the kernels' big outputs (and minigrad's `scratch`).

A buffer is handed out again only once no view of it is alive; the smallest idle buffer
that fits is taken; the limits (numba_cpu.configure(pool_min_bytes=..., pool_max_bytes=...),
minigrad/fast/tuning.py's BUFFER_POOL_* when minigrad is imported) say what is pooled, and
with the kernels' defaults nothing is. The pool needs no Numba.
"""
import numpy
import pytest

from kernels_common import kernel_policy
from minigrad.fast import tuning
from minigrad.kernels.numba_cpu import workspace

MiB = 1 << 20


def _address(array):
    return array.__array_interface__["data"][0]


def _pooled(array):
    """Whether the array is a view of a pool buffer (numpy.empty's arrays own their memory)."""
    return array.base is not None


@pytest.fixture
def pool():
    """The pool with minigrad's tuned limits, and no idle buffer left over from other tests."""
    with kernel_policy(pool_min_bytes=tuning.BUFFER_POOL_MIN_BYTES, pool_max_bytes=tuning.BUFFER_POOL_MAX_BYTES):
        workspace.clear()
        yield workspace
    workspace.clear()


def test_workspace_never_hands_out_a_buffer_that_a_view_still_uses(pool):
    first = pool.empty((512, 1024), numpy.float32)               # 2 MiB: pooled
    assert _pooled(first)
    view = first.reshape(1024, 512).T[3:]                         # a view outlives the array itself
    first_address = _address(first)
    del first
    second = pool.empty((512, 1024), numpy.float32)
    assert _address(second) != first_address
    del view, second


def test_workspace_reuses_a_buffer_once_every_view_is_gone(pool):
    first = pool.empty((512, 1024), numpy.float32)
    address = _address(first)
    del first
    assert _address(pool.empty((512, 1024), numpy.float32)) == address


def test_workspace_takes_the_smallest_idle_buffer_that_fits(pool):
    assert tuning.BUFFER_POOL_MIN_BYTES <= 5 * MiB // 4               # every array below is pooled
    small, large = pool.empty((3 * MiB // 2,), numpy.uint8), pool.empty((11 * MiB // 4,), numpy.uint8)
    small_address, large_address = _address(small), _address(large)
    del small, large
    assert pool._sizes == sorted(pool._sizes) == [s[0].nbytes for s in pool._slots]
    fits_small = pool.empty((5 * MiB // 4,), numpy.uint8)             # 1.25 MiB: the 1.5 MiB buffer
    only_large = pool.empty((7 * MiB // 4,), numpy.uint8)             # 1.75 MiB: too big for it
    assert _address(fits_small) == small_address
    assert _address(only_large) == large_address


def test_workspace_reuses_an_idle_buffer_for_a_smaller_array_of_another_shape_and_dtype(pool):
    first = pool.empty((512, 1024), numpy.float64)                   # 4 MiB
    address = _address(first)
    del first
    second = pool.empty((300, 1024), numpy.float32)                  # 1.2 MiB fits in the idle 4 MiB
    assert _address(second) == address
    assert second.shape == (300, 1024) and second.dtype == numpy.float32 and second.flags.c_contiguous


def test_workspace_serves_arrays_under_min_bytes_from_numpy(pool):
    before = pool.pooled_bytes()
    small = pool.empty((tuning.BUFFER_POOL_MIN_BYTES // 8 - 1,), numpy.float64)
    assert not _pooled(small) and pool.pooled_bytes() == before


def test_workspace_never_holds_more_than_max_bytes():
    with kernel_policy(pool_min_bytes=MiB, pool_max_bytes=3 * MiB):
        workspace.clear()
        budget = 3 * MiB - workspace.pooled_bytes()                   # buffers in use elsewhere stay
        first = workspace.empty((2 * MiB,), numpy.uint8)
        second = workspace.empty((2 * MiB,), numpy.uint8)             # the first is busy: no room for a second
        assert _pooled(first) == (budget >= 2 * MiB) and not _pooled(second)
        assert workspace.pooled_bytes() <= 3 * MiB
        del first, second
        workspace.clear()


def test_workspace_with_max_bytes_0_pools_nothing():
    """max_bytes 0, the kernels' default until minigrad's fast layer configures them: the pool is off."""
    with kernel_policy(pool_min_bytes=0, pool_max_bytes=0):
        before = workspace.pooled_bytes()
        array = workspace.empty((4 * MiB,), numpy.uint8)
        assert not _pooled(array) and workspace.pooled_bytes() == before


def test_clear_releases_idle_buffers_and_keeps_busy_ones(pool):
    before = pool.pooled_bytes()                                      # buffers other code still uses
    busy, idle = pool.empty((2 * MiB,), numpy.uint8), pool.empty((3 * MiB,), numpy.uint8)
    idle_address = _address(idle)
    del idle
    pool.clear()
    assert pool.pooled_bytes() == before + 2 * MiB and 3 * MiB not in pool._sizes
    assert all(_address(slot[0]) != idle_address for slot in pool._slots)
    del busy
