"""kernels/numba_cpu/im2col.py against its NumPy reference, minigrad.ops.im2col.im2col_numpy.

im2col is a copy, so every loop (rows, flat rows, windows, and each one's serial twin) must
agree with NumPy bit for bit. Shapes, strides, paddings and dilations are drawn by
hypothesis (small, to stay fast). The loops compiled for constant sizes are tested in
test_kernels_numba_constant_sizes.py.
"""
import numpy
import pytest
from hypothesis import given
from hypothesis import strategies as st

pytest.importorskip("numba")

from kernels_common import (assert_same, conv_geometries, kernel_policy, loops_taken,  # noqa: E402
                            same_width_geometries)
from minigrad.kernels import numba_cpu                                                 # noqa: E402
from minigrad.kernels.geometry import output_size                                      # noqa: E402
from minigrad.kernels.numba_cpu import im2col as im2col_module                        # noqa: E402
from minigrad.ops.im2col import im2col_numpy                                           # noqa: E402

im2col = numba_cpu.load("im2col")


@given(conv_geometries())
def test_im2col_equals_numpy_reference_bit_for_bit(geometry):
    assert_same("im2col", im2col(*geometry), im2col_numpy(*geometry))


@given(same_width_geometries())
def test_im2col_flat_fast_path_equals_numpy_reference_bit_for_bit(geometry):
    x, kernel_h, kernel_w, stride, padding, dilation = geometry
    assert output_size(x.shape[3], kernel_w, 1, padding[1], dilation[1]) == x.shape[3]
    assert_same("im2col (flat path)", im2col(*geometry), im2col_numpy(*geometry))


@pytest.mark.parametrize("size", [1, 2, 8, 32])
def test_im2col_3x3_padding_1_equals_numpy_reference(size):
    """ResNet's layer: every padding row and column of the flat path, on a square image."""
    x = numpy.random.default_rng(size).standard_normal((2, 3, size, size)).astype(numpy.float32)
    geometry = (x, 3, 3, (1, 1), (1, 1), (1, 1))
    assert_same("im2col 3x3 pad 1", im2col(*geometry), im2col_numpy(*geometry))


def test_im2col_layout_rows_are_channel_tap_and_columns_are_image_position():
    x = numpy.arange(2 * 3 * 4 * 5, dtype=numpy.float64).reshape(2, 3, 4, 5)
    cols = im2col(x, 2, 3, (1, 2), (1, 0), (1, 1))
    out_h, out_w = 4 + 2 - 1, (5 - 3) // 2 + 1
    for c, kh, kw, n, oh, ow in numpy.ndindex(3, 2, 3, 2, out_h, out_w):
        h, w = oh * 1 - 1 + kh, ow * 2 + kw
        expected = x[n, c, h, w] if 0 <= h < 4 else 0.0
        got = cols[(c * 2 + kh) * 3 + kw, (n * out_h + oh) * out_w + ow]
        assert got == expected, f"cols at (c={c}, kh={kh}, kw={kw}, n={n}, oh={oh}, ow={ow})"


def test_im2col_rejects_kernel_larger_than_padded_input():
    with pytest.raises(ValueError, match="im2col.*larger than the padded input 3x3"):
        im2col(numpy.zeros((1, 1, 3, 3)), 5, 1, (1, 1), (0, 0), (1, 1))


@pytest.mark.parametrize("kernel, stride, padding", [(3, 2, 1), (3, 2, 0), (4, 3, 2), (5, 2, 2)])
def test_im2col_windows_path_parallel_loop_equals_serial_loop_and_reference(kernel, stride, padding):
    """The strided windows path on its parallel loop (one plane per iteration, a buffer per thread) and
    on its serial twin: the same cols as NumPy, bit for bit; the recorded loops show each one ran."""
    x = numpy.random.default_rng(12).standard_normal((3, 5, 11, 12)).astype(numpy.float32)
    geometry = (x, kernel, kernel, (stride, stride), (padding, padding), (1, 1))
    assert im2col_module.uses_windows(kernel, kernel, (stride, stride), (1, 1))
    reference = im2col_numpy(*geometry)
    for serial_below, loop in [(1 << 40, ("serial", "_im2col_windows_serial")),
                               (0, ("parallel", "_im2col_windows"))]:
        with kernel_policy(serial_below_bytes=serial_below, constant_sizes_from_bytes=None), loops_taken() as taken:
            assert_same(f"im2col, windows, {loop[0]}", im2col(*geometry), reference)
        assert taken == [loop]


