"""batch_norm: training and evaluation values, analytic gradients, running statistics, errors."""
import numpy
import pytest

import minigrad
from minigrad.ops.norm import batch_norm
from torch_compare import compare_with_torch

SHAPES = [(6, 3), (4, 3, 2, 3)]


def random_inputs(shape, seed=0):
    rng = numpy.random.default_rng(seed)
    channels = shape[1]
    return rng.standard_normal(shape) * 2 + 1, rng.standard_normal(channels), rng.standard_normal(channels)


# ------------------------------------------------------------------ PyTorch
@pytest.mark.parametrize("shape", SHAPES)
def test_batch_norm_training_matches_torch_values_and_gradients(shape):
    torch = pytest.importorskip("torch")
    x, gamma, beta = random_inputs(shape)
    channels = shape[1]
    compare_with_torch(
        lambda mg, x, g, b: batch_norm(x, numpy.zeros(channels), numpy.ones(channels), g, b, training=True),
        [x, gamma, beta],
        torch_fn=lambda t, x, g, b: torch.nn.functional.batch_norm(
            x, torch.zeros(channels, dtype=torch.float64), torch.ones(channels, dtype=torch.float64), g, b,
            training=True,
        ),
    )


@pytest.mark.parametrize("shape", SHAPES)
def test_batch_norm_eval_matches_torch_values_and_gradients(shape):
    torch = pytest.importorskip("torch")
    x, gamma, beta = random_inputs(shape, seed=1)
    rng = numpy.random.default_rng(2)
    mean, var = rng.standard_normal(shape[1]), rng.uniform(0.5, 2, shape[1])
    compare_with_torch(
        lambda mg, x, g, b: batch_norm(x, mean.copy(), var.copy(), g, b, training=False),
        [x, gamma, beta],
        torch_fn=lambda t, x, g, b: torch.nn.functional.batch_norm(
            x, torch.tensor(mean), torch.tensor(var), g, b, training=False
        ),
    )


@pytest.mark.parametrize("shape", SHAPES)
def test_batch_norm_running_statistics_match_torch_after_several_steps(shape):
    torch = pytest.importorskip("torch")
    channels = shape[1]
    ours_mean, ours_var = minigrad.zeros(channels, dtype=numpy.float64), minigrad.ones(channels, dtype=numpy.float64)
    torch_mean = torch.zeros(channels, dtype=torch.float64)
    torch_var = torch.ones(channels, dtype=torch.float64)
    for step in range(4):
        x, gamma, beta = random_inputs(shape, seed=10 + step)
        batch_norm(minigrad.tensor(x), ours_mean, ours_var, minigrad.tensor(gamma), minigrad.tensor(beta),
                   training=True, momentum=0.3)
        torch.nn.functional.batch_norm(torch.tensor(x), torch_mean, torch_var, torch.tensor(gamma),
                                       torch.tensor(beta), training=True, momentum=0.3)
    numpy.testing.assert_allclose(ours_mean.detach().numpy(), torch_mean.detach().numpy(), rtol=1e-12)
    numpy.testing.assert_allclose(ours_var.detach().numpy(), torch_var.detach().numpy(), rtol=1e-12)


def test_batch_norm_without_affine_matches_torch():
    torch = pytest.importorskip("torch")
    x, _, _ = random_inputs((5, 2, 3, 3), seed=3)
    compare_with_torch(
        lambda mg, x: batch_norm(x, None, None, training=True), [x],
        torch_fn=lambda t, x: torch.nn.functional.batch_norm(x, None, None, training=True),
    )


# ------------------------------------------------------------------ gradcheck
@pytest.mark.parametrize("shape", SHAPES)
def test_batch_norm_training_gradcheck(shape):
    x, gamma, beta = (minigrad.tensor(a, requires_grad=True) for a in random_inputs(shape, seed=4))
    channels = shape[1]
    assert minigrad.gradcheck(
        lambda x, g, b: batch_norm(x, numpy.zeros(channels), numpy.ones(channels), g, b, training=True),
        [x, gamma, beta],
    )


