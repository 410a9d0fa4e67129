"""kernels/numba_cpu: each Numba kernel equals its NumPy reference in minigrad/ops.

im2col and max-pool forward are copies/maxima, so they must agree bit for bit;
col2im and max-pool backward add floats, compared at float rounding. Shapes,
strides, paddings and dilations are drawn by hypothesis (small, to stay fast).
"""
import subprocess
import sys

import numpy
import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

pytest.importorskip("numba")

from kernels import numba_cpu                                       # noqa: E402
from minigrad.ops.im2col import col2im_numpy, conv_output_size, im2col_numpy  # noqa: E402
from minigrad.ops.pool import max_pool2d_backward_numpy, max_pool2d_forward_numpy  # noqa: E402

im2col = numba_cpu.load("im2col")
col2im = numba_cpu.load("col2im")
col2im_gather = numba_cpu.load("col2im_gather")
max_pool_forward = numba_cpu.load("max_pool2d_forward")
max_pool_backward = numba_cpu.load("max_pool2d_backward")

pairs = st.tuples


@st.composite
def conv_geometries(draw):
    """(x, kernel_h, kernel_w, stride, padding, dilation) with at least one output position."""
    n, c = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    height, width = draw(st.integers(1, 9)), draw(st.integers(1, 9))
    kernel_h, kernel_w = draw(st.integers(1, 4)), draw(st.integers(1, 4))
    stride = draw(pairs(st.integers(1, 3), st.integers(1, 3)))
    padding = draw(pairs(st.integers(0, 2), st.integers(0, 2)))
    dilation = draw(pairs(st.integers(1, 3), st.integers(1, 3)))
    assume(conv_output_size(height, kernel_h, stride[0], padding[0], dilation[0]) >= 1)
    assume(conv_output_size(width, kernel_w, stride[1], padding[1], dilation[1]) >= 1)
    dtype = draw(st.sampled_from([numpy.float32, numpy.float64]))
    seed = draw(st.integers(0, 2**16))
    x = numpy.random.default_rng(seed).standard_normal((n, c, height, width)).astype(dtype)
    return x, kernel_h, kernel_w, stride, padding, dilation


