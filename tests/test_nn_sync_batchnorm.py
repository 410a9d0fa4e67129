"""SyncBatchNorm in one process: its op's gradients, BatchNorm's numbers, convert_sync_batchnorm.

The runs on two MPI ranks are in tests/mpi_checks.py (check_sync_batchnorm_matches_one_process).
"""
import numpy
import pytest

import minigrad
from minigrad import nn
from minigrad.distributed.sync_batchnorm import sync_batch_norm
from minigrad.models import resnet20
from minigrad.ops.norm import batch_norm, batch_norm_relu
from test_nn_layers import compare_module, randn

SHAPES = [(6, 3), (4, 3, 2, 3), (2, 3, 2, 2, 3)]


def random_inputs(shape, seed=0):
    rng = numpy.random.default_rng(seed)
    channels = shape[1]
    return rng.standard_normal(shape) * 2 + 1, rng.uniform(0.5, 1.5, channels), rng.standard_normal(channels)


def _random_affine(layer, seed=1):
    """Non-trivial gamma, beta and running statistics, so that a swapped term would show."""
    rng = numpy.random.default_rng(seed)
    c = layer.num_features
    layer.weight.array[...] = rng.uniform(0.5, 1.5, c)
    layer.bias.array[...] = rng.standard_normal(c)
    layer.running_mean.array[...] = rng.standard_normal(c)
    layer.running_var.array[...] = rng.uniform(0.5, 2.0, c)
    return layer


class TwoIdenticalRanks:
    """A process group of 2 whose other rank holds the same batch: all_reduce doubles the buffer.
    The global batch is then [x, x], which one process can compute with plain batch norm."""
    size, rank = 2, 0

    def all_reduce(self, array, op="sum", async_op=False):
        assert op == "sum" and array.flags.c_contiguous, (op, array.flags)
        array *= 2


def leaves(*arrays):
    return [minigrad.tensor(a, requires_grad=True) for a in arrays]


# ------------------------------------------------------------------ the op
@pytest.mark.parametrize("shape", SHAPES)
def test_sync_batch_norm_gradcheck_in_one_process(shape):
    x, gamma, beta = leaves(*random_inputs(shape, seed=4))
    assert minigrad.gradcheck(lambda x, g, b: sync_batch_norm(x, None, None, g, b), [x, gamma, beta])


def test_sync_batch_norm_gradcheck_without_affine():
    (x,) = leaves(random_inputs((5, 2, 3, 3), seed=3)[0])
    assert minigrad.gradcheck(lambda x: sync_batch_norm(x, None, None), [x])


@pytest.mark.parametrize("relu", [False, True])
@pytest.mark.parametrize("shape", SHAPES)
def test_sync_batch_norm_in_one_process_equals_batch_norm(shape, relu):
    arrays = random_inputs(shape, seed=5)
    weight = numpy.random.default_rng(6).standard_normal(shape)
    results = []
    for op in (sync_batch_norm, batch_norm_relu if relu else batch_norm):
        x, gamma, beta = leaves(*arrays)
        mean, var = numpy.zeros(shape[1]), numpy.ones(shape[1])
        extra = {"relu": relu} if op is sync_batch_norm else {"training": True}
        y = op(x, mean, var, gamma, beta, momentum=0.3, **extra)
        y.backward(minigrad.tensor(weight))
        results.append([y.detach().numpy(), x.grad.numpy(), gamma.grad.numpy(), beta.grad.numpy(), mean, var])
    names = ["y", "dx", "dgamma", "dbeta", "running_mean", "running_var"]
    for name, ours, reference in zip(names, *results):
        numpy.testing.assert_allclose(ours, reference, rtol=1e-12, atol=1e-13, err_msg=name)


def test_sync_batch_norm_over_two_ranks_takes_the_global_batch_and_local_gamma_beta_gradients():
    """Two ranks holding x each: the global batch is [x, x]. y and dx are batch norm's of [x, x]
    (its first half); dgamma and dbeta are this rank's share, half of the big batch's; the running
    variance's unbiased correction uses the global count 2m."""
    shape = (3, 2, 2, 2)
    arrays = random_inputs(shape, seed=7)
    g = numpy.random.default_rng(8).standard_normal(shape)
    x, gamma, beta = leaves(*arrays)
    mean, var = numpy.zeros(2), numpy.ones(2)
    y = sync_batch_norm(x, mean, var, gamma, beta, group=TwoIdenticalRanks())
    y.backward(minigrad.tensor(g))

    big, gamma_ref, beta_ref = leaves(numpy.concatenate([arrays[0]] * 2), *arrays[1:])
    mean_ref, var_ref = numpy.zeros(2), numpy.ones(2)
    y_ref = batch_norm(big, mean_ref, var_ref, gamma_ref, beta_ref, training=True)
    y_ref.backward(minigrad.tensor(numpy.concatenate([g, g])))
    numpy.testing.assert_allclose(y.detach().numpy(), y_ref.detach().numpy()[:3], rtol=1e-12, atol=1e-13)
    numpy.testing.assert_allclose(x.grad.numpy(), big.grad.numpy()[:3], rtol=1e-12, atol=1e-13)
    numpy.testing.assert_allclose(gamma.grad.numpy(), gamma_ref.grad.numpy() / 2, rtol=1e-12)
    numpy.testing.assert_allclose(beta.grad.numpy(), beta_ref.grad.numpy() / 2, rtol=1e-12)
    numpy.testing.assert_allclose(mean, mean_ref, rtol=1e-12)
    numpy.testing.assert_allclose(var, var_ref, rtol=1e-12)