@pytest.mark.parametrize("geometry, loops", [
    ((3, 3, (1, 1), (1, 1), (1, 1)), ("_im2col_rows_flat_serial", "_im2col_rows_flat")),   # flat rows
    ((3, 2, (1, 2), (0, 1), (2, 1)), ("_im2col_rows_serial", "_im2col_rows")),               # generic rows
    ((3, 3, (2, 2), (1, 1), (1, 1)), ("_im2col_windows_serial", "_im2col_windows")),         # windows
])
def test_im2col_serial_below_bytes_chooses_between_the_serial_twin_and_the_parallel_loop(geometry, loops):
    """numba_cpu.configure(serial_below_bytes=...): cols under it run the serial twin, cols of at least
    that many bytes the parallel loop (at exactly the limit: parallel)."""
    x = numpy.random.default_rng(6).standard_normal((2, 3, 9, 10))
    cols_bytes = im2col_numpy(x, *geometry).nbytes
    for serial_below, loop in [(cols_bytes + 1, ("serial", loops[0])), (cols_bytes, ("parallel", loops[1]))]:
        with kernel_policy(serial_below_bytes=serial_below), loops_taken() as taken:
            assert_same(loop[1], im2col(x, *geometry), im2col_numpy(x, *geometry))
        assert taken == [loop], f"serial_below_bytes={serial_below}, cols of {cols_bytes} bytes"


@given(st.one_of(conv_geometries(), same_width_geometries()))
def test_im2col_parallel_loops_equal_the_serial_twins_bit_for_bit(geometry):
    """Small arrays take the serial twins under the tuned policy; serial_below_bytes=0 forces the parallel loops."""
    with kernel_policy(serial_below_bytes=1 << 40), loops_taken() as serial:
        serial_cols = im2col(*geometry).copy()
    with kernel_policy(serial_below_bytes=0), loops_taken() as parallel:
        assert_same("im2col, parallel loop", im2col(*geometry), serial_cols)
    assert [kind for kind, _ in serial] == ["serial"] and [kind for kind, _ in parallel] == ["parallel"]


@pytest.mark.parametrize("kernel, stride, padding, size", [(3, 2, 1, 8), (3, 2, 0, 8), (3, 3, 0, 7), (2, 2, 0, 5),
                                                         (2, 3, 0, 7), (1, 2, 0, 5)])
def test_im2col_strided_paths_fill_every_entry_of_a_dirty_buffer(monkeypatch, kernel, stride, padding, size):
    """Strided im2col gets cols uninitialised from the pool: every entry must be written. Kernel 3 at
    stride 2 without padding on 8 pixels: the last row is in the windows buffer's row phase but read
    by no tap. Kernel 2 at stride 3 and 1 at stride 2 take the plain gather loops (a kernel smaller
    than the stride: `uses_windows` is False)."""
    assert im2col_module.uses_windows(kernel, kernel, (stride, stride), (1, 1)) == (kernel >= stride)
    monkeypatch.setattr(im2col_module.workspace, "empty", lambda shape, dtype: numpy.full(shape, numpy.nan, dtype))
    x = numpy.random.default_rng(3).standard_normal((2, 3, size, size + 1))
    geometry = (x, kernel, kernel, (stride, stride), (padding, padding), (1, 1))
    for serial_below in (1 << 40, 0):                                 # the serial twin, then the parallel loop
        with kernel_policy(serial_below_bytes=serial_below):
            assert_same(f"im2col, strided, serial_below_bytes={serial_below}", im2col(*geometry),
                        im2col_numpy(*geometry))


def test_im2col_called_from_two_python_threads_gives_the_reference_result():
    """Serial twins run side by side without the GIL; parallel loops take turns (launch_lock)."""
    import threading

    x = numpy.random.default_rng(3).standard_normal((4, 3, 9, 9)).astype(numpy.float32)
    expected = im2col_numpy(x, 3, 3, (1, 1), (1, 1), (1, 1))
    results, errors = [], []

    def work():
        try:
            for _ in range(20):
                results.append(numpy.array_equal(im2col(x, 3, 3, (1, 1), (1, 1), (1, 1)), expected))
        except Exception as error:  # noqa: BLE001  (reported below)
            errors.append(error)

    for serial_below in (1 << 40, 0):
        results.clear()
        with kernel_policy(serial_below_bytes=serial_below):
            threads = [threading.Thread(target=work) for _ in range(3)]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
        assert not errors and len(results) == 60 and all(results), f"serial_below_bytes={serial_below}: {errors}"
