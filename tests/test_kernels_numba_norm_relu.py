"""kernels/numba_cpu batchnorm.py and relu.py against their NumPy references.

ReLU is a selection: bit for bit, NaN included. Batch norm sums in float64 and in
another order than NumPy, so it is compared at float rounding.
"""
import numpy
import pytest
from hypothesis import given
from hypothesis import strategies as st

pytest.importorskip("numba")

from minigrad.fast import cpu_kernels, tuning                                        # noqa: E402
from minigrad.kernels import numba_cpu                                              # noqa: E402
from minigrad.ops.activation import relu_backward_numpy, relu_forward_numpy          # noqa: E402
from minigrad.ops.norm import batch_norm_backward_numpy, batch_norm_train_forward_numpy  # noqa: E402
from minigrad.ops.registry import find_kernel                                        # noqa: E402

bn_forward = numba_cpu.load("batch_norm_train_forward")
bn_backward = numba_cpu.load("batch_norm_backward")
relu_forward = numba_cpu.load("relu_forward")
relu_backward = numba_cpu.load("relu_backward")


@st.composite
def batch_norm_inputs(draw):
    """x3 (N, C, M/N) with a per-channel offset (large means test the two-pass variance), dy, gamma, beta."""
    n, c, per_image = draw(st.integers(1, 4)), draw(st.integers(1, 4)), draw(st.integers(1, 20))
    if n * per_image < 2:
        per_image = 2
    dtype = draw(st.sampled_from([numpy.float32, numpy.float64]))
    rng = numpy.random.default_rng(draw(st.integers(0, 2**16)))
    offset = draw(st.sampled_from([0.0, 3.0, 100.0]))
    x3 = (rng.standard_normal((n, c, per_image)) + offset * rng.standard_normal((1, c, 1))).astype(dtype)
    dy3 = rng.standard_normal((n, c, per_image)).astype(dtype)
    gamma, beta = (rng.standard_normal(c).astype(dtype) for _ in range(2))
    return x3, dy3, gamma, beta


def _close(dtype):
    return dict(rtol=2e-4, atol=2e-4) if dtype == numpy.float32 else dict(rtol=1e-9, atol=1e-9)


@given(batch_norm_inputs())
def test_batch_norm_forward_kernel_equals_numpy_reference(inputs):
    x3, _, gamma, beta = inputs
    ours = bn_forward(x3, gamma, beta, 1e-5)
    reference = batch_norm_train_forward_numpy(x3.copy(), gamma, beta, 1e-5)
    assert ours[0].dtype == x3.dtype and ours[0].shape == x3.shape
    for name, a, b in zip(["y", "mean", "var", "inv_std"], ours, reference):
        numpy.testing.assert_allclose(a, b, err_msg=name, **_close(x3.dtype))


@given(batch_norm_inputs())
def test_batch_norm_backward_kernel_equals_numpy_reference(inputs):
    x3, dy3, gamma, beta = inputs
    _, mean, _, inv_std = batch_norm_train_forward_numpy(x3.copy(), gamma, beta, 1e-5)
    ours = bn_backward(x3, dy3, mean, inv_std, gamma)
    reference = batch_norm_backward_numpy(x3, dy3, mean, inv_std, gamma)
    assert ours[0].dtype == dy3.dtype and ours[0].shape == dy3.shape
    tolerance = _close(x3.dtype)
    count = x3.shape[0] * x3.shape[2]                   # the sums add this many terms per channel
    for name, a, b in zip(["dx", "dgamma", "dbeta"], ours, reference):
        atol = tolerance["atol"] * (1.0 + numpy.abs(b).max()) * (1 if name == "dx" else count)
        numpy.testing.assert_allclose(a, b, rtol=tolerance["rtol"], atol=atol, err_msg=name)


def test_batch_norm_forward_kernel_propagates_nan_to_its_channel_only():
    x3 = numpy.random.default_rng(0).standard_normal((2, 3, 4)).astype(numpy.float32)
    x3[1, 1, 2] = numpy.nan
    y3, mean, _, _ = bn_forward(x3, numpy.ones(3, numpy.float32), numpy.zeros(3, numpy.float32), 1e-5)
    assert numpy.isnan(y3[:, 1]).all() and numpy.isnan(mean[1])
    assert numpy.isfinite(y3[:, [0, 2]]).all()


floats = st.floats(allow_nan=True, allow_infinity=True, width=32)


@given(st.lists(floats, min_size=1, max_size=40), st.sampled_from([numpy.float32, numpy.float64]))
def test_relu_kernels_equal_numpy_reference_bit_for_bit(values, dtype):
    x = numpy.array(values, dtype=dtype).reshape(1, -1)
    y, mask = relu_forward(x)
    y_ref, mask_ref = relu_forward_numpy(x)
    numpy.testing.assert_array_equal(y, y_ref)          # NaN == NaN here
    numpy.testing.assert_array_equal(mask, mask_ref)
    dy = numpy.random.default_rng(len(values)).standard_normal(x.shape).astype(dtype)
    numpy.testing.assert_array_equal(relu_backward(dy, mask), relu_backward_numpy(dy, mask_ref))


@pytest.mark.parametrize("shape", [(), (1,), (2, 3, 4, 5)])
def test_relu_kernels_keep_the_shape_of_the_input(shape):
    x = numpy.random.default_rng(1).standard_normal(shape)
    y, mask = relu_forward(x)
    assert y.shape == shape and mask.shape == shape and mask.dtype == numpy.bool_
    numpy.testing.assert_array_equal(y, numpy.maximum(x, 0))
    assert relu_backward(numpy.ones(shape), mask).shape == shape