@pytest.mark.parametrize("shape", SHAPES)
def test_batch_norm_eval_gradcheck(shape):
    x, gamma, beta = (minigrad.tensor(a, requires_grad=True) for a in random_inputs(shape, seed=5))
    mean, var = numpy.full(shape[1], 0.3), numpy.full(shape[1], 1.7)
    assert minigrad.gradcheck(lambda x, g, b: batch_norm(x, mean, var, g, b, training=False), [x, gamma, beta])


# ------------------------------------------------------------------ behaviour
def test_batch_norm_training_output_has_zero_mean_and_unit_variance_per_channel():
    x, _, _ = random_inputs((8, 3, 2, 2), seed=6)
    y = batch_norm(minigrad.tensor(x), None, None, training=True).detach().numpy()
    numpy.testing.assert_allclose(y.mean(axis=(0, 2, 3)), 0, atol=1e-12)
    numpy.testing.assert_allclose(y.var(axis=(0, 2, 3)), 1, rtol=1e-4)  # eps = 1e-5 shrinks it slightly


def test_batch_norm_running_var_uses_the_unbiased_batch_variance():
    x = numpy.array([[1.0], [2.0], [4.0]])  # one channel, M = 3
    running_mean, running_var = numpy.zeros(1), numpy.zeros(1)
    batch_norm(minigrad.tensor(x), running_mean, running_var, training=True, momentum=1.0)
    assert running_mean[0] == pytest.approx(7 / 3)
    assert running_var[0] == pytest.approx(x.var(ddof=1))


def test_batch_norm_eval_leaves_running_statistics_unchanged():
    running_mean, running_var = numpy.array([0.5, -0.5]), numpy.array([2.0, 3.0])
    batch_norm(minigrad.randn(4, 2), running_mean, running_var, training=False)
    numpy.testing.assert_array_equal(running_mean, [0.5, -0.5])
    numpy.testing.assert_array_equal(running_var, [2.0, 3.0])


def test_batch_norm_keeps_float32():
    x = minigrad.randn(4, 3, 2, 2)
    y = batch_norm(x, numpy.zeros(3, numpy.float32), numpy.ones(3, numpy.float32), minigrad.ones(3),
                   minigrad.zeros(3), training=True)
    assert y.dtype == numpy.float32


def test_batch_norm_weight_of_wrong_shape_is_an_error():
    with pytest.raises(ValueError, match=r"batch_norm: weight must have shape \(3,\) .* got \(4,\)"):
        batch_norm(minigrad.randn(4, 3), None, None, minigrad.ones(4), training=True)


def test_batch_norm_training_with_one_value_per_channel_is_an_error():
    with pytest.raises(ValueError, match=r"batch_norm: training needs more than 1 value per channel"):
        batch_norm(minigrad.randn(1, 3), None, None, training=True)


def test_batch_norm_eval_without_running_statistics_is_an_error():
    with pytest.raises(ValueError, match=r"batch_norm: running_mean and running_var are required"):
        batch_norm(minigrad.randn(4, 3), None, None, training=False)


# ------------------------------------------------------------------ batch_norm_relu (fused)
def _unfused(x, mean, var, gamma, beta, training):
    return minigrad.nn.functional.relu(batch_norm(x, mean, var, gamma, beta, training=training))


