"""kernels/numba_cpu/maxpool.py against its NumPy references in minigrad/ops/pool.py.

The forward is a selection, so values and argmax agree bit for bit (ties go to the first tap);
the backward adds floats where windows overlap, compared at float rounding.
"""
import numpy
import pytest
from hypothesis import given

pytest.importorskip("numba")

from kernels_common import assert_same, pool_geometries, tolerance                     # noqa: E402
from minigrad.kernels import numba_cpu                                                  # noqa: E402
from minigrad.kernels.numba_cpu import maxpool as maxpool_module                        # noqa: E402
from minigrad.ops.pool import max_pool2d_backward_numpy, max_pool2d_forward_numpy       # noqa: E402

max_pool_forward = numba_cpu.load("max_pool2d_forward")
max_pool_backward = numba_cpu.load("max_pool2d_backward")


@given(pool_geometries())
def test_max_pool_forward_equals_numpy_reference_bit_for_bit(geometry):
    y, argmax_index = max_pool_forward(*geometry)
    y_reference, argmax_reference = max_pool2d_forward_numpy(*geometry)
    assert_same("max_pool2d y", y, y_reference)
    assert_same("max_pool2d argmax_index", argmax_index, argmax_reference.astype(numpy.int64))


@given(pool_geometries())
def test_max_pool_backward_equals_numpy_reference(geometry):
    x, kernel_h, kernel_w, stride, padding = geometry
    y, argmax_index = max_pool_forward(*geometry)
    dy = numpy.random.default_rng(2).standard_normal(y.shape).astype(x.dtype)
    ours = max_pool_backward(dy, argmax_index, x.shape, kernel_h, kernel_w, stride, padding)
    reference = max_pool2d_backward_numpy(dy, argmax_index, x.shape, kernel_h, kernel_w, stride, padding)
    assert ours.dtype == reference.dtype
    numpy.testing.assert_allclose(ours, reference, **tolerance(x.dtype), err_msg="max_pool2d backward")


def test_max_pool_fills_every_entry_of_dirty_pool_buffers(monkeypatch):
    """y, argmax_index and dx come uninitialised from the pool; pixels that win no window
    (kernel 1 at stride 2 reads one pixel in four) must still get a zero gradient."""
    def dirty(shape, dtype):
        return numpy.full(shape, -7 if numpy.dtype(dtype).kind == "i" else numpy.nan, dtype)

    monkeypatch.setattr(maxpool_module.workspace, "empty", dirty)
    x = numpy.random.default_rng(4).standard_normal((2, 3, 7, 6))
    for geometry in [(x, 3, 3, (2, 2), (1, 1)), (x, 1, 1, (2, 2), (0, 0))]:
        y, argmax_index = max_pool_forward(*geometry)
        y_reference, argmax_reference = max_pool2d_forward_numpy(*geometry)
        assert_same("max_pool2d y", y, y_reference)
        dy = numpy.ones(y.shape)
        dx = max_pool_backward(dy, argmax_index, x.shape, *geometry[1:])
        numpy.testing.assert_array_equal(dx, max_pool2d_backward_numpy(dy, argmax_reference, x.shape, *geometry[1:]))


def test_max_pool_tie_goes_to_the_first_window_position():
    x = numpy.ones((1, 1, 2, 2), dtype=numpy.float32)
    _, argmax_index = max_pool_forward(x, 2, 2, (2, 2), (0, 0))
    assert argmax_index[0, 0, 0, 0] == 0


def test_max_pool_backward_rejects_dy_shaped_unlike_argmax():
    with pytest.raises(ValueError, match=r"dy has shape \(1, 1, 2, 2\) but argmax_index has shape \(1, 1, 1, 1\)"):
        max_pool_backward(numpy.zeros((1, 1, 2, 2)), numpy.zeros((1, 1, 1, 1), dtype=numpy.int64),
                          (1, 1, 2, 2), 2, 2, (2, 2), (0, 0))


@pytest.mark.parametrize("dtype", [numpy.float32, numpy.float64])
@pytest.mark.parametrize("shape", [(2, 3, 8, 8), (1, 2, 7, 9)])           # odd sizes: the last row/column unread
def test_the_2x2_stride_2_pool_loop_equals_the_reference_with_ties_and_nans(dtype, shape):
    """The loop for 2x2 windows at stride 2 without padding (LeNet's, the MNIST CNN's): values and argmax
    as NumPy's, bit for bit, on data full of ties and with NaNs, on its serial twin and its parallel loop."""
    from kernels_common import kernel_policy, loops_taken
    x = numpy.random.default_rng(5).integers(0, 3, size=shape).astype(dtype)   # many ties
    x[0, 0, 0, 1] = x[0, 1, 3, 2] = numpy.nan
    geometry = (x, 2, 2, (2, 2), (0, 0))
    y_reference, argmax_reference = max_pool2d_forward_numpy(*geometry)
    for serial_below, kind in [(1 << 40, "serial"), (0, "parallel")]:
        with kernel_policy(serial_below_bytes=serial_below), loops_taken() as taken:
            y, argmax_index = max_pool_forward(*geometry)
        assert [k for k, _ in taken] == [kind] and "2x2" in taken[0][1]
        assert_same(f"2x2 pool y, {kind}", y, y_reference)
        assert_same(f"2x2 pool argmax, {kind}", argmax_index, argmax_reference.astype(numpy.int64))
