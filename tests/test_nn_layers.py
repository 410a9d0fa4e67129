"""Layers against torch.nn with the same weights: Linear, Conv2d, pooling, Flatten, Identity, activations.

`compare_module` (also used by the other test_nn_* files) copies our state_dict
into the torch module with strict=True, so it also checks that our parameter
and buffer names are torch's, then compares outputs and the gradients of the
inputs AND of every parameter through tests/torch_compare.py in float64.
"""
import contextlib

import numpy
import pytest
from hypothesis import given, strategies as st

import minigrad
from minigrad import nn
from torch_compare import compare_with_torch


@contextlib.contextmanager
def swapped_parameters(module, tensors):
    """Temporarily use `tensors` (dotted name -> Tensor) in place of the module's parameters."""
    saved = []
    for name, tensor in tensors.items():
        owner_name, _, leaf = name.rpartition(".")
        owner = module.get_submodule(owner_name)
        saved.append((owner, leaf, owner._parameters[leaf]))
        owner._parameters[leaf] = tensor
    try:
        yield
    finally:
        for owner, leaf, parameter in saved:
            owner._parameters[leaf] = parameter


def compare_module(ours, theirs, *arrays, grad_inputs=None, rtol=1e-6):
    """Run `ours` and the torch module `theirs` on `arrays` in float64 and compare values and grads."""
    import torch

    ours.double()
    theirs.double()
    theirs.load_state_dict({k: torch.from_numpy(v.copy()) for k, v in ours.state_dict().items()}, strict=True)
    names = [name for name, _ in ours.named_parameters()]
    params = [p.detach().numpy().copy() for _, p in ours.named_parameters()]
    count = len(arrays)
    if grad_inputs is None:
        grad_inputs = [numpy.asarray(a).dtype.kind == "f" for a in arrays]

    def run_ours(mg, *tensors):
        with swapped_parameters(ours, dict(zip(names, tensors[count:]))):
            return ours(*tensors[:count])

    def run_theirs(torch, *tensors):
        return torch.func.functional_call(theirs, dict(zip(names, tensors[count:])), tuple(tensors[:count]))

    return compare_with_torch(run_ours, list(arrays) + params, torch_fn=run_theirs,
                              grad_inputs=list(grad_inputs) + [True] * len(params), rtol=rtol)


def randn(*shape, seed=0):
    return numpy.random.default_rng(seed).standard_normal(shape)


# ---------------------------------------------------------------- Linear
def test_linear_matches_torch_values_and_grads():
    torch = pytest.importorskip("torch")
    compare_module(nn.Linear(5, 3), torch.nn.Linear(5, 3), randn(4, 5))


def test_linear_without_bias_matches_torch():
    torch = pytest.importorskip("torch")
    layer = nn.Linear(5, 3, bias=False)
    assert layer.bias is None and [n for n, _ in layer.named_parameters()] == ["weight"]
    compare_module(layer, torch.nn.Linear(5, 3, bias=False), randn(2, 4, 5))


def test_linear_default_init_bounds_are_one_over_sqrt_fan_in():
    minigrad.manual_seed(0)
    layer = nn.Linear(100, 50)
    bound = 1 / numpy.sqrt(100)
    for p in (layer.weight, layer.bias):
        assert numpy.abs(p.detach().numpy()).max() <= bound
        assert numpy.abs(p.detach().numpy()).max() > 0.9 * bound   # really uses the whole range


def test_linear_error_names_layer_and_shapes():
    with pytest.raises(ValueError, match=r"Linear\(5, 3\).*last dimension 5.*\(2, 4\)"):
        nn.Linear(5, 3)(minigrad.randn(2, 4))


def test_linear_gradcheck():
    layer = nn.Linear(3, 2).double()
    x = minigrad.randn(4, 3, dtype=numpy.float64, requires_grad=True)
    assert minigrad.gradcheck(lambda x, w, b: nn.functional.linear(x, w, b), [x, layer.weight, layer.bias])


# ---------------------------------------------------------------- Conv2d
def test_conv2d_matches_torch_values_and_grads():
    torch = pytest.importorskip("torch")
    compare_module(nn.Conv2d(3, 4, 3, padding=1), torch.nn.Conv2d(3, 4, 3, padding=1), randn(2, 3, 6, 6))