def test_sync_batch_norm_needs_two_values_per_channel_in_the_global_batch():
    with pytest.raises(ValueError, match="more than 1 value per channel"):
        sync_batch_norm(minigrad.tensor(numpy.ones((1, 3))), None, None)
    sync_batch_norm(minigrad.tensor(randn(1, 3)), None, None, group=TwoIdenticalRanks())   # 2 values: fine


# ------------------------------------------------------------------ the module in one process
@pytest.mark.parametrize("training", [True, False])
@pytest.mark.parametrize("name, shape", [("BatchNorm2d", (4, 3, 5, 5)), ("BatchNorm1d", (6, 3)),
                                         ("BatchNorm1d", (4, 3, 5))])
def test_module_in_one_process_is_exactly_batch_norm(name, shape, training):
    sync, plain = _random_affine(nn.SyncBatchNorm(3)).double(), _random_affine(getattr(nn, name)(3)).double()
    sync.train(training)
    plain.train(training)
    for step in range(3):
        x_sync, x_plain = leaves(randn(*shape, seed=step) * 2 + 1, randn(*shape, seed=step) * 2 + 1)
        y_sync, y_plain = sync(x_sync, relu=step == 1), plain(x_plain, relu=step == 1)
        numpy.testing.assert_array_equal(y_sync.detach().numpy(), y_plain.detach().numpy())
        (y_sync * y_sync).sum().backward()
        (y_plain * y_plain).sum().backward()
        numpy.testing.assert_array_equal(x_sync.grad.numpy(), x_plain.grad.numpy())
    for (key, ours), (key_plain, theirs) in zip(sync.state_dict().items(), plain.state_dict().items()):
        assert key == key_plain
        numpy.testing.assert_array_equal(ours, theirs, err_msg=key)
    for (key, p), q in zip(sync.named_parameters(), plain.parameters()):
        numpy.testing.assert_array_equal(p.grad.numpy(), q.grad.numpy(), err_msg=key)


def test_module_over_a_group_of_two_synchronises_and_counts_batches():
    layer = nn.SyncBatchNorm(2, momentum=None, process_group=TwoIdenticalRanks()).double()
    x = randn(3, 2, 4, seed=9)
    layer(minigrad.tensor(x))
    unbiased_global = x.transpose(1, 0, 2).reshape(2, -1).var(axis=1) * 24 / 23       # M = 2 * 12
    numpy.testing.assert_allclose(layer.running_var.detach().numpy(), unbiased_global, rtol=1e-12)
    assert int(layer.num_batches_tracked.item()) == 1
    layer.eval()
    layer(minigrad.tensor(x))                                                        # eval: no all_reduce, no count
    assert int(layer.num_batches_tracked.item()) == 1


def test_module_accepts_2d_to_5d_input_and_names_a_wrong_one():
    layer = nn.SyncBatchNorm(3).double()
    for shape in [(4, 3), (2, 3, 4), (2, 3, 2, 2), (2, 3, 2, 2, 2)]:
        assert layer(minigrad.tensor(randn(*shape))).shape == shape
    with pytest.raises(ValueError, match=r"SyncBatchNorm\(3\): expected a 2-D or 3-D or 4-D or 5-D input"):
        layer(minigrad.tensor(randn(3)))
    with pytest.raises(ValueError, match="expected input with 3 channels"):
        layer(minigrad.tensor(randn(2, 4, 2, 2)))


def test_module_has_pytorchs_signature():
    group = TwoIdenticalRanks()
    layer = nn.SyncBatchNorm(4, 1e-3, 0.2, False, False, group)
    assert (layer.eps, layer.momentum, layer.affine, layer.track_running_stats) == (1e-3, 0.2, False, False)
    assert layer.process_group is group and layer.state_dict() == {}


