"""kernels/numba_cpu/col2im.py against its NumPy reference, minigrad.ops.im2col.col2im_numpy.

col2im adds floats. The plane loop adds a pixel's terms tap by tap in (kh, kw) order, as the
reference does, so it agrees bit for bit; the strided windows path groups them by kernel
column, the same sum to float rounding. The loops compiled for constant sizes are tested in
test_kernels_numba_constant_sizes.py.
"""
import numpy
import pytest
from hypothesis import given
from hypothesis import strategies as st

pytest.importorskip("numba")

from kernels_common import (assert_same, conv_geometries, kernel_policy, loops_taken,  # noqa: E402
                            random_cols, same_width_geometries, tolerance)
from minigrad.fast import tuning                                                       # noqa: E402
from minigrad.kernels import numba_cpu                                                 # noqa: E402
from minigrad.kernels.numba_cpu import col2im as col2im_module, im2col as im2col_module  # noqa: E402
from minigrad.ops.im2col import col2im_numpy                                           # noqa: E402

im2col = numba_cpu.load("im2col")
col2im = numba_cpu.load("col2im")


@given(conv_geometries())
def test_col2im_equals_numpy_reference(geometry):
    x, kernel_h, kernel_w, stride, padding, dilation = geometry
    cols = random_cols(*geometry)
    ours = col2im(cols, x.shape, kernel_h, kernel_w, stride, padding, dilation)
    reference = col2im_numpy(cols, x.shape, kernel_h, kernel_w, stride, padding, dilation)
    assert ours.dtype == reference.dtype
    numpy.testing.assert_allclose(ours, reference, **tolerance(x.dtype), err_msg="col2im vs col2im_numpy")


@given(st.one_of(conv_geometries(), same_width_geometries()))
def test_col2im_plane_loop_equals_numpy_reference_bit_for_bit(geometry):
    """Off the windows path, col2im adds each pixel's terms in the reference's (kh, kw) order."""
    x, kernel_h, kernel_w, stride, padding, dilation = geometry
    if im2col_module.uses_windows(kernel_h, kernel_w, stride, dilation):
        stride = (1, 1)                                           # the plane loop's geometry instead
    args = (random_cols(x, kernel_h, kernel_w, stride, padding, dilation), x.shape, kernel_h, kernel_w, stride,
            padding, dilation)
    assert_same("col2im (planes)", col2im(*args), col2im_numpy(*args))


@pytest.mark.parametrize("dtype", [numpy.float32, numpy.float64])
def test_col2im_windows_path_agrees_with_the_reference_to_rounding(dtype):
    """3x3 at stride 2 with padding 1, where interior pixels take four terms each (two taps along
    each axis), added grouped by kernel column: the reference's sums to within a few ulps."""
    rng = numpy.random.default_rng(5)
    x_shape = (2, 3, 9, 10)
    cols = rng.standard_normal((3 * 9, 2 * 5 * 5)).astype(dtype)
    args = (cols, x_shape, 3, 3, (2, 2), (1, 1), (1, 1))
    assert im2col_module.uses_windows(3, 3, (2, 2), (1, 1))
    ours, reference = col2im(*args), col2im_numpy(*args)
    assert ours.dtype == reference.dtype == dtype
    ulp = numpy.finfo(dtype).eps
    numpy.testing.assert_allclose(ours, reference, rtol=8 * ulp, atol=8 * ulp * numpy.abs(cols).max())


@given(conv_geometries())
def test_col2im_is_the_adjoint_of_im2col(geometry):
    x, kernel_h, kernel_w, stride, padding, dilation = geometry
    x = x.astype(numpy.float64)
    cols = random_cols(x, kernel_h, kernel_w, stride, padding, dilation)
    left = numpy.sum(im2col(x, kernel_h, kernel_w, stride, padding, dilation) * cols)      # <A x, c>
    right = numpy.sum(x * col2im(cols, x.shape, kernel_h, kernel_w, stride, padding, dilation))  # <x, A^T c>
    assert left == pytest.approx(right, rel=1e-12, abs=1e-12)


def test_col2im_is_deterministic_across_runs():
    x = numpy.zeros((4, 8, 12, 12), dtype=numpy.float32)
    cols = random_cols(x, 3, 3, (1, 1), (1, 1), (1, 1))
    first = col2im(cols, x.shape, 3, 3, (1, 1), (1, 1), (1, 1)).copy()
    for serial_below in (1 << 40, 0, 1 << 40):                  # the serial twin and the parallel loop alike
        with kernel_policy(serial_below_bytes=serial_below):
            assert_same(f"col2im rerun, serial_below_bytes={serial_below}",
                        col2im(cols, x.shape, 3, 3, (1, 1), (1, 1), (1, 1)), first)