@given(
    stride=st.integers(1, 2), padding=st.integers(0, 2), dilation=st.integers(1, 2),
    groups=st.sampled_from([1, 2]), bias=st.booleans(), kernel=st.integers(1, 3),
)
def test_conv2d_options_match_torch(stride, padding, dilation, groups, bias, kernel):
    torch = pytest.importorskip("torch")
    options = dict(stride=stride, padding=padding, dilation=dilation, groups=groups, bias=bias)
    compare_module(nn.Conv2d(4, 2, kernel, **options), torch.nn.Conv2d(4, 2, kernel, **options),
                   randn(2, 4, 7, 7))


def test_conv2d_default_init_matches_torch_bounds():
    minigrad.manual_seed(0)
    layer = nn.Conv2d(8, 64, 3)
    bound = 1 / numpy.sqrt(8 * 9)   # kaiming_uniform_(a=sqrt(5)) = U(-1/sqrt(fan_in), 1/sqrt(fan_in))
    for p in (layer.weight, layer.bias):
        assert numpy.abs(p.detach().numpy()).max() <= bound
        assert numpy.abs(p.detach().numpy()).max() > 0.8 * bound


def test_conv2d_error_names_layer_channels_and_shape():
    layer = nn.Conv2d(3, 16, 3)
    with pytest.raises(ValueError, match=r"Conv2d\(3, 16.*3 channels.*\(8, 1, 32, 32\)"):
        layer(minigrad.randn(8, 1, 32, 32))


def test_conv2d_rejects_groups_that_do_not_divide_channels():
    with pytest.raises(ValueError, match="groups"):
        nn.Conv2d(3, 4, 3, groups=2)


def test_conv2d_repr_matches_torch():
    torch = pytest.importorskip("torch")
    args = dict(stride=2, padding=1, bias=False)
    assert repr(nn.Conv2d(3, 16, 3, **args)) == repr(torch.nn.Conv2d(3, 16, 3, **args))


# ---------------------------------------------------------------- pooling, flatten, identity
@pytest.mark.parametrize("name, args", [
    ("MaxPool2d", (2,)), ("MaxPool2d", (3, 2, 1)), ("AvgPool2d", (2,)), ("AvgPool2d", (3, 2, 1)),
    ("AdaptiveAvgPool2d", (1,)), ("AdaptiveAvgPool2d", ((2, 3),)),
])
def test_pooling_layer_matches_torch(name, args):
    torch = pytest.importorskip("torch")
    compare_module(getattr(nn, name)(*args), getattr(torch.nn, name)(*args), randn(2, 3, 6, 7))


def test_pooling_error_names_layer():
    with pytest.raises(ValueError, match=r"MaxPool2d.*4-D.*\(3, 8\)"):
        nn.MaxPool2d(2)(minigrad.randn(3, 8))


def test_flatten_matches_torch():
    torch = pytest.importorskip("torch")
    compare_module(nn.Flatten(), torch.nn.Flatten(), randn(2, 3, 4, 5))


def test_identity_returns_its_input():
    x = minigrad.randn(3, 4)
    assert nn.Identity(54, unused="argument")(x) is x


# ---------------------------------------------------------------- activations
@pytest.mark.parametrize("name, args", [
    ("ReLU", ()), ("LeakyReLU", (0.2,)), ("GELU", ()), ("GELU", ("tanh",)), ("Tanh", ()),
    ("Sigmoid", ()), ("Softmax", (1,)), ("LogSoftmax", (1,)), ("Softmax", (-1,)),
])
def test_activation_layer_matches_torch(name, args):
    torch = pytest.importorskip("torch")
    compare_module(getattr(nn, name)(*args), getattr(torch.nn, name)(*args), randn(4, 5, 3))


@pytest.mark.parametrize("name, args", [("LeakyReLU", (0.2,)), ("Softmax", (1,)), ("GELU", ("tanh",)), ("ReLU", ())])
def test_activation_repr_matches_torch(name, args):
    torch = pytest.importorskip("torch")
    assert repr(getattr(nn, name)(*args)) == repr(getattr(torch.nn, name)(*args))


def test_linear_repr_matches_torch():
    torch = pytest.importorskip("torch")
    assert repr(nn.Linear(5, 3, bias=False)) == repr(torch.nn.Linear(5, 3, bias=False))
