"""The Module API: registration, names, walking the tree, modes, zero_grad, to(), state_dict, save/load, repr."""
import os

import numpy
import pytest

import minigrad
from minigrad import nn


class Block(nn.Module):
    """conv -> bn -> relu, with a projection; a small tree with parameters AND buffers."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(2, 3, 3, padding=1, bias=False)
        self.bn = nn.BatchNorm2d(3)
        self.head = nn.Sequential(nn.Flatten(), nn.Linear(3 * 4 * 4, 2))
        self.drop = nn.Dropout(0.5)

    def forward(self, x):
        return self.head(self.drop(self.bn(self.conv(x)).relu()))


def torch_block(torch):
    class TorchBlock(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = torch.nn.Conv2d(2, 3, 3, padding=1, bias=False)
            self.bn = torch.nn.BatchNorm2d(3)
            self.head = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(3 * 4 * 4, 2))
            self.drop = torch.nn.Dropout(0.5)
    return TorchBlock()


# ---------------------------------------------------------------- registration and names
def test_setting_a_parameter_attribute_registers_it():
    module = nn.Module()
    module.w = nn.Parameter(minigrad.zeros(3))
    module.not_a_param = minigrad.zeros(3)
    assert [name for name, _ in module.named_parameters()] == ["w"]


def test_parameter_requires_grad_by_default_and_is_a_tensor():
    p = nn.Parameter(minigrad.zeros(2))
    assert p.requires_grad and isinstance(p, minigrad.Tensor)
    assert not nn.Parameter(minigrad.zeros(2), requires_grad=False).requires_grad


def test_named_parameters_match_torch_names():
    torch = pytest.importorskip("torch")
    ours = [name for name, _ in Block().named_parameters()]
    assert ours == [name for name, _ in torch_block(torch).named_parameters()]


def test_state_dict_keys_match_torch_including_buffers():
    torch = pytest.importorskip("torch")
    assert list(Block().state_dict()) == list(torch_block(torch).state_dict())


def test_named_modules_and_children_match_torch():
    torch = pytest.importorskip("torch")
    ours, theirs = Block(), torch_block(torch)
    assert [n for n, _ in ours.named_modules()] == [n for n, _ in theirs.named_modules()]
    assert [n for n, _ in ours.named_children()] == [n for n, _ in theirs.named_children()]
    assert len(list(ours.children())) == 4 and len(list(ours.modules())) == 7


def test_shared_parameter_is_listed_once():
    model = nn.Sequential(nn.Linear(2, 2), nn.Linear(2, 2))
    model[1].weight = model[0].weight
    assert len(list(model.parameters())) == 3


def test_buffers_are_in_state_dict_but_not_in_parameters():
    bn = nn.BatchNorm1d(4)
    parameter_ids = {id(p) for p in bn.parameters()}
    assert id(bn.running_mean) not in parameter_ids and id(bn.running_var) not in parameter_ids
    assert {"running_mean", "running_var", "num_batches_tracked"} <= set(bn.state_dict())
    assert [name for name, _ in bn.named_buffers()] == ["running_mean", "running_var", "num_batches_tracked"]


def test_non_persistent_buffer_is_not_saved():
    module = nn.Module()
    module.register_buffer("scratch", minigrad.zeros(2), persistent=False)
    assert list(module.state_dict()) == [] and len(list(module.buffers())) == 1


def test_assigning_parameter_before_init_is_a_clear_error():
    class Broken(nn.Module):
        def __init__(self):
            self.w = nn.Parameter(minigrad.zeros(1))

    with pytest.raises(AttributeError, match=r"add super\(\)\.__init__\(\)"):
        Broken()


def test_deleting_an_attribute_unregisters_it():
    layer = nn.Linear(2, 2)
    del layer.bias
    assert [name for name, _ in layer.named_parameters()] == ["weight"]


# ---------------------------------------------------------------- modes and grads
def test_train_and_eval_switch_every_submodule():
    model = Block()
    assert all(m.training for m in model.modules())
    model.eval()
    assert not any(m.training for m in model.modules())
    model.train()
    assert all(m.training for m in model.modules())


def test_eval_makes_forward_deterministic_and_train_does_not():
    minigrad.manual_seed(0)
    model, x = Block(), minigrad.randn(4, 2, 4, 4)
    assert not numpy.array_equal(model(x).detach().numpy(), model(x).detach().numpy())     # dropout + batch stats
    model.eval()
    numpy.testing.assert_array_equal(model(x).detach().numpy(), model(x).detach().numpy())


def test_eval_stops_batchnorm_updating_running_statistics():
    model = Block().eval()
    before = model.bn.running_mean.detach().numpy().copy()
    model(minigrad.randn(2, 2, 4, 4))
    numpy.testing.assert_array_equal(model.bn.running_mean.detach().numpy(), before)


def test_zero_grad_sets_grads_to_none_by_default():
    model = nn.Linear(3, 2)
    model(minigrad.randn(4, 3)).sum().backward()
    model.zero_grad()
    assert all(p.grad is None for p in model.parameters())


def test_zero_grad_without_set_to_none_zeroes_in_place():
    model = nn.Linear(3, 2)
    model(minigrad.randn(4, 3)).sum().backward()
    grad = model.weight.grad
    model.zero_grad(set_to_none=False)
    assert model.weight.grad is grad and not grad.detach().numpy().any()


# ---------------------------------------------------------------- to()
def test_to_dtype_keeps_parameter_identity_and_casts_float_buffers_only():
    model = Block()
    before = [id(p) for p in model.parameters()]
    assert model.double() is model
    assert [id(p) for p in model.parameters()] == before
    assert all(p.dtype == numpy.float64 for p in model.parameters())
    assert model.bn.running_var.dtype == numpy.float64
    assert model.bn.num_batches_tracked.dtype == numpy.int64


def test_to_same_device_keeps_identity_and_values():
    model = nn.Linear(3, 2)
    weight, values = model.weight, model.weight.detach().numpy().copy()
    model.to("cpu")
    assert model.weight is weight
    numpy.testing.assert_array_equal(model.weight.detach().numpy(), values)


def test_optimizer_built_before_to_still_updates_the_model():
    model = nn.Linear(3, 1)
    optimizer = minigrad.optim.SGD(model.parameters(), lr=0.1)
    model.double()
    before = model.weight.detach().numpy().copy()
    model(minigrad.randn(4, 3, dtype=numpy.float64)).sum().backward()
    optimizer.step()
    assert not numpy.array_equal(model.weight.detach().numpy(), before)


@pytest.mark.gpu
def test_to_gpu_moves_parameters_and_buffers_keeping_identity():
    model = Block()
    weight, running_mean = model.conv.weight, model.bn.running_mean
    model.to("gpu")
    assert model.conv.weight is weight and weight.device == "gpu"
    assert model.bn.running_mean is running_mean and running_mean.device == "gpu"
    assert model(minigrad.randn(2, 2, 4, 4, device="gpu")).device == "gpu"
    model.to("cpu")
    assert weight.device == "cpu" and model.bn.num_batches_tracked.device == "cpu"


# ---------------------------------------------------------------- state_dict
def test_state_dict_values_are_copies():
    model = nn.Linear(2, 2)
    state = model.state_dict()
    state["weight"][...] = 7
    assert not (model.weight.detach().numpy() == 7).any()


def test_load_state_dict_copies_values_in_place():
    source, target = nn.Linear(3, 2), nn.Linear(3, 2)
    weight = target.weight
    target.load_state_dict(source.state_dict())
    assert target.weight is weight
    numpy.testing.assert_array_equal(target.weight.detach().numpy(), source.weight.detach().numpy())


def test_load_state_dict_loads_a_torch_state_dict():
    torch = pytest.importorskip("torch")
    theirs, ours = torch_block(torch), Block()
    ours.load_state_dict({k: v.detach().numpy() for k, v in theirs.state_dict().items()})
    numpy.testing.assert_array_equal(ours.head[1].weight.detach().numpy(), theirs.head[1].weight.detach().numpy())


def test_load_state_dict_reports_missing_unexpected_and_mismatched_keys_at_once():
    model = nn.Sequential(nn.Linear(3, 2), nn.BatchNorm1d(2))
    state = model.state_dict()
    del state["0.bias"], state["1.running_var"]
    state["2.weight"] = numpy.zeros(1)
    state["0.weight"] = numpy.zeros((5, 3))
    with pytest.raises(RuntimeError) as error:
        model.load_state_dict(state)
    message = str(error.value)
    assert "missing keys: 0.bias, 1.running_var" in message
    assert "unexpected keys: 2.weight" in message
    assert "0.weight: checkpoint shape (5, 3), model shape (2, 3)" in message


def test_load_state_dict_changes_nothing_when_it_fails():
    model = nn.Linear(3, 2)
    before = model.weight.detach().numpy().copy()
    state = {"weight": numpy.zeros((2, 3))}
    with pytest.raises(RuntimeError, match="missing keys: bias"):
        model.load_state_dict(state)
    numpy.testing.assert_array_equal(model.weight.detach().numpy(), before)


def test_load_state_dict_non_strict_returns_missing_and_unexpected_keys():
    model = nn.Linear(3, 2)
    result = model.load_state_dict({"weight": numpy.ones((2, 3)), "extra": numpy.ones(1)}, strict=False)
    assert result.missing_keys == ["bias"] and result.unexpected_keys == ["extra"]
    assert (model.weight.detach().numpy() == 1).all()


def test_load_state_dict_non_strict_still_rejects_wrong_shapes():
    with pytest.raises(RuntimeError, match="weight: checkpoint shape"):
        nn.Linear(3, 2).load_state_dict({"weight": numpy.ones((3, 3))}, strict=False)


def test_save_and_load_round_trip_through_npz(tmp_path):
    model, fresh = Block(), Block()
    model(minigrad.randn(4, 2, 4, 4))                     # move the running statistics
    path = tmp_path / "block.npz"
    model.save(path)
    fresh.load(path)
    for key, value in model.state_dict().items():
        numpy.testing.assert_array_equal(fresh.state_dict()[key], value, err_msg=key)


def test_save_is_atomic_and_leaves_no_temporary_file(tmp_path):
    path = tmp_path / "model.npz"
    nn.Linear(2, 2).save(path)
    nn.Linear(2, 3).save(path)                            # overwrite
    assert os.listdir(tmp_path) == ["model.npz"]
    assert numpy.load(path)["weight"].shape == (3, 2)


# ---------------------------------------------------------------- repr
def test_repr_prints_the_tree_like_torch():
    torch = pytest.importorskip("torch")
    ours = nn.Sequential(nn.Linear(4, 3), nn.ReLU(), nn.Sequential(nn.Linear(3, 2), nn.Tanh()))
    theirs = torch.nn.Sequential(torch.nn.Linear(4, 3), torch.nn.ReLU(),
                                 torch.nn.Sequential(torch.nn.Linear(3, 2), torch.nn.Tanh()))
    assert repr(ours) == repr(theirs)


def test_parameter_repr_says_parameter():
    assert repr(nn.Parameter(minigrad.zeros(2))).startswith("Parameter containing:\ntensor(")


@pytest.mark.parametrize("value, message", [(1e300, r"weight: its largest magnitude 1e\+300 overflows float32"),
                                            (numpy.inf, "weight: holds inf or NaN"),
                                            (numpy.nan, "weight: holds inf or NaN")])
def test_load_state_dict_refuses_values_that_are_not_finite_in_the_models_dtype(value, message):
    model = nn.Linear(2, 2)
    before = model.weight.detach().numpy().copy()
    state = {key: numpy.asarray(array, dtype=numpy.float64) for key, array in model.state_dict().items()}
    state["weight"][0, 0] = value
    with pytest.raises(RuntimeError, match=message):
        model.load_state_dict(state)
    numpy.testing.assert_array_equal(model.weight.detach().numpy(), before)          # nothing was changed