def test_col2im_rejects_cols_of_the_wrong_shape():
    with pytest.raises(ValueError, match=r"col2im: cols must have shape .*\(9, 16\).*got \(9, 15\)"):
        col2im(numpy.zeros((9, 15)), (1, 1, 4, 4), 3, 3, (1, 1), (1, 1), (1, 1))


@pytest.mark.parametrize("stride", [(1, 1), (2, 2)], ids=["planes", "windows"])
def test_col2im_writes_into_out_and_returns_it(stride):
    """The convolution hands col2im its chunk of the whole batch's dx as `out`: no copy after."""
    x = numpy.zeros((4, 3, 6, 6))
    geometry = (x, 3, 3, stride, (1, 1), (1, 1))
    cols = random_cols(*geometry)
    whole = numpy.full((6, 3, 6, 6), numpy.nan)                       # the dx of a bigger batch
    returned = col2im(cols, x.shape, 3, 3, stride, (1, 1), (1, 1), out=whole[1:5])
    assert returned.shape == x.shape and numpy.shares_memory(returned, whole)    # no new array
    numpy.testing.assert_allclose(whole[1:5], col2im_numpy(cols, x.shape, 3, 3, stride, (1, 1), (1, 1)),
                                  rtol=1e-12, atol=1e-12)
    assert numpy.isnan(whole[0]).all() and numpy.isnan(whole[5]).all()   # the other images untouched


def test_col2im_refuses_an_out_of_the_wrong_shape_dtype_or_layout():
    x = numpy.zeros((2, 3, 6, 6))
    cols = random_cols(x, 3, 3, (1, 1), (1, 1), (1, 1))
    for bad in [numpy.empty((2, 3, 6, 5)), numpy.empty((2, 3, 6, 6), numpy.float32),
                numpy.empty((2, 3, 6, 12))[..., ::2]]:
        with pytest.raises(ValueError, match="out must be a C-contiguous float64 array of shape"):
            col2im(cols, x.shape, 3, 3, (1, 1), (1, 1), (1, 1), out=bad)


def test_col2im_dispatcher_fills_out_on_the_numpy_fallback_too():
    from minigrad.ops.im2col import col2im as dispatch_col2im

    x = numpy.zeros((2, 2, 5, 5), numpy.float16)                        # float16: the NumPy reference
    cols = random_cols(x.astype(numpy.float64), 3, 3, (1, 1), (1, 1), (1, 1)).astype(numpy.float16)
    out = numpy.full(x.shape, numpy.nan, numpy.float16)
    assert dispatch_col2im(cols, x.shape, 3, 3, (1, 1), (1, 1), (1, 1), out=out) is out
    numpy.testing.assert_allclose(out, col2im_numpy(cols, x.shape, 3, 3, (1, 1), (1, 1), (1, 1)))


