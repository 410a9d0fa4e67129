"""kernels/numba_cpu/gelu.py (the exact GELU with a compiled erf) against its NumPy reference."""
import numpy
import pytest

pytest.importorskip("numba")

from kernels_common import kernel_policy                                                 # noqa: E402
from minigrad.kernels import numba_cpu                                                   # noqa: E402
from minigrad.ops.activation import gelu_backward_numpy, gelu_forward_numpy              # noqa: E402

gelu_forward = numba_cpu.load("gelu_forward")
gelu_backward = numba_cpu.load("gelu_backward")
TOLERANCE = {numpy.float32: dict(rtol=2e-6, atol=1e-7), numpy.float64: dict(rtol=1e-13, atol=1e-15)}


@pytest.mark.parametrize("dtype", [numpy.float32, numpy.float64])
@pytest.mark.parametrize("serial_below", [1 << 40, 0])                   # the serial twin, then the parallel loop
def test_gelu_kernels_equal_the_reference(dtype, serial_below):
    rng = numpy.random.default_rng(0)
    x = (rng.standard_normal((3, 4, 5, 6)) * 4).astype(dtype)
    x.flat[:6] = [0.0, -0.0, 40.0, -40.0, numpy.inf, -numpy.inf]
    x.flat[6] = numpy.nan
    dy = rng.standard_normal(x.shape).astype(dtype)
    with kernel_policy(serial_below_bytes=serial_below):
        y, dx = gelu_forward(x), gelu_backward(x, dy)
    assert y.dtype == dx.dtype == dtype and y.shape == dx.shape == x.shape
    with numpy.errstate(invalid="ignore"):                    # -inf * 0 in the reference, as in the kernel
        expected_y, expected_dx = gelu_forward_numpy(x), gelu_backward_numpy(x, dy)
    numpy.testing.assert_allclose(y, expected_y, equal_nan=True, **TOLERANCE[dtype])
    numpy.testing.assert_allclose(dx, expected_dx, equal_nan=True, **TOLERANCE[dtype])


def test_gelu_kernels_take_strided_and_empty_arrays():
    x = numpy.random.default_rng(1).standard_normal((6, 8))[:, ::2]               # not contiguous
    numpy.testing.assert_allclose(gelu_forward(x), gelu_forward_numpy(x), rtol=1e-13)
    numpy.testing.assert_allclose(gelu_backward(x, x.T.T), gelu_backward_numpy(x, x), rtol=1e-13)
    empty = numpy.zeros((0, 3), numpy.float32)
    assert gelu_forward(empty).shape == (0, 3) and gelu_backward(empty, empty).shape == (0, 3)
