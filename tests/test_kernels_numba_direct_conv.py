"""kernels/numba_cpu/direct_conv.py: the direct loops equal conv2d's reference (forward, dx, dw, db) to float
rounding, for stride 1 with and without padding, in float32 and float64, with the loops that read their sizes
at run time (small inputs) and those compiled with them as constants."""
import numpy
import pytest
from hypothesis import given, settings, strategies as st

import minigrad
from minigrad.kernels import numba_cpu
from minigrad.ops.conv import Conv2d, conv2d_reference

pytestmark = pytest.mark.skipif(not numba_cpu.numba_available(), reason="the direct loops are Numba kernels")

TOLERANCE = {numpy.float64: dict(rtol=1e-10, atol=1e-10), numpy.float32: dict(rtol=1e-4, atol=1e-4)}


def direct():
    from minigrad.kernels.numba_cpu import direct_conv
    return direct_conv


@st.composite
def direct_configs(draw):
    """A small stride-1 conv2d problem: odd sizes, kernels up to 5x5, padding below the kernel."""
    kernel = (draw(st.integers(1, 5)), draw(st.integers(1, 5)))
    padding = tuple(draw(st.integers(0, k - 1)) for k in kernel)
    size = tuple(draw(st.integers(max(1, k - 2 * p), k - 2 * p + 5)) for k, p in zip(kernel, padding))
    shape = dict(images=draw(st.integers(1, 3)), channels=draw(st.integers(1, 4)), filters=draw(st.integers(1, 7)))
    dtype = draw(st.sampled_from([numpy.float32, numpy.float64]))
    rng = numpy.random.default_rng(draw(st.integers(0, 2**16)))
    x = rng.standard_normal((shape["images"], shape["channels"], *size)).astype(dtype)
    w = rng.standard_normal((shape["filters"], shape["channels"], *kernel)).astype(dtype)
    b = rng.standard_normal(shape["filters"]).astype(dtype)
    return x, w, b, padding


def reference_gradients(x, w, b, padding, dy):
    """y, dx, dw, db of minigrad/ops/conv.py's Conv2d, in float64."""
    tensors = [minigrad.tensor(a.astype(numpy.float64), requires_grad=True) for a in (x, w, b)]
    y = Conv2d(1, padding)(*tensors)
    y.backward(minigrad.tensor(dy.astype(numpy.float64)))
    return (y.detach().numpy(),) + tuple(t.grad.numpy() for t in tensors)


def check_against_reference(x, w, b, padding, parts=1):
    kernels = direct()
    y = kernels.conv2d_forward(x, w, b, padding)
    dy = numpy.cos(numpy.arange(y.size)).reshape(y.shape).astype(x.dtype)
    ours = (y, kernels.conv2d_input_grad(dy, w, padding), kernels.conv2d_weight_grad(x, dy, w.shape[2:], padding, parts),
            dy.sum(axis=(0, 2, 3)))
    expected = reference_gradients(x, w, b, padding, dy)
    for name, mine, theirs in zip(["y", "dx", "dw", "db"], ours, expected):
        assert mine.shape == theirs.shape, name
        assert mine.dtype == x.dtype, name
        numpy.testing.assert_allclose(mine, theirs, err_msg=name, **TOLERANCE[x.dtype.type])


@settings(max_examples=25, deadline=None)
@given(direct_configs())
def test_direct_loops_equal_the_reference_forward_dx_dw_db(config):
    check_against_reference(*config)


@pytest.mark.parametrize("dtype", [numpy.float32, numpy.float64])
@pytest.mark.parametrize("padding", [(0, 0), (2, 1)])
def test_direct_forward_equals_the_loop_definition(dtype, padding):
    rng = numpy.random.default_rng(1)
    x, w, b = (rng.standard_normal(s).astype(dtype) for s in ((2, 3, 9, 8), (6, 3, 5, 4), (6,)))
    numpy.testing.assert_allclose(direct().conv2d_forward(x, w, b, padding),
                                  conv2d_reference(x, w, b, padding=padding), **TOLERANCE[dtype])


@pytest.mark.parametrize("dtype", [numpy.float32, numpy.float64])
@pytest.mark.parametrize("shape", [(3, 6, 14, 16), (1, 3, 32, 6)])   # LeNet's conv2 and conv1 (fewer images)
def test_loops_compiled_for_the_sizes_equal_the_reference(monkeypatch, dtype, shape):
    monkeypatch.setitem(numba_cpu.LIMITS, "constant_sizes_from_bytes", 1)    # every call: the constant-size loops
    rng = numpy.random.default_rng(2)
    n, channels, size, filters = shape
    x, w, b = (rng.standard_normal(s).astype(dtype) for s in ((n, channels, size, size), (filters, channels, 5, 5),
                                                                (filters,)))
    check_against_reference(x, w, b, (0, 0))
    check_against_reference(x, w, b, (2, 2))


@pytest.mark.parametrize("serial_below_bytes", [0, 1 << 40])          # Numba's parallel loops, or the serial twins
def test_parallel_loops_and_serial_twins_agree(monkeypatch, serial_below_bytes):
    monkeypatch.setitem(numba_cpu.LIMITS, "serial_below_bytes", serial_below_bytes)
    rng = numpy.random.default_rng(3)
    x, w, b = rng.standard_normal((5, 2, 8, 7)), rng.standard_normal((4, 2, 5, 3)), rng.standard_normal(4)
    check_against_reference(x, w, b, (1, 1), parts=3)


def test_weight_gradient_does_not_depend_on_the_threads():
    """The parts are fixed by the caller; the same parts give the same bits on Numba's threads or serially."""
    rng = numpy.random.default_rng(4)
    x, dy = rng.standard_normal((7, 3, 9, 9)), rng.standard_normal((7, 5, 5, 5))
    kernels = direct()
    limits = dict(numba_cpu.LIMITS)
    try:
        numba_cpu.LIMITS["serial_below_bytes"] = 0
        parallel = kernels.conv2d_weight_grad(x, dy, (5, 5), (0, 0), parts=4)
        numba_cpu.LIMITS["serial_below_bytes"] = 1 << 40
        serial = kernels.conv2d_weight_grad(x, dy, (5, 5), (0, 0), parts=4)
    finally:
        numba_cpu.LIMITS.update(limits)
    numpy.testing.assert_array_equal(parallel, serial)


def test_more_parts_than_images_and_empty_batches():
    rng = numpy.random.default_rng(5)
    x, w, b = rng.standard_normal((2, 1, 6, 6)), rng.standard_normal((2, 1, 5, 5)), rng.standard_normal(2)
    check_against_reference(x, w, b, (0, 0), parts=8)
    assert direct().conv2d_forward(x[:0], w, b, (0, 0)).shape == (0, 2, 2, 2)