# ------------------------------------------------------------------ convert_sync_batchnorm
def _small_resnet(seed=0):
    minigrad.manual_seed(seed)
    model = resnet20(num_classes=4).double()
    for index, module in enumerate(model.modules()):
        if isinstance(module, nn.BatchNorm2d):
            _random_affine(module, seed=index)
    return model


def test_convert_replaces_every_batch_norm_and_keeps_state_dict_and_outputs():
    model, reference = _small_resnet(), _small_resnet()
    before = model.state_dict()
    count = sum(isinstance(m, nn.BatchNorm2d) for m in model.modules())
    converted = nn.SyncBatchNorm.convert_sync_batchnorm(model)
    assert converted is model                                        # the root is not a BatchNorm
    assert sum(isinstance(m, nn.SyncBatchNorm) for m in converted.modules()) == count > 0
    assert not any(isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d)) for m in converted.modules())
    after = converted.state_dict()
    assert list(after) == list(before)
    for key in before:
        numpy.testing.assert_array_equal(after[key], before[key], err_msg=key)
    x = randn(4, 3, 8, 8, seed=10)
    for training in (True, False):
        converted.train(training)
        reference.train(training)
        numpy.testing.assert_array_equal(converted(minigrad.tensor(x)).detach().numpy(),
                                         reference(minigrad.tensor(x)).detach().numpy())


def test_convert_carries_every_setting_and_shares_the_tensors():
    bn = nn.BatchNorm1d(3, eps=1e-3, momentum=None).double().eval()
    bn.num_batches_tracked.array[...] = 7
    sync = nn.SyncBatchNorm.convert_sync_batchnorm(nn.Sequential(bn))[0]
    assert isinstance(sync, nn.SyncBatchNorm) and not sync.training
    assert (sync.eps, sync.momentum, sync.affine, sync.track_running_stats) == (1e-3, None, True, True)
    for name in ("weight", "bias", "running_mean", "running_var", "num_batches_tracked"):
        assert getattr(sync, name) is getattr(bn, name), name        # an optimizer built before still works
    root = nn.SyncBatchNorm.convert_sync_batchnorm(nn.BatchNorm2d(2, affine=False, track_running_stats=False),
                                                   process_group="group")
    assert isinstance(root, nn.SyncBatchNorm) and root.process_group == "group"
    assert root.weight is None and root.running_mean is None and root.state_dict() == {}


def test_convert_keeps_a_shared_layer_shared():
    bn = nn.BatchNorm2d(2)
    model = nn.Sequential(bn, nn.ReLU(), bn)
    converted = nn.SyncBatchNorm.convert_sync_batchnorm(model)
    assert isinstance(converted[0], nn.SyncBatchNorm) and converted[0] is converted[2]


def test_checkpoints_load_either_way():
    plain, sync = _small_resnet(seed=1), nn.SyncBatchNorm.convert_sync_batchnorm(_small_resnet(seed=2))
    sync.load_state_dict(plain.state_dict())
    back = _small_resnet(seed=3)
    back.load_state_dict(sync.state_dict())
    for key, value in plain.state_dict().items():
        numpy.testing.assert_array_equal(back.state_dict()[key], value, err_msg=key)


# ------------------------------------------------------------------ PyTorch
@pytest.mark.parametrize("training", [True, False])
@pytest.mark.parametrize("torch_name", ["BatchNorm2d", "SyncBatchNorm"])
def test_module_matches_torch_in_float64(torch_name, training):
    torch = pytest.importorskip("torch")
    ours, theirs = _random_affine(nn.SyncBatchNorm(3)).double(), getattr(torch.nn, torch_name)(3)
    ours.train(training)
    theirs.train(training)
    compare_module(ours, theirs, randn(4, 3, 5, 5) * 2 + 1)


def test_sync_op_matches_torch_batch_norm_in_float64():
    torch = pytest.importorskip("torch")
    from torch_compare import compare_with_torch
    x, gamma, beta = random_inputs((4, 3, 2, 3), seed=11)
    compare_with_torch(
        lambda mg, x, g, b: sync_batch_norm(x, numpy.zeros(3), numpy.ones(3), g, b),
        [x, gamma, beta],
        torch_fn=lambda t, x, g, b: torch.nn.functional.batch_norm(
            x, torch.zeros(3, dtype=torch.float64), torch.ones(3, dtype=torch.float64), g, b, training=True),
        rtol=1e-10,
    )


def test_convert_matches_torchs_state_dict_keys():
    torch = pytest.importorskip("torch")
    ours = nn.SyncBatchNorm.convert_sync_batchnorm(nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4)))
    theirs = torch.nn.SyncBatchNorm.convert_sync_batchnorm(
        torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.BatchNorm2d(4)))
    assert type(theirs[1]).__name__ == type(ours[1]).__name__ == "SyncBatchNorm"
    assert list(ours.state_dict()) == list(theirs.state_dict())
