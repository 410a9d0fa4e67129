"""The im2col and col2im loops compiled for one geometry's sizes (`constant_size_loop` in
kernels/numba_cpu/im2col.py and col2im.py): equal to the generic loops bit for bit, taken only
for the strided chunks the policy names (numba_cpu.configure(constant_sizes_from_bytes=...)),
and kept apart per geometry in Numba's on-disk cache.
"""
import os
import subprocess
import sys

import numpy
import pytest

pytest.importorskip("numba")

from kernels_common import assert_same, kernel_policy, loops_taken, random_cols  # noqa: E402
from minigrad.fast import tuning                                                  # noqa: E402
from minigrad.kernels import numba_cpu                                            # noqa: E402
from minigrad.kernels.geometry import output_size                                 # noqa: E402
from minigrad.kernels.numba_cpu import col2im as col2im_module, im2col as im2col_module  # noqa: E402
from minigrad.ops.im2col import col2im_numpy, im2col_numpy                        # noqa: E402

im2col = numba_cpu.load("im2col")
col2im = numba_cpu.load("col2im")
REPOSITORY = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


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
    x = numpy.random.default_rng(7).standard_normal((2, 3) + size).astype(dtype)
    geometry = (x, kernel[0], kernel[1], stride, padding, (1, 1))
    assert im2col_module.uses_windows(kernel[0], kernel[1], stride, (1, 1))
    reference = im2col_numpy(*geometry)
    out_h, out_w = (output_size(size[axis], kernel[axis], stride[axis], padding[axis], 1) for axis in (0, 1))
    cols = numpy.full(reference.shape, numpy.nan, dtype)
    im2col_module.constant_size_loop(kernel[0], kernel[1], stride, padding, out_w)(x, cols, out_h)
    assert_same("im2col, constant sizes", cols, reference)
    cols = numpy.full(reference.shape, numpy.nan, dtype)                        # the input's width known too
    im2col_module.constant_size_loop(kernel[0], kernel[1], stride, padding, out_w, size[1])(x, cols, out_h)
    assert_same("im2col, constant sizes and width", cols, reference)

    dcols = random_cols(*geometry)
    dx, generic_dx = numpy.full(x.shape, numpy.nan, dtype), numpy.full(x.shape, numpy.nan, dtype)
    col2im_module.constant_size_loop(kernel[0], kernel[1], stride, padding, out_w)(dcols, dx, out_h)
    col2im_module._col2im_windows_serial(dcols, generic_dx, kernel[0], kernel[1], *stride, *padding, out_h, out_w)
    assert_same("col2im, constant sizes", dx, generic_dx)


def test_im2col_and_col2im_take_the_constant_size_loops_for_chunks_and_keep_results(monkeypatch):
    """Strided calls with cols from constant_sizes_from_bytes (0 here) and under serial_below_bytes compile
    the loop for their sizes, once, and use it; the results are those of the NumPy references."""
    x = numpy.random.default_rng(8).standard_normal((2, 3, 10, 10))
    geometry = (x, 3, 3, (2, 2), (1, 1), (1, 1))
    sizes = (3, 3, 2, 2, 1, 1, 5)                                  # (KH, KW, SH, SW, PH, PW, OW)
    monkeypatch.setattr(im2col_module, "_constant_size_loops", {})
    monkeypatch.setattr(col2im_module, "_constant_size_loops", {})
    cols = random_cols(*geometry)
    with kernel_policy(constant_sizes_from_bytes=0, serial_below_bytes=1 << 40), loops_taken() as taken:
        for _ in range(2):                                          # the second call compiles nothing new
            assert_same("im2col", im2col(*geometry), im2col_numpy(*geometry))
            numpy.testing.assert_allclose(col2im(cols, x.shape, *geometry[1:]),
                                          col2im_numpy(cols, x.shape, *geometry[1:]), rtol=1e-12, atol=1e-12)
    assert taken == [("constant sizes", "gather_with_constant_sizes"),
                     ("constant sizes", "scatter_with_constant_sizes")] * 2
    assert list(im2col_module._constant_size_loops) == [sizes + (10,)]             # im2col's knows W = 10 too
    assert list(col2im_module._constant_size_loops) == [sizes]