@pytest.mark.parametrize("kernel, stride, padding", [(3, 2, 1), (3, 2, 0), (4, 3, 2), (5, 2, 2)])
def test_col2im_windows_path_parallel_loop_equals_serial_loop_bit_for_bit(kernel, stride, padding):
    """The strided windows path on its parallel loop (one plane per iteration, a buffer per thread) and
    on its serial twin: the same sums in the same order, so the same dx bit for bit."""
    x = numpy.random.default_rng(12).standard_normal((3, 5, 11, 12)).astype(numpy.float32)
    geometry = (x, kernel, kernel, (stride, stride), (padding, padding), (1, 1))
    args = (random_cols(*geometry), x.shape, *geometry[1:])
    with kernel_policy(serial_below_bytes=1 << 40, constant_sizes_from_bytes=None), loops_taken() as serial:
        serial_dx = col2im(*args).copy()
    with kernel_policy(serial_below_bytes=0, constant_sizes_from_bytes=None), loops_taken() as parallel:
        assert_same("col2im, windows, parallel", col2im(*args), serial_dx)
    assert serial == [("serial", "_col2im_windows_serial")] and parallel == [("parallel", "_col2im_windows")]
    numpy.testing.assert_allclose(serial_dx, col2im_numpy(*args), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("geometry, loops", [
    ((3, 3, (1, 1), (1, 1), (1, 1)), ("_col2im_planes_serial", "_col2im_planes")),
    ((3, 3, (2, 2), (1, 1), (1, 1)), ("_col2im_windows_serial", "_col2im_windows")),
])
def test_col2im_serial_below_bytes_chooses_between_the_serial_twin_and_the_parallel_loop(geometry, loops):
    """numba_cpu.configure(serial_below_bytes=...) against cols' size: under it the serial twin, from it
    the parallel loop."""
    x = numpy.zeros((2, 3, 9, 10))
    cols = random_cols(x, *geometry)
    for serial_below, loop in [(cols.nbytes + 1, ("serial", loops[0])), (cols.nbytes, ("parallel", loops[1]))]:
        with kernel_policy(serial_below_bytes=serial_below), loops_taken() as taken:
            numpy.testing.assert_allclose(col2im(cols, x.shape, *geometry), col2im_numpy(cols, x.shape, *geometry),
                                          rtol=1e-12, atol=1e-12)
        assert taken == [loop], f"serial_below_bytes={serial_below}, cols of {cols.nbytes} bytes"


@given(st.one_of(conv_geometries(), same_width_geometries()))
def test_col2im_parallel_loops_equal_the_serial_twins_bit_for_bit(geometry):
    x, kernel_h, kernel_w, stride, padding, dilation = geometry
    args = (random_cols(*geometry), x.shape, kernel_h, kernel_w, stride, padding, dilation)
    with kernel_policy(serial_below_bytes=1 << 40, constant_sizes_from_bytes=None), loops_taken() as serial:
        serial_dx = col2im(*args).copy()
    with kernel_policy(serial_below_bytes=0, constant_sizes_from_bytes=None), loops_taken() as parallel:
        assert_same("col2im, parallel loop", col2im(*args), serial_dx)
    assert [kind for kind, _ in serial] == ["serial"] and [kind for kind, _ in parallel] == ["parallel"]


@pytest.mark.parametrize("kernel, stride, padding, size", [(3, 2, 1, 8), (3, 2, 0, 8), (3, 3, 0, 7), (2, 2, 0, 5),
                                                         (2, 3, 0, 7), (1, 2, 0, 5)])
def test_col2im_strided_paths_fill_every_entry_of_a_dirty_buffer(monkeypatch, kernel, stride, padding, size):
    """Strided col2im gets dx uninitialised from the pool: every pixel must be written, including pixels
    that no tap reads. Kernel 3 at stride 3 on 7 pixels, kernel 2 at stride 2 on 5: the last row is read
    by no window at all (its dx must still be 0). Kernel 2 at stride 3 and 1 at stride 2 take the plane
    loop (a kernel smaller than the stride: `uses_windows` is False)."""
    assert col2im_module.workspace is im2col_module.workspace
    monkeypatch.setattr(col2im_module.workspace, "empty", lambda shape, dtype: numpy.full(shape, numpy.nan, dtype))
    x = numpy.zeros((2, 3, size, size + 1))
    geometry = (x, kernel, kernel, (stride, stride), (padding, padding), (1, 1))
    args = (random_cols(*geometry), x.shape, *geometry[1:])
    for serial_below in (1 << 40, 0):                                 # the serial twin, then the parallel loop
        with kernel_policy(serial_below_bytes=serial_below):
            numpy.testing.assert_allclose(col2im(*args), col2im_numpy(*args), rtol=1e-12, atol=1e-12,
                                          err_msg=f"serial_below_bytes={serial_below}")


def test_col2im_overwrites_a_reused_pool_buffer_completely():
    """dx (1 MiB) comes from the buffer pool, where the previous dx left large values behind."""
    x = numpy.zeros((64, 4, 32, 32), dtype=numpy.float32)
    cols = random_cols(x, 3, 3, (2, 2), (1, 1), (1, 1))
    with kernel_policy(pool_min_bytes=tuning.BUFFER_POOL_MIN_BYTES, pool_max_bytes=tuning.BUFFER_POOL_MAX_BYTES):
        assert x.nbytes >= tuning.BUFFER_POOL_MIN_BYTES
        col2im_module.workspace.clear()                                  # no other idle buffer that fits
        garbage = col2im(cols * 1e6, x.shape, 3, 3, (2, 2), (1, 1), (1, 1))
        address = garbage.__array_interface__["data"][0]
        del garbage
        ours = col2im(cols, x.shape, 3, 3, (2, 2), (1, 1), (1, 1))
        assert ours.__array_interface__["data"][0] == address            # the same buffer, reused
    numpy.testing.assert_allclose(ours, col2im_numpy(cols, x.shape, 3, 3, (2, 2), (1, 1), (1, 1)), rtol=1e-5, atol=1e-5)
