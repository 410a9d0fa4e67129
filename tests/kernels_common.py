"""Helpers shared by the tests of the Numba CPU kernels (tests/test_kernels_numba_*.py).

    conv_geometries(), same_width_geometries(), pool_geometries()   hypothesis strategies (small sizes)
    random_cols(x, ...)                 a random array of im2col's output shape, for col2im
    assert_same(name, ours, reference)  bit for bit, naming the first index that differs
    tolerance(dtype)                    rtol/atol for results that add floats
    kernel_policy(**limits)             numba_cpu.configure(**limits) for a `with` block, then restored
    loops_taken()                       records which loop each kernel call ran (serial, parallel, constant sizes)

The kernels' policy (which loop, the buffer pool) is set only through numba_cpu.configure,
with the thresholds of minigrad/fast/tuning.py or test values; kernel_policy restores the
limits afterwards, so no test leaves another a different policy.
"""
import contextlib
from unittest import mock

import numpy
from hypothesis import assume
from hypothesis import strategies as st

from minigrad.kernels import numba_cpu
from minigrad.kernels.geometry import output_size
from minigrad.kernels.numba_cpu import workspace
from minigrad.ops.im2col import im2col_numpy

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
    assume(output_size(height, kernel_h, stride[0], padding[0], dilation[0]) >= 1)
    assume(output_size(width, kernel_w, stride[1], padding[1], dilation[1]) >= 1)
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
    assume(output_size(height, kernel_h, 1, padding[0], dilation[0]) >= 1)
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


def random_cols(x, kernel_h, kernel_w, stride, padding, dilation, seed=1):
    """Random numbers in the shape (and dtype) of im2col(x, ...): an input for col2im."""
    shape = im2col_numpy(x, kernel_h, kernel_w, stride, padding, dilation).shape
    return numpy.random.default_rng(seed).standard_normal(shape).astype(x.dtype)


def assert_same(name, ours, reference):
    """Equal shape, dtype and values (a NaN anywhere fails); the message names the first index that differs."""
    assert ours.shape == reference.shape, f"{name}: shape {ours.shape}, reference {reference.shape}"
    assert ours.dtype == reference.dtype, f"{name}: dtype {ours.dtype}, reference {reference.dtype}"
    if not numpy.array_equal(ours, reference):
        where = tuple(numpy.argwhere(ours != reference)[0])
        raise AssertionError(f"{name}: differs at index {where}: {ours[where]!r} vs reference {reference[where]!r}")


def tolerance(dtype):
    """assert_allclose's rtol and atol for a result that adds floats of `dtype` in another order."""
    return dict(rtol=1e-5, atol=1e-5) if dtype == numpy.float32 else dict(rtol=1e-12, atol=1e-12)


@contextlib.contextmanager
def kernel_policy(**limits):
    """numba_cpu.configure(**limits) inside the block (serial_below_bytes, constant_sizes_from_bytes,
    pool_min_bytes, pool_max_bytes); the kernels' and the pool's limits as before it afterwards."""
    saved = dict(numba_cpu.LIMITS), dict(workspace.LIMITS)
    try:
        numba_cpu.configure(**limits)
        yield
    finally:
        numba_cpu.LIMITS.update(saved[0])
        workspace.LIMITS.update(saved[1])


@contextlib.contextmanager
def loops_taken():
    """A list that records, for every kernel call in the block that chooses a loop, (kind, loop name):
    kind "serial" or "parallel" as numba_cpu.run_loop chose it, or "constant sizes" for im2col's and
    col2im's loops compiled for one geometry. The loops still run: results are unchanged."""
    from minigrad.kernels.numba_cpu import col2im, im2col, maxpool, winograd

    taken = []

    def recording(kind, loop):
        def run(*arguments):
            taken.append((kind, loop.__name__))
            return loop(*arguments)
        return run

    def run_loop(serial_loop, parallel_loop, nbytes, *arguments):
        numba_cpu.run_loop(recording("serial", serial_loop), recording("parallel", parallel_loop), nbytes, *arguments)

    def constant_size_loop(module):
        original = module.constant_size_loop            # taken before the patch below replaces it

        def make(*sizes):
            return recording("constant sizes", original(*sizes))
        return make

    with contextlib.ExitStack() as stack:
        for module in (im2col, col2im, maxpool, winograd):
            stack.enter_context(mock.patch.object(module, "run_loop", run_loop))
        for module in (im2col, col2im):
            stack.enter_context(mock.patch.object(module, "constant_size_loop", constant_size_loop(module)))
        yield taken
