"""BatchNorm1d/2d and Dropout: against torch, and how train()/eval() switch their behaviour."""
import numpy
import pytest

import minigrad
from minigrad import nn
from test_nn_layers import compare_module, randn


def _random_affine(layer, seed=1):
    """Non-trivial gamma, beta and running statistics, so that a swapped term would show."""
    rng = numpy.random.default_rng(seed)
    c = layer.num_features
    layer.weight.array[...] = rng.uniform(0.5, 1.5, c)
    layer.bias.array[...] = rng.standard_normal(c)
    layer.running_mean.array[...] = rng.standard_normal(c)
    layer.running_var.array[...] = rng.uniform(0.5, 2.0, c)
    return layer


@pytest.mark.parametrize("name, shape", [("BatchNorm2d", (4, 3, 5, 5)), ("BatchNorm1d", (6, 3)), ("BatchNorm1d", (4, 3, 5))])
@pytest.mark.parametrize("training", [True, False])
def test_batchnorm_matches_torch(name, shape, training):
    torch = pytest.importorskip("torch")
    ours, theirs = _random_affine(getattr(nn, name)(3)).double(), getattr(torch.nn, name)(3)
    ours.train(training)
    theirs.train(training)
    compare_module(ours, theirs, randn(*shape))


def test_batchnorm_running_statistics_match_torch_after_training_steps():
    torch = pytest.importorskip("torch")
    ours, theirs = nn.BatchNorm2d(3, momentum=0.3).double(), torch.nn.BatchNorm2d(3, momentum=0.3).double()
    for step in range(3):
        x = randn(4, 3, 2, 2, seed=step) * 2 + 1
        ours(minigrad.tensor(x))
        theirs(torch.tensor(x))
    for key, value in theirs.state_dict().items():
        numpy.testing.assert_allclose(ours.state_dict()[key], value.detach().numpy(), rtol=1e-10, err_msg=key)


def test_batchnorm_momentum_none_is_cumulative_average_like_torch():
    torch = pytest.importorskip("torch")
    ours, theirs = nn.BatchNorm1d(2, momentum=None).double(), torch.nn.BatchNorm1d(2, momentum=None).double()
    for step in range(3):
        x = randn(5, 2, seed=step) + step
        ours(minigrad.tensor(x))
        theirs(torch.tensor(x))
    numpy.testing.assert_allclose(ours.running_mean.detach().numpy(), theirs.running_mean.detach().numpy(), rtol=1e-10)
    numpy.testing.assert_allclose(ours.running_var.detach().numpy(), theirs.running_var.detach().numpy(), rtol=1e-10)


def test_batchnorm_counts_batches_only_in_training():
    layer = nn.BatchNorm1d(2)
    x = minigrad.randn(4, 2)
    layer(x)
    layer(x)
    layer.eval()
    layer(x)
    assert int(layer.num_batches_tracked.item()) == 2


def test_batchnorm_eval_uses_running_statistics_and_leaves_them_alone():
    layer = nn.BatchNorm1d(2).double().eval()
    layer.running_mean.array[...] = [1.0, -1.0]
    layer.running_var.array[...] = [4.0, 9.0]
    y = layer(minigrad.tensor(numpy.array([[3.0, 2.0]])))
    numpy.testing.assert_allclose(y.detach().numpy(), [[2.0 / numpy.sqrt(4 + 1e-5), 3.0 / numpy.sqrt(9 + 1e-5)]])
    numpy.testing.assert_array_equal(layer.running_mean.detach().numpy(), [1.0, -1.0])


def test_batchnorm_train_normalises_each_channel_with_batch_statistics():
    layer = nn.BatchNorm2d(3).double()
    y = layer(minigrad.tensor(randn(8, 3, 4, 4) * 5 + 3)).detach().numpy()
    numpy.testing.assert_allclose(y.mean(axis=(0, 2, 3)), 0, atol=1e-12)
    numpy.testing.assert_allclose(y.var(axis=(0, 2, 3)), 1, rtol=1e-3)