def test_relu_kernels_take_a_non_contiguous_view():
    x = numpy.random.default_rng(2).standard_normal((4, 6))[:, ::2]
    y, mask = relu_forward(x)
    numpy.testing.assert_array_equal(y, numpy.maximum(x, 0))
    numpy.testing.assert_array_equal(relu_backward(x, mask), x * (x > 0))


def test_float16_relu_goes_to_the_numpy_fallback():
    x = numpy.array([[-1.0, 0.5, 2.0]], dtype=numpy.float16)
    y, mask = find_kernel("relu_forward", x)(x)
    assert y.dtype == numpy.float16
    numpy.testing.assert_array_equal(y, [[0.0, 0.5, 2.0]])


@pytest.mark.parametrize("name", sorted(cpu_kernels.ELEMENTWISE))
def test_elementwise_stand_ins_send_arrays_under_the_tuned_size_to_numpy(monkeypatch, name):
    """tuning.ELEMENTWISE_NUMPY_BELOW_BYTES: below it NumPy is faster than a kernel call; from it the kernel runs."""
    calls = []
    monkeypatch.setattr(numba_cpu, "load", lambda loaded: lambda x, *args: calls.append(("kernel", loaded, x.nbytes)))
    stand_in = cpu_kernels.lazy(name, lambda x, *args: calls.append(("numpy", name, x.nbytes)))
    limit = tuning.ELEMENTWISE_NUMPY_BELOW_BYTES
    stand_in(numpy.ones(limit // 4 - 1, numpy.float32))              # one float under the limit
    stand_in(numpy.ones(limit // 4, numpy.float32))                  # exactly the limit
    assert calls == [("numpy", name, limit - 4), ("kernel", name, limit)]


def test_im2col_stand_in_has_no_size_limit(monkeypatch):
    """Only the elementwise kernels go to NumPy when small: the conv and pool kernels pay no such fixed cost."""
    calls = []
    monkeypatch.setattr(numba_cpu, "load", lambda loaded: lambda x, *args: calls.append("kernel"))
    cpu_kernels.lazy("im2col", lambda x, *args: calls.append("numpy"))(numpy.ones((1, 1, 2, 2), numpy.float32))
    assert calls == ["kernel"]


# ------------------------------------------------------------------ batch norm + ReLU, fused
@given(batch_norm_inputs())
def test_fused_batch_norm_relu_kernels_equal_numpy_reference(inputs):
    """relu=True in the forward kernel and relu_out3 in the backward kernel: against the NumPy reference
    with the same fusion, and the forward bit for bit against the unfused kernel clipped at 0."""
    x3, dy3, gamma, beta = inputs
    ours = bn_forward(x3, gamma, beta, 1e-5, relu=True)
    y3 = ours[0].copy()
    reference = batch_norm_train_forward_numpy(x3.copy(), gamma, beta, 1e-5, relu=True)
    for name, a, b in zip(["y", "mean", "var", "inv_std"], ours, reference):
        numpy.testing.assert_allclose(a, b, err_msg=name, **_close(x3.dtype))
    unfused = bn_forward(x3, gamma, beta, 1e-5)[0]
    numpy.testing.assert_array_equal(y3, numpy.where(unfused <= 0, 0, unfused).astype(x3.dtype))
    _, mean, _, inv_std = reference
    ours_back = bn_backward(x3, dy3, mean, inv_std, gamma, relu_out3=y3)
    reference_back = batch_norm_backward_numpy(x3, dy3, mean, inv_std, gamma, relu_out3=y3)
    tolerance = _close(x3.dtype)
    count = x3.shape[0] * x3.shape[2]
    for name, a, b in zip(["dx", "dgamma", "dbeta"], ours_back, reference_back):
        atol = tolerance["atol"] * (1.0 + numpy.abs(b).max()) * (1 if name == "dx" else count)
        numpy.testing.assert_allclose(a, b, rtol=tolerance["rtol"], atol=atol, err_msg=name)


def test_fused_backward_kernel_passes_no_gradient_where_the_relu_clipped():
    """Where the fused output is 0 (clipped), dy must not reach the sums: giving those places a huge dy
    changes nothing."""
    rng = numpy.random.default_rng(11)
    x3 = rng.standard_normal((3, 2, 8)).astype(numpy.float64)
    gamma, beta = numpy.array([1.5, -0.7]), numpy.array([0.2, 0.1])
    y3, mean, _, inv_std = bn_forward(x3, gamma, beta, 1e-5, relu=True)
    y3 = y3.copy()
    dy3 = rng.standard_normal(x3.shape)
    loud = numpy.where(y3 > 0, dy3, 1e6)
    quiet = numpy.where(y3 > 0, dy3, 0.0)
    for a, b in zip(bn_backward(x3, loud, mean, inv_std, gamma, relu_out3=y3),
                    bn_backward(x3, quiet, mean, inv_std, gamma, relu_out3=y3)):
        numpy.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-12)


@given(st.lists(floats, min_size=1, max_size=40), st.sampled_from([numpy.float32, numpy.float64]))
def test_add_relu_kernels_equal_numpy_reference_bit_for_bit(values, dtype):
    from minigrad.ops.activation import add_relu_forward_numpy, relu_backward_from_output_numpy

    a = numpy.array(values, dtype=dtype)
    b = numpy.roll(a, 1) * -0.5
    z = numba_cpu.load("add_relu_forward")(a, b)
    with numpy.errstate(invalid="ignore"):                  # inf + -inf is NaN, in both
        numpy.testing.assert_array_equal(z, add_relu_forward_numpy(a, b))
    dz = numpy.linspace(-1, 1, a.size).astype(dtype)
    numpy.testing.assert_array_equal(numba_cpu.load("relu_backward_from_output")(dz, z),
                                     relu_backward_from_output_numpy(dz, z))