def _strided_chunk(cols_bytes, channels=32):
    """A float32 x (n, channels, 16, 16) whose 3x3, stride-2, padding-1 cols has at least `cols_bytes` bytes."""
    per_image = channels * 9 * 8 * 8 * 4
    shape = (-(-cols_bytes // per_image), channels, 16, 16)
    return numpy.random.default_rng(9).standard_normal(shape).astype(numpy.float32)


@pytest.mark.parametrize("size, loops", [
    ("under NUMBA_CONSTANT_SIZES_FROM_BYTES", [("serial", "_im2col_windows_serial"),
                                               ("serial", "_col2im_windows_serial")]),
    ("between the two limits", [("constant sizes", "gather_with_constant_sizes"),
                                ("constant sizes", "scatter_with_constant_sizes")]),
    ("from NUMBA_SERIAL_BELOW_BYTES", [("parallel", "_im2col_windows"), ("parallel", "_col2im_windows")]),
])
def test_tuned_policy_sends_strided_cols_to_the_loop_for_their_size(size, loops):
    """With minigrad/fast/tuning.py's limits (what `import minigrad` configures): small strided cols run the
    serial windows loop, chunks from NUMBA_CONSTANT_SIZES_FROM_BYTES the loop compiled for their sizes, and
    cols from NUMBA_SERIAL_BELOW_BYTES the parallel loop. Each gives the reference's numbers."""
    smallest, serial_below = tuning.NUMBA_CONSTANT_SIZES_FROM_BYTES, tuning.NUMBA_SERIAL_BELOW_BYTES
    lowest, highest = {"under NUMBA_CONSTANT_SIZES_FROM_BYTES": (0, smallest),
                       "between the two limits": (smallest, serial_below),
                       "from NUMBA_SERIAL_BELOW_BYTES": (serial_below, numpy.inf)}[size]
    x = _strided_chunk(max(lowest, 1), channels=32 if lowest else 2)    # the smallest: one image of 2 channels
    geometry = (x, 3, 3, (2, 2), (1, 1), (1, 1))
    reference = im2col_numpy(*geometry)
    assert lowest <= reference.nbytes < highest, f"cols of {reference.nbytes} bytes is not {size}"
    cols = random_cols(*geometry)
    with kernel_policy(serial_below_bytes=serial_below, constant_sizes_from_bytes=smallest), loops_taken() as taken:
        assert_same(f"im2col, cols {size}", im2col(*geometry), reference)
        numpy.testing.assert_allclose(col2im(cols, x.shape, *geometry[1:]), col2im_numpy(cols, x.shape, *geometry[1:]),
                                      rtol=1e-5, atol=1e-5, err_msg=f"col2im, cols {size}")
    assert taken == loops


@pytest.mark.parametrize("kernel, padding, size, dtype", [
    ((5, 5), (0, 0), (32, 32), numpy.float32),           # LeNet's first layer
    ((5, 5), (0, 0), (14, 14), numpy.float64),           # its second
    ((3, 3), (0, 0), (28, 28), numpy.float32),           # the MNIST CNN's
    ((5, 5), (1, 1), (9, 11), numpy.float64),            # padded, yet narrower than the input
])
def test_stride_1_narrower_chunks_take_im2cols_constant_size_loop_bit_for_bit(kernel, padding, size, dtype):
    """im2col's loop for constant sizes also serves stride-1 convolutions whose output is narrower than
    the input ("valid" ones, LeNet's): taken for chunks in the configured range, the same cols as NumPy."""
    x = numpy.random.default_rng(11).standard_normal((3, 2) + size).astype(dtype)
    geometry = (x, kernel[0], kernel[1], (1, 1), padding, (1, 1))
    with kernel_policy(constant_sizes_from_bytes=0, serial_below_bytes=1 << 40), loops_taken() as taken:
        assert_same("im2col", im2col(*geometry), im2col_numpy(*geometry))
    assert [kind for kind, _ in taken] == ["constant sizes"], taken


@pytest.mark.parametrize("kernel, padding, size, dtype", [
    ((5, 5), (0, 0), (14, 14), numpy.float64),           # LeNet's second layer
    ((3, 3), (0, 0), (28, 28), numpy.float32),           # the MNIST CNN's
    ((5, 5), (1, 1), (9, 11), numpy.float64),            # padded, yet narrower than the input
])
def test_col2ims_stride_1_loop_for_constant_sizes_equals_the_generic_loop_bit_for_bit(kernel, padding, size, dtype):
    """col2im's stride-1 loop compiled for its sizes adds the same numbers in the same order as the
    generic plane loop, and a chunk in the configured range takes it."""
    x = numpy.zeros((3, 2) + size, dtype)
    geometry = (x, kernel[0], kernel[1], (1, 1), padding, (1, 1))
    cols = random_cols(*geometry).astype(dtype)
    out_h, out_w = (output_size(size[axis], kernel[axis], 1, padding[axis], 1) for axis in (0, 1))
    ours, generic = numpy.full(x.shape, numpy.nan, dtype), numpy.full(x.shape, numpy.nan, dtype)
    col2im_module.unit_stride_loop(kernel[0], kernel[1], padding, out_w, size[1])(cols, ours, out_h)
    col2im_module._col2im_planes_serial(cols, generic, kernel[0], kernel[1], 1, 1, *padding, 1, 1, out_h, out_w)
    assert_same("col2im, stride 1, constant sizes", ours, generic)
    with kernel_policy(constant_sizes_from_bytes=0, serial_below_bytes=1 << 40), loops_taken() as taken:
        numpy.testing.assert_allclose(col2im(cols, x.shape, *geometry[1:]), col2im_numpy(cols, x.shape, *geometry[1:]),
                                      rtol=1e-5, atol=1e-5)
    assert taken == [], taken                                   # neither the serial nor the parallel generic loop


def test_dilated_and_same_width_unstrided_chunks_never_take_a_constant_size_loop():
    """A dilated chunk in the configured range keeps its generic loop, and so does a stride-1 chunk
    as wide as its input (it has the faster flat loop); col2im has constant-size loops for strided
    chunks only."""
    x = numpy.random.default_rng(10).standard_normal((2, 3, 9, 9))
    with kernel_policy(constant_sizes_from_bytes=0, serial_below_bytes=1 << 40), loops_taken() as taken:
        for stride, dilation in [((1, 1), (1, 1)), ((2, 2), (2, 2))]:
            geometry = (x, 3, 3, stride, (1, 1), dilation)
            assert not im2col_module.takes_constant_size_loop(3, 3, stride, dilation, 1 << 20)
            assert_same("im2col", im2col(*geometry), im2col_numpy(*geometry))
    assert [kind for kind, _ in taken] == ["serial", "serial"]


_CACHED_LOOPS_SCRIPT = """
import sys
import numpy
from minigrad.kernels.numba_cpu import col2im as col2im_module, im2col as im2col_module
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
    env = dict(os.environ, NUMBA_CACHE_DIR=str(tmp_path), NUMBA_ENABLE_CUDASIM="0")
    hits = []
    for widths in (["8", "11"], ["11", "8"]):
        result = subprocess.run([sys.executable, "-c", _CACHED_LOOPS_SCRIPT, *widths], env=env, cwd=REPOSITORY,
                                capture_output=True, text=True, timeout=300)
        assert result.returncode == 0, result.stderr
        hits.append([line for line in result.stdout.splitlines() if line.startswith("cache hits")])
    assert hits[0] == ["cache hits 8 0", "cache hits 11 0"]           # compiled in the first process
    assert hits[1] == ["cache hits 11 2", "cache hits 8 2"]           # both loops loaded in the second