@pytest.mark.parametrize("training", [True, False])
@pytest.mark.parametrize("shape", [(6, 3), (4, 3, 2, 3), (32, 16, 32, 32)])
def test_batch_norm_relu_equals_relu_of_batch_norm(shape, training):
    """The fused op gives relu(batch_norm(x)): values, gradients and running statistics. (32, 16, 32, 32)
    in float32 is 2 MiB, past tuning.ELEMENTWISE_NUMPY_BELOW_BYTES, so training takes the Numba kernels;
    the small shapes take the NumPy path."""
    from minigrad.ops.norm import batch_norm_relu

    if shape[0] == 32 and training:
        from minigrad.fast import tuning
        assert 4 * numpy.prod(shape) >= tuning.ELEMENTWISE_NUMPY_BELOW_BYTES

    x_np, gamma_np, beta_np = random_inputs(shape, seed=20)
    x_np = x_np.astype(numpy.float32)
    rng = numpy.random.default_rng(21)
    dz = rng.standard_normal(shape).astype(numpy.float32)
    results = []
    for op in (batch_norm_relu, _unfused):
        x = minigrad.tensor(x_np, requires_grad=True)
        g = minigrad.tensor(gamma_np.astype(numpy.float32), requires_grad=True)
        b = minigrad.tensor(beta_np.astype(numpy.float32), requires_grad=True)
        mean, var = minigrad.zeros(shape[1]), minigrad.ones(shape[1]) * 1.5
        z = op(x, mean, var, g, b, training)
        z.backward(dz)
        results.append([z.detach().numpy().copy(), x.grad.numpy(), g.grad.numpy(), b.grad.numpy(), mean.detach().numpy(), var.detach().numpy()])
    fused, unfused = results
    numpy.testing.assert_array_equal(fused[0], unfused[0], err_msg="z")
    assert (fused[0] >= 0).all() and (fused[0] == 0).any()
    for name, a, b in zip(["dx", "dgamma", "dbeta", "running_mean", "running_var"], fused[1:], unfused[1:]):
        numpy.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-4 * (1 + numpy.abs(b).max()), err_msg=name)


@pytest.mark.parametrize("training", [True, False])
def test_batch_norm_relu_gradcheck(training):
    from minigrad.ops.norm import batch_norm_relu

    shape = (4, 3, 2, 3)
    x, gamma, beta = (minigrad.tensor(a, requires_grad=True) for a in random_inputs(shape, seed=22))
    mean, var = numpy.full(3, 0.3), numpy.full(3, 1.7)
    assert minigrad.gradcheck(lambda x, g, b: batch_norm_relu(x, mean.copy(), var.copy(), g, b, training=training),
                              [x, gamma, beta])


@pytest.mark.parametrize("training", [True, False])
def test_batch_norm_relu_matches_torch(training):
    torch = pytest.importorskip("torch")
    from minigrad.ops.norm import batch_norm_relu

    shape = (5, 3, 2, 2)
    x, gamma, beta = random_inputs(shape, seed=23)
    mean, var = numpy.full(3, 0.5), numpy.full(3, 1.2)
    compare_with_torch(
        lambda mg, x, g, b: batch_norm_relu(x, mean.copy(), var.copy(), g, b, training=training),
        [x, gamma, beta],
        torch_fn=lambda t, x, g, b: torch.relu(torch.nn.functional.batch_norm(
            x, torch.tensor(mean), torch.tensor(var), g, b, training=training)),
    )


@pytest.mark.parametrize("shape", [(4, 2, 3, 3), (32, 2, 64, 64)])     # the NumPy path; the Numba kernels
def test_batch_norm_relu_keeps_nan_as_nan_like_relu(shape):
    """A NaN in channel 1 makes its statistics NaN: the fused op gives what relu(batch_norm) gives,
    NaN outputs in that channel, the other channel untouched, and finite-or-NaN gradients alike."""
    from minigrad.ops.norm import batch_norm_relu

    rng = numpy.random.default_rng(24)
    x_np = rng.standard_normal(shape).astype(numpy.float32)
    x_np[0, 1, 0, 0] = numpy.nan
    dz = rng.standard_normal(shape).astype(numpy.float32)
    results = []
    for fused in (True, False):
        x = minigrad.tensor(x_np, requires_grad=True)
        z = (batch_norm_relu(x, None, None, training=True) if fused
             else _unfused(x, None, None, None, None, True))
        z.backward(dz)
        results.append((z.detach().numpy().copy(), x.grad.numpy()))
    (z_fused, dx_fused), (z_plain, dx_plain) = results
    assert numpy.isnan(z_fused[:, 1]).all() and not numpy.isnan(z_fused[:, 0]).any()
    numpy.testing.assert_array_equal(z_fused, z_plain)
    numpy.testing.assert_array_equal(numpy.isnan(dx_fused), numpy.isnan(dx_plain))
    numpy.testing.assert_allclose(dx_fused[:, 0], dx_plain[:, 0], rtol=1e-4, atol=1e-5)