def test_batchnorm_without_affine_has_no_parameters_but_buffers():
    torch = pytest.importorskip("torch")
    layer = nn.BatchNorm2d(3, affine=False)
    assert list(layer.parameters()) == []
    assert list(layer.state_dict()) == ["running_mean", "running_var", "num_batches_tracked"]
    compare_module(layer, torch.nn.BatchNorm2d(3, affine=False), randn(2, 3, 3, 3))


def test_batchnorm_without_running_stats_uses_batch_statistics_in_eval():
    torch = pytest.importorskip("torch")
    ours = nn.BatchNorm2d(3, track_running_stats=False).eval()
    assert list(ours.state_dict()) == ["weight", "bias"]
    compare_module(ours, torch.nn.BatchNorm2d(3, track_running_stats=False).eval(), randn(2, 3, 3, 3))


def test_batchnorm_gradcheck_in_training_mode():
    layer = _random_affine(nn.BatchNorm2d(2)).double()
    x = minigrad.tensor(randn(3, 2, 2, 2), requires_grad=True)
    assert minigrad.gradcheck(lambda x, w, b: nn.functional.batch_norm(
        x, None, None, w, b, training=True), [x, layer.weight, layer.bias])


def test_batchnorm_error_names_layer_channels_and_shape():
    with pytest.raises(ValueError, match=r"BatchNorm2d\(16\).*16 channels.*\(2, 8, 4, 4\)"):
        nn.BatchNorm2d(16)(minigrad.randn(2, 8, 4, 4))


def test_batchnorm2d_rejects_a_2d_input():
    with pytest.raises(ValueError, match=r"BatchNorm2d\(4\).*4-D.*\(2, 4\)"):
        nn.BatchNorm2d(4)(minigrad.randn(2, 4))


def test_batchnorm_repr_lists_its_options_like_torch():
    assert repr(nn.BatchNorm2d(8, momentum=0.2)) == (
        "BatchNorm2d(8, eps=1e-05, momentum=0.2, affine=True, track_running_stats=True)")


# ---------------------------------------------------------------- Dropout
def test_dropout_in_training_zeroes_about_p_and_scales_the_rest():
    minigrad.manual_seed(0)
    y = nn.Dropout(0.25)(minigrad.ones(200, 100)).detach().numpy()
    assert abs((y == 0).mean() - 0.25) < 0.02
    numpy.testing.assert_allclose(y[y != 0], 1 / 0.75, rtol=1e-6)


def test_dropout_in_eval_is_identity():
    x = minigrad.randn(10, 10)
    numpy.testing.assert_array_equal(nn.Dropout(0.5).eval()(x).detach().numpy(), x.detach().numpy())


def test_dropout_backward_uses_the_same_mask():
    minigrad.manual_seed(1)
    x = minigrad.randn(20, 20, requires_grad=True)
    y = nn.Dropout(0.5)(x)
    y.sum().backward()
    numpy.testing.assert_array_equal(x.grad.numpy() != 0, y.detach().numpy() != 0)


def test_dropout_rejects_probability_outside_unit_interval():
    with pytest.raises(ValueError, match="Dropout.*p must be in"):
        nn.Dropout(1.5)


def test_batch_norm2d_relu_true_is_relu_of_the_layer_in_train_and_eval():
    """bn(x, relu=True), the fused path the ResNets use, equals relu(bn(x)), and updates the running
    statistics and the batch counter the same way."""
    from minigrad.nn.functional import relu

    rng = numpy.random.default_rng(31)
    x = minigrad.tensor(rng.standard_normal((64, 3, 40, 40)).astype(numpy.float32))   # 1.2 MiB: the Numba kernels
    fused, plain = minigrad.nn.BatchNorm2d(3), minigrad.nn.BatchNorm2d(3)
    for module in (fused, plain):
        module.weight.array[...] = numpy.array([1.0, -2.0, 0.5], numpy.float32)
        module.bias.array[...] = numpy.array([0.1, 0.0, -0.3], numpy.float32)
    for training in (True, False):
        fused.train(training)
        plain.train(training)
        numpy.testing.assert_array_equal(fused(x, relu=True).detach().numpy(), relu(plain(x)).detach().numpy())
    for name in ("running_mean", "running_var", "num_batches_tracked"):
        numpy.testing.assert_array_equal(getattr(fused, name).detach().numpy(), getattr(plain, name).detach().numpy(), err_msg=name)
