"""Loss layers against torch.nn: CrossEntropyLoss, NLLLoss, MSELoss, BCEWithLogitsLoss."""
import numpy
import pytest

import minigrad
from minigrad import nn
from test_nn_layers import compare_module, randn


def labels(n, classes, seed=0):
    return numpy.random.default_rng(seed).integers(0, classes, n).astype(numpy.int64)


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_cross_entropy_loss_matches_torch(reduction):
    torch = pytest.importorskip("torch")
    compare_module(nn.CrossEntropyLoss(reduction=reduction), torch.nn.CrossEntropyLoss(reduction=reduction),
                   randn(6, 4), labels(6, 4))


def test_cross_entropy_loss_with_weight_smoothing_and_ignore_index_matches_torch():
    torch = pytest.importorskip("torch")
    weight = numpy.array([1.0, 2.0, 0.5, 1.5])
    target = labels(6, 4)
    target[2] = -1
    options = dict(ignore_index=-1, label_smoothing=0.1)
    ours = nn.CrossEntropyLoss(weight=minigrad.tensor(weight), **options)
    theirs = torch.nn.CrossEntropyLoss(weight=torch.tensor(weight), **options)
    compare_module(ours, theirs, randn(6, 4), target)


def test_cross_entropy_loss_keeps_class_weight_as_a_buffer():
    loss = nn.CrossEntropyLoss(weight=minigrad.ones(3))
    assert list(loss.parameters()) == [] and list(loss.state_dict()) == ["weight"]


def test_nll_loss_matches_torch():
    torch = pytest.importorskip("torch")
    compare_module(nn.NLLLoss(), torch.nn.NLLLoss(), randn(5, 3), labels(5, 3))


def test_log_softmax_then_nll_loss_equals_cross_entropy_loss():
    logits, target = minigrad.tensor(randn(5, 3)), minigrad.tensor(labels(5, 3))
    a = nn.NLLLoss()(nn.LogSoftmax(dim=1)(logits), target)
    b = nn.CrossEntropyLoss()(logits, target)
    numpy.testing.assert_allclose(a.item(), b.item(), rtol=1e-6)


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_mse_loss_matches_torch(reduction):
    torch = pytest.importorskip("torch")
    compare_module(nn.MSELoss(reduction=reduction), torch.nn.MSELoss(reduction=reduction),
                   randn(4, 3), randn(4, 3, seed=1))


def test_bce_with_logits_loss_matches_torch():
    torch = pytest.importorskip("torch")
    target = (randn(4, 3, seed=1) > 0).astype(numpy.float64)
    compare_module(nn.BCEWithLogitsLoss(), torch.nn.BCEWithLogitsLoss(), randn(4, 3) * 5, target,
                   grad_inputs=[True, False])


def test_bce_with_logits_loss_with_pos_weight_matches_torch():
    torch = pytest.importorskip("torch")
    target = (randn(4, 3, seed=1) > 0).astype(numpy.float64)
    pos_weight = numpy.array([1.0, 3.0, 0.5])
    compare_module(nn.BCEWithLogitsLoss(pos_weight=minigrad.tensor(pos_weight)),
                   torch.nn.BCEWithLogitsLoss(pos_weight=torch.tensor(pos_weight)),
                   randn(4, 3), target, grad_inputs=[True, False])


def test_loss_rejects_an_unknown_reduction():
    with pytest.raises(ValueError, match="MSELoss.*reduction.*'average'"):
        nn.MSELoss(reduction="average")


def test_cross_entropy_loss_gradcheck():
    logits = minigrad.tensor(randn(4, 3), requires_grad=True)
    target = minigrad.tensor(labels(4, 3))
    assert minigrad.gradcheck(lambda z: nn.CrossEntropyLoss(label_smoothing=0.2)(z, target), [logits])