@st.composite
def same_width_geometries(draw):
    """Stride 1 and output as wide as the input: the geometries of im2col's flat fast path."""
    n, c = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    height, width = draw(st.integers(1, 9)), draw(st.integers(1, 9))
    kernel_h, kernel_w = draw(st.integers(1, 4)), draw(st.sampled_from([1, 3, 5]))
    dilation = (draw(st.integers(1, 3)), draw(st.integers(1, 2)))
    padding = (draw(st.integers(0, 2)), dilation[1] * (kernel_w - 1) // 2)    # out_w == width
    assume(conv_output_size(height, kernel_h, 1, padding[0], dilation[0]) >= 1)
    dtype = draw(st.sampled_from([numpy.float32, numpy.float64]))
    x = numpy.random.default_rng(draw(st.integers(0, 2**16))).standard_normal((n, c, height, width)).astype(dtype)
    return x, kernel_h, kernel_w, (1, 1), padding, dilation


@st.composite
def pool_geometries(draw):
    """(x, kernel_h, kernel_w, stride, padding) valid for max_pool2d (padding <= kernel // 2)."""
    n, c = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    height, width = draw(st.integers(1, 9)), draw(st.integers(1, 9))
    kernel_h, kernel_w = draw(st.integers(1, min(4, height))), draw(st.integers(1, min(4, width)))
    stride = draw(pairs(st.integers(1, 3), st.integers(1, 3)))
    padding = draw(pairs(st.integers(0, kernel_h // 2), st.integers(0, kernel_w // 2)))
    dtype = draw(st.sampled_from([numpy.float32, numpy.float64]))
    rng = numpy.random.default_rng(draw(st.integers(0, 2**16)))
    if draw(st.booleans()):   # small integers: many ties inside a window
        x = rng.integers(-2, 3, size=(n, c, height, width)).astype(dtype)
    else:
        x = rng.standard_normal((n, c, height, width)).astype(dtype)
    return x, kernel_h, kernel_w, stride, padding


def _random_cols(x, kernel_h, kernel_w, stride, padding, dilation, seed=1):
    shape = im2col_numpy(x, kernel_h, kernel_w, stride, padding, dilation).shape
    return numpy.random.default_rng(seed).standard_normal(shape).astype(x.dtype)


def _assert_same(name, ours, reference):
    assert ours.shape == reference.shape, f"{name}: shape {ours.shape}, reference {reference.shape}"
    assert ours.dtype == reference.dtype, f"{name}: dtype {ours.dtype}, reference {reference.dtype}"
    if not numpy.array_equal(ours, reference):
        where = numpy.argwhere(ours != reference)[0]
        raise AssertionError(f"{name}: differs at index {tuple(where)}: "
                             f"{ours[tuple(where)]!r} vs reference {reference[tuple(where)]!r}")


def _tolerance(dtype):
    return dict(rtol=1e-5, atol=1e-5) if dtype == numpy.float32 else dict(rtol=1e-12, atol=1e-12)


# ------------------------------------------------------------------ im2col
@given(conv_geometries())
def test_im2col_equals_numpy_reference_bit_for_bit(geometry):
    _assert_same("im2col", im2col(*geometry), im2col_numpy(*geometry))


@given(same_width_geometries())
def test_im2col_flat_fast_path_equals_numpy_reference_bit_for_bit(geometry):
    x, kernel_h, kernel_w, stride, padding, dilation = geometry
    assert conv_output_size(x.shape[3], kernel_w, 1, padding[1], dilation[1]) == x.shape[3]
    _assert_same("im2col (flat path)", im2col(*geometry), im2col_numpy(*geometry))


@pytest.mark.parametrize("size", [1, 2, 8, 32])
def test_im2col_3x3_padding_1_equals_numpy_reference(size):
    """ResNet's layer: every padding row and column of the flat path, on a square image."""
    x = numpy.random.default_rng(size).standard_normal((2, 3, size, size)).astype(numpy.float32)
    geometry = (x, 3, 3, (1, 1), (1, 1), (1, 1))
    _assert_same("im2col 3x3 pad 1", im2col(*geometry), im2col_numpy(*geometry))


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
def test_windows_path_parallel_loop_equals_serial_loop_and_reference(kernel, stride, padding):
    """The strided windows path, forced onto its parallel loop (one plane per iteration, a buffer per
    thread): the same cols as the serial loop and NumPy, bit for bit, and the same dx as the serial loop."""
    from unittest import mock

    import kernels.numba_cpu.col2im as col2im_module
    import kernels.numba_cpu.im2col as im2col_module

    x = numpy.random.default_rng(12).standard_normal((3, 5, 11, 12)).astype(numpy.float32)
    geometry = (x, kernel, kernel, (stride, stride), (padding, padding), (1, 1))
    assert im2col_module.uses_windows(kernel, kernel, (stride, stride), (1, 1))
    cols = _random_cols(*geometry)
    serial_cols, serial_dx = im2col(*geometry).copy(), col2im(cols, x.shape, *geometry[1:]).copy()
    with mock.patch.object(numba_cpu, "SERIAL_BELOW_BYTES", 0), \
            mock.patch.object(im2col_module, "_im2col_windows", wraps=im2col_module._im2col_windows) as forward, \
            mock.patch.object(col2im_module, "_col2im_windows", wraps=col2im_module._col2im_windows) as backward:
        _assert_same("im2col, windows, parallel", im2col(*geometry), serial_cols)
        _assert_same("col2im, windows, parallel", col2im(cols, x.shape, *geometry[1:]), serial_dx)
    assert forward.call_count == 1 and backward.call_count == 1      # the parallel loops did run
    _assert_same("im2col, windows, vs NumPy", serial_cols, im2col_numpy(*geometry))


@given(st.one_of(conv_geometries(), same_width_geometries()))
def test_parallel_and_serial_loops_give_the_same_im2col_and_col2im(geometry):
    """Small arrays take the serial twins (SERIAL_BELOW_BYTES); force the parallel loops and compare."""
    from unittest import mock

    x, kernel_h, kernel_w, stride, padding, dilation = geometry
    cols = _random_cols(*geometry)
    serial_cols = im2col(*geometry).copy()
    serial_dx = col2im(cols, x.shape, kernel_h, kernel_w, stride, padding, dilation).copy()
    with mock.patch.object(numba_cpu, "SERIAL_BELOW_BYTES", 0):        # read by run_loop at each call
        _assert_same("im2col, parallel loop", im2col(*geometry), serial_cols)
        _assert_same("col2im, parallel loop", col2im(cols, x.shape, kernel_h, kernel_w, stride, padding, dilation),
                     serial_dx)


@pytest.mark.parametrize("kernel, stride, padding, size", [(3, 2, 1, 8), (3, 2, 0, 8), (3, 3, 0, 7), (2, 2, 0, 5),
                                                         (2, 3, 0, 7), (1, 2, 0, 5)])
def test_strided_paths_fill_every_entry_of_dirty_buffers(monkeypatch, kernel, stride, padding, size):
    """Strided im2col/col2im get their buffers uninitialised from the pool: every entry of cols and
    of dx must be written, including input pixels that no tap reads. Kernel 3 at stride 2 without
    padding on 8 pixels: the last row is in the windows buffer's row phase but read by no tap.
    Kernel 3 at stride 3 on 7 pixels, kernel 2 at stride 2 on 5: the last row is read by no window
    at all (its dx must still be 0). Kernel 2 at stride 3 and 1 at stride 2 take the plain gather
    loops (a kernel smaller than the stride: `uses_windows` is False)."""
    import kernels.numba_cpu.col2im as col2im_module
    import kernels.numba_cpu.im2col as im2col_module

    assert im2col_module.uses_windows(kernel, kernel, (stride, stride), (1, 1)) == (kernel >= stride)

    def dirty(shape, dtype):
        return numpy.full(shape, numpy.nan, dtype)

    monkeypatch.setattr(im2col_module.workspace, "empty", dirty)
    assert col2im_module.workspace is im2col_module.workspace
    rng = numpy.random.default_rng(3)
    x = rng.standard_normal((2, 3, size, size + 1))
    geometry = (x, kernel, kernel, (stride, stride), (padding, padding), (1, 1))
    _assert_same("im2col, strided", im2col(*geometry), im2col_numpy(*geometry))
    cols = _random_cols(*geometry)
    ours = col2im(cols, x.shape, kernel, kernel, (stride, stride), (padding, padding), (1, 1))
    numpy.testing.assert_allclose(ours, col2im_numpy(cols, x.shape, kernel, kernel, (stride, stride),
                                                     (padding, padding), (1, 1)), rtol=1e-12, atol=1e-12)


# ------------------------------------------------------------------ loops compiled for constant sizes
@pytest.mark.parametrize("kernel, stride, padding, size, dtype", [
    ((3, 3), (2, 2), (1, 1), (16, 16), numpy.float32),   # ResNet's downsampling convolution
    ((3, 3), (2, 2), (1, 1), (15, 9), numpy.float64),    # odd sizes: the last column/row is padding
    ((3, 3), (2, 2), (0, 0), (8, 8), numpy.float64),     # the last row is read by no tap
    ((5, 5), (2, 2), (2, 2), (11, 12), numpy.float64),
    ((4, 3), (3, 2), (2, 1), (12, 10), numpy.float64),
    ((3, 3), (2, 1), (1, 1), (9, 7), numpy.float64),     # strided along one axis only
    ((3, 3), (3, 3), (0, 0), (7, 7), numpy.float64),     # the last row is read by no window at all
])
def test_constant_size_loops_equal_the_generic_windows_loops_bit_for_bit(kernel, stride, padding, size, dtype):
    """The im2col and col2im loops compiled with one geometry's sizes as constants, writing into
    NaN-filled arrays: every entry written, the same cols as NumPy and the same dx as the generic
    windows loop (the same sums in the same order), bit for bit."""
    import kernels.numba_cpu.col2im as col2im_module
    import kernels.numba_cpu.im2col as im2col_module

    x = numpy.random.default_rng(7).standard_normal((2, 3) + size).astype(dtype)
    geometry = (x, kernel[0], kernel[1], stride, padding, (1, 1))
    assert im2col_module.uses_windows(kernel[0], kernel[1], stride, (1, 1))
    reference = im2col_numpy(*geometry)
    out_h, out_w = (conv_output_size(size[axis], kernel[axis], stride[axis], padding[axis], 1) for axis in (0, 1))
    cols = numpy.full(reference.shape, numpy.nan, dtype)
    im2col_module.constant_size_loop(kernel[0], kernel[1], stride, padding, out_w)(x, cols, out_h)
    _assert_same("im2col, constant sizes", cols, reference)

    dcols = _random_cols(*geometry)
    dx, generic_dx = numpy.full(x.shape, numpy.nan, dtype), numpy.full(x.shape, numpy.nan, dtype)
    col2im_module.constant_size_loop(kernel[0], kernel[1], stride, padding, out_w)(dcols, dx, out_h)
    col2im_module._col2im_windows_serial(dcols, generic_dx, kernel[0], kernel[1], *stride, *padding, out_h, out_w)
    _assert_same("col2im, constant sizes", dx, generic_dx)


def test_im2col_and_col2im_take_the_constant_size_loops_for_chunks_and_keep_results(monkeypatch):
    """Strided calls with at least CONSTANT_SIZES_FROM_BYTES of cols (set to 0 here) compile and use
    the loop for their sizes; the results are those of the NumPy references."""
    import kernels.numba_cpu.col2im as col2im_module
    import kernels.numba_cpu.im2col as im2col_module

    monkeypatch.setattr(im2col_module, "CONSTANT_SIZES_FROM_BYTES", 0)     # read by both, in im2col.py
    x = numpy.random.default_rng(8).standard_normal((2, 3, 10, 10))
    geometry = (x, 3, 3, (2, 2), (1, 1), (1, 1))
    sizes = (3, 3, 2, 2, 1, 1, 5)
    monkeypatch.setattr(im2col_module, "_constant_size_loops", {})
    monkeypatch.setattr(col2im_module, "_constant_size_loops", {})
    _assert_same("im2col", im2col(*geometry), im2col_numpy(*geometry))
    cols = _random_cols(*geometry)
    numpy.testing.assert_allclose(col2im(cols, x.shape, *geometry[1:]), col2im_numpy(cols, x.shape, *geometry[1:]),
                                  rtol=1e-12, atol=1e-12)
    assert list(im2col_module._constant_size_loops) == [sizes]
    assert list(col2im_module._constant_size_loops) == [sizes]


_CACHED_LOOPS_SCRIPT = """
import sys
import numpy
from kernels.numba_cpu import col2im as col2im_module, im2col as im2col_module
from minigrad.ops.im2col import col2im_numpy, im2col_numpy
for width in map(int, sys.argv[1:]):
    x = numpy.random.default_rng(width).standard_normal((2, 3, 6, width))
    geometry = (x, 3, 3, (2, 2), (1, 1), (1, 1))
    out_h, out_w = 3, (width - 1) // 2 + 1
    cols = numpy.full(im2col_numpy(*geometry).shape, numpy.nan)
    im2col_module.constant_size_loop(3, 3, (2, 2), (1, 1), out_w)(x, cols, out_h)
    assert numpy.array_equal(cols, im2col_numpy(*geometry)), ("im2col", width)
    dx = numpy.full(x.shape, numpy.nan)
    col2im_module.constant_size_loop(3, 3, (2, 2), (1, 1), out_w)(cols, dx, out_h)
    assert numpy.allclose(dx, col2im_numpy(cols, x.shape, *geometry[1:])), ("col2im", width)
    loops = (im2col_module.constant_size_loop(3, 3, (2, 2), (1, 1), out_w),
             col2im_module.constant_size_loop(3, 3, (2, 2), (1, 1), out_w))
    print("cache hits", width, sum(sum(loop.stats.cache_hits.values()) for loop in loops))
"""


def test_constant_size_loops_from_numbas_disk_cache_keep_their_own_sizes(tmp_path):
    """Numba caches each compiled loop on disk. Loops for two widths, compiled in one order in a first
    process and loaded from the cache in the other order in a second (its cache hits say so): a cache
    keyed only by the source code would hand one width's loop to the other (wrong columns, writes out
    of bounds), which the checks against NumPy would catch."""
    import os

    env = dict(os.environ, NUMBA_CACHE_DIR=str(tmp_path), NUMBA_ENABLE_CUDASIM="0")
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    hits = []
    for widths in (["8", "11"], ["11", "8"]):
        result = subprocess.run([sys.executable, "-c", _CACHED_LOOPS_SCRIPT, *widths], env=env, cwd=root,
                                capture_output=True, text=True, timeout=300)
        assert result.returncode == 0, result.stderr
        hits.append([line for line in result.stdout.splitlines() if line.startswith("cache hits")])
    assert hits[0] == ["cache hits 8 0", "cache hits 11 0"]           # compiled in the first process
    assert hits[1] == ["cache hits 11 2", "cache hits 8 2"]           # both loops loaded in the second


# ------------------------------------------------------------------ col2im
@given(conv_geometries())
def test_col2im_equals_numpy_reference(geometry):
    x, kernel_h, kernel_w, stride, padding, dilation = geometry
    cols = _random_cols(*geometry)
    ours = col2im(cols, x.shape, kernel_h, kernel_w, stride, padding, dilation)
    reference = col2im_numpy(cols, x.shape, kernel_h, kernel_w, stride, padding, dilation)
    assert ours.dtype == reference.dtype
    numpy.testing.assert_allclose(ours, reference, **_tolerance(x.dtype), err_msg="col2im vs col2im_numpy")


@given(conv_geometries())
def test_col2im_gather_equals_col2im_bit_for_bit(geometry):
    """Both add a pixel's terms tap by tap in (kh, kw) order, so they agree bit for bit. The
    strided windows path adds them grouped by kw (each window, then the windows onto the pixel):
    the same terms in another order, equal to rounding (checked against the reference above and
    in test_col2im_windows_path_agrees_with_gather_to_rounding)."""
    import kernels.numba_cpu.im2col as im2col_module

    x, kernel_h, kernel_w, stride, padding, dilation = geometry
    cols = _random_cols(*geometry)
    args = (cols, x.shape, kernel_h, kernel_w, stride, padding, dilation)
    if im2col_module.uses_windows(kernel_h, kernel_w, stride, dilation):
        numpy.testing.assert_allclose(col2im(*args), col2im_gather(*args), **_tolerance(x.dtype))
    else:
        _assert_same("col2im_gather", col2im_gather(*args), col2im(*args))


@pytest.mark.parametrize("dtype", [numpy.float32, numpy.float64])
def test_col2im_windows_path_agrees_with_gather_to_rounding(dtype):
    """3x3 at stride 2 with padding 1, where interior pixels take four terms each (two taps
    along each axis): the windows path must give the gather's sums to within a few ulps."""
    rng = numpy.random.default_rng(5)
    x_shape = (2, 3, 9, 10)
    cols = rng.standard_normal((3 * 9, 2 * 5 * 5)).astype(dtype)
    args = (cols, x_shape, 3, 3, (2, 2), (1, 1), (1, 1))
    ours, gathered = col2im(*args), col2im_gather(*args)
    assert ours.dtype == gathered.dtype == dtype
    ulp = numpy.finfo(dtype).eps
    numpy.testing.assert_allclose(ours, gathered, rtol=8 * ulp, atol=8 * ulp * numpy.abs(cols).max())


@given(conv_geometries())
def test_col2im_is_the_adjoint_of_im2col(geometry):
    x, kernel_h, kernel_w, stride, padding, dilation = geometry
    x = x.astype(numpy.float64)
    cols = _random_cols(x, kernel_h, kernel_w, stride, padding, dilation)
    left = numpy.sum(im2col(x, kernel_h, kernel_w, stride, padding, dilation) * cols)      # <A x, c>
    right = numpy.sum(x * col2im(cols, x.shape, kernel_h, kernel_w, stride, padding, dilation))  # <x, A^T c>
    assert left == pytest.approx(right, rel=1e-12, abs=1e-12)


def test_col2im_is_deterministic_across_runs():
    x = numpy.zeros((4, 8, 12, 12), dtype=numpy.float32)
    cols = _random_cols(x, 3, 3, (1, 1), (1, 1), (1, 1))
    first = col2im(cols, x.shape, 3, 3, (1, 1), (1, 1), (1, 1))
    for _ in range(3):
        _assert_same("col2im rerun", col2im(cols, x.shape, 3, 3, (1, 1), (1, 1), (1, 1)), first)


def test_col2im_rejects_cols_of_the_wrong_shape():
    with pytest.raises(ValueError, match=r"col2im: cols must have shape \(9, 16\).*got \(9, 15\)"):
        col2im(numpy.zeros((9, 15)), (1, 1, 4, 4), 3, 3, (1, 1), (1, 1), (1, 1))


@pytest.mark.parametrize("stride", [(1, 1), (2, 2)], ids=["planes", "phases"])
def test_col2im_writes_into_out_and_returns_it(stride):
    """The convolution hands col2im its chunk of the whole batch's dx as `out`: no copy after."""
    x = numpy.zeros((4, 3, 6, 6))
    geometry = (x, 3, 3, stride, (1, 1), (1, 1))
    cols = _random_cols(*geometry)
    whole = numpy.full((6, 3, 6, 6), numpy.nan)                       # the dx of a bigger batch
    returned = col2im(cols, x.shape, 3, 3, stride, (1, 1), (1, 1), out=whole[1:5])
    assert returned.shape == x.shape and numpy.shares_memory(returned, whole)    # no new array
    numpy.testing.assert_allclose(whole[1:5], col2im_numpy(cols, x.shape, 3, 3, stride, (1, 1), (1, 1)),
                                  rtol=1e-12, atol=1e-12)
    assert numpy.isnan(whole[0]).all() and numpy.isnan(whole[5]).all()   # the other images untouched


def test_col2im_refuses_an_out_of_the_wrong_shape_dtype_or_layout():
    x = numpy.zeros((2, 3, 6, 6))
    cols = _random_cols(x, 3, 3, (1, 1), (1, 1), (1, 1))
    for bad in [numpy.empty((2, 3, 6, 5)), numpy.empty((2, 3, 6, 6), numpy.float32),
                numpy.empty((2, 3, 6, 12))[..., ::2]]:
        with pytest.raises(ValueError, match="out must be a C-contiguous float64 array of shape"):
            col2im(cols, x.shape, 3, 3, (1, 1), (1, 1), (1, 1), out=bad)


def test_col2im_dispatcher_fills_out_on_the_numpy_fallback_too():
    from minigrad.ops.im2col import col2im as dispatch_col2im

    x = numpy.zeros((2, 2, 5, 5), numpy.float16)                        # float16: the NumPy reference
    cols = _random_cols(x.astype(numpy.float64), 3, 3, (1, 1), (1, 1), (1, 1)).astype(numpy.float16)
    out = numpy.full(x.shape, numpy.nan, numpy.float16)
    assert dispatch_col2im(cols, x.shape, 3, 3, (1, 1), (1, 1), (1, 1), out=out) is out
    numpy.testing.assert_allclose(out, col2im_numpy(cols, x.shape, 3, 3, (1, 1), (1, 1), (1, 1)))


# ------------------------------------------------------------------ max pool
@given(pool_geometries())
def test_max_pool_forward_equals_numpy_reference_bit_for_bit(geometry):
    y, argmax_index = max_pool_forward(*geometry)
    y_reference, argmax_reference = max_pool2d_forward_numpy(*geometry)
    _assert_same("max_pool2d y", y, y_reference)
    _assert_same("max_pool2d argmax_index", argmax_index, argmax_reference.astype(numpy.int64))


@given(pool_geometries())
def test_max_pool_backward_equals_numpy_reference(geometry):
    x, kernel_h, kernel_w, stride, padding = geometry
    y, argmax_index = max_pool_forward(*geometry)
    dy = numpy.random.default_rng(2).standard_normal(y.shape).astype(x.dtype)
    ours = max_pool_backward(dy, argmax_index, x.shape, kernel_h, kernel_w, stride, padding)
    reference = max_pool2d_backward_numpy(dy, argmax_index, x.shape, kernel_h, kernel_w, stride, padding)
    assert ours.dtype == reference.dtype
    numpy.testing.assert_allclose(ours, reference, **_tolerance(x.dtype), err_msg="max_pool2d backward")


def test_max_pool_fills_every_entry_of_dirty_pool_buffers(monkeypatch):
    """y, argmax_index and dx come uninitialised from the pool; pixels that win no window
    (kernel 1 at stride 2 reads one pixel in four) must still get a zero gradient."""
    import kernels.numba_cpu.maxpool as maxpool_module

    def dirty(shape, dtype):
        return numpy.full(shape, -7 if numpy.dtype(dtype).kind == "i" else numpy.nan, dtype)

    monkeypatch.setattr(maxpool_module.workspace, "empty", dirty)
    x = numpy.random.default_rng(4).standard_normal((2, 3, 7, 6))
    for geometry in [(x, 3, 3, (2, 2), (1, 1)), (x, 1, 1, (2, 2), (0, 0))]:
        y, argmax_index = max_pool_forward(*geometry)
        y_reference, argmax_reference = max_pool2d_forward_numpy(*geometry)
        _assert_same("max_pool2d y", y, y_reference)
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


# ------------------------------------------------------------------ workspace (buffer pool)
def test_workspace_never_hands_out_a_buffer_that_a_view_still_uses():
    from kernels.numba_cpu import workspace

    first = workspace.empty((512, 1024), numpy.float32)        # 2 MiB: pooled
    view = first.reshape(1024, 512).T[3:]                       # a view outlives the array itself
    first_address = first.__array_interface__["data"][0]
    del first
    second = workspace.empty((512, 1024), numpy.float32)
    assert second.__array_interface__["data"][0] != first_address
    del view, second


def test_workspace_reuses_a_buffer_once_every_view_is_gone():
    from kernels.numba_cpu import workspace

    first = workspace.empty((512, 1024), numpy.float32)
    address = first.__array_interface__["data"][0]
    del first
    assert workspace.empty((512, 1024), numpy.float32).__array_interface__["data"][0] == address


def test_workspace_takes_the_smallest_idle_buffer_that_fits():
    from kernels.numba_cpu import workspace

    workspace.clear()                                              # only the buffers made below are idle
    small, large = workspace.empty((3 << 18,), numpy.uint8), workspace.empty((11 << 18,), numpy.uint8)
    small_address, large_address = (a.__array_interface__["data"][0] for a in (small, large))
    del small, large
    assert workspace._sizes == sorted(workspace._sizes) == [s[0].nbytes for s in workspace._slots]
    fits_small = workspace.empty((5 << 17,), numpy.uint8)          # 1.25 MiB: the 1.5 MiB buffer
    only_large = workspace.empty((7 << 18,), numpy.uint8)          # 1.75 MiB: too big for it
    assert fits_small.__array_interface__["data"][0] == small_address
    assert only_large.__array_interface__["data"][0] == large_address


def test_col2im_overwrites_a_reused_workspace_buffer_completely():
    x = numpy.zeros((64, 4, 32, 32), dtype=numpy.float32)       # dx is 1 MiB: from the workspace
    cols = _random_cols(x, 3, 3, (2, 2), (1, 1), (1, 1))
    garbage = col2im(cols * 1e6, x.shape, 3, 3, (2, 2), (1, 1), (1, 1))   # leaves large values behind
    del garbage
    ours = col2im(cols, x.shape, 3, 3, (2, 2), (1, 1), (1, 1))
    numpy.testing.assert_allclose(ours, col2im_numpy(cols, x.shape, 3, 3, (2, 2), (1, 1), (1, 1)), rtol=1e-5, atol=1e-5)


# ------------------------------------------------------------------ loading
def test_load_returns_none_when_numba_is_absent(monkeypatch):
    monkeypatch.setattr(numba_cpu, "numba_available", lambda: False)
    monkeypatch.setattr(numba_cpu, "_functions", {})
    assert numba_cpu.load("im2col") is None


def test_register_into_registers_nothing_when_numba_is_absent(monkeypatch):
    monkeypatch.setattr(numba_cpu, "numba_available", lambda: False)
    registered = []
    numba_cpu.register_into(lambda *args: registered.append(args), {"im2col": im2col_numpy})
    assert registered == []


def test_registered_kernel_sends_float16_to_the_numpy_fallback():
    from minigrad.ops.im2col import im2col as dispatch_im2col

    x = numpy.random.default_rng(5).standard_normal((1, 2, 4, 4)).astype(numpy.float16)
    _assert_same("float16 im2col", dispatch_im2col(x, 3, 3, (1, 1), (1, 1), (1, 1)),
                 im2col_numpy(x, 3, 3, (1, 1), (1, 1), (1, 1)))


def test_load_rejects_an_unknown_kernel_name():
    with pytest.raises(KeyError, match="unknown kernel 'im3col'"):
        numba_cpu.load("im3col")


def test_importing_minigrad_and_building_a_conv_net_does_not_import_numba():
    code = ("import sys, minigrad, minigrad.nn, minigrad.ops.im2col, minigrad.ops.pool; "
            "print('numba' in sys.modules)")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "False", result.stdout + result.stderr


# ------------------------------------------------------------------ wiring into minigrad's dispatchers
def test_conv_dispatcher_picks_the_numba_kernels_on_cpu():
    from minigrad.ops import im2col as im2col_ops

    x = numpy.zeros((1, 1, 3, 3))
    for name in ("im2col", "col2im"):
        kernel = im2col_ops.find_kernel(name, x)
        assert kernel is not None and kernel.__name__ == f"{name}_numba", f"{name}: registered {kernel!r}"


def test_pool_dispatcher_picks_the_numba_kernels_on_cpu():
    from minigrad.ops import pool  # noqa: F401  (importing it registers its kernels)
    from minigrad.ops.registry import KERNELS

    for name in ("max_pool2d_forward", "max_pool2d_backward"):
        kernel = KERNELS.get((name, "cpu"))
        assert kernel is not None and kernel.__name__ == f"{name}_numba", f"{name}: registered {kernel!r}"


def test_conv2d_gradcheck_through_numba_kernels_with_stride_padding_dilation():
    import minigrad
    from minigrad.ops.conv import conv2d

    rng = numpy.random.default_rng(3)
    x = minigrad.tensor(rng.standard_normal((2, 2, 6, 5)), requires_grad=True)
    w = minigrad.tensor(rng.standard_normal((3, 2, 2, 3)), requires_grad=True)
    assert minigrad.gradcheck(lambda x, w: conv2d(x, w, stride=(2, 1), padding=(1, 2), dilation=(2, 1)), [x, w])


def test_max_pool2d_gradcheck_through_numba_kernels():
    import minigrad
    from minigrad.ops.pool import max_pool2d

    x = minigrad.tensor(numpy.random.default_rng(4).permutation(2 * 2 * 5 * 5).reshape(2, 2, 5, 5) / 7.0,
                        requires_grad=True)      # distinct values: no ties for finite differences to straddle
    assert minigrad.gradcheck(lambda x: max_pool2d(x, 3, stride=2, padding=1), [x])


# ------------------------------------------------------------------ threading layer
_LAYER_SCRIPT = (
    "import numpy, numba, minigrad\n"
    "from minigrad.ops.conv import conv2d\n"
    # one image's cols is 9 MiB: above SERIAL_BELOW_BYTES, so the parallel loop starts the threads
    "conv2d(minigrad.tensor(numpy.ones((1, 64, 64, 64), numpy.float32)),"
    " minigrad.tensor(numpy.ones((1, 64, 3, 3), numpy.float32)), padding=1)\n"
    "print(numba.threading_layer())\n"
)


def _threading_layer_in_child(extra_env):
    import os

    env = {k: v for k, v in os.environ.items() if k != "NUMBA_THREADING_LAYER"}
    env.update(extra_env)
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    result = subprocess.run([sys.executable, "-c", _LAYER_SCRIPT], env=env, cwd=root,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    return result.stdout.split()[-1]


def test_kernels_select_the_workqueue_threading_layer_by_default():
    assert _threading_layer_in_child({}) == "workqueue"


def test_kernels_keep_a_threading_layer_the_user_chose():
    assert _threading_layer_in_child({"NUMBA_THREADING_LAYER": "omp"}) == "omp"


def test_kernels_called_from_two_python_threads_give_the_reference_result():
    import threading

    rng = numpy.random.default_rng(3)
    x = rng.standard_normal((4, 3, 9, 9)).astype(numpy.float32)
    expected = im2col_numpy(x, 3, 3, (1, 1), (1, 1), (1, 1))
    results, errors = [], []

    def work():
        try:
            for _ in range(20):
                results.append(numpy.array_equal(im2col(x, 3, 3, (1, 1), (1, 1), (1, 1)), expected))
        except Exception as error:  # noqa: BLE001  (reported below)
            errors.append(error)

    threads = [threading.Thread(target=work) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors and len(results) == 60 and all(results)


def test_workspace_reuses_an_idle_buffer_for_a_smaller_array_of_another_shape_and_dtype():
    from kernels.numba_cpu import workspace

    workspace.clear()                                           # no smaller idle buffer from other tests
    first = workspace.empty((512, 1024), numpy.float64)         # 4 MiB
    address = first.__array_interface__["data"][0]
    del first
    second = workspace.empty((300, 1024), numpy.float32)        # 1.2 MiB fits in the idle 4 MiB
    assert second.__array_interface__["data"][0] == address
    assert second.shape == (300, 1024) and second.dtype == numpy.float32 and second.flags.c_contiguous
