"""Losses: cross_entropy, nll_loss, mse_loss, binary_cross_entropy_with_logits vs PyTorch, gradients, errors."""
import numpy
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import minigrad
from minigrad.ops.loss import binary_cross_entropy_with_logits, cross_entropy, mse_loss, nll_loss
from torch_compare import compare_with_torch


@st.composite
def class_problems(draw):
    """Scores (N, C) or (N, C, d...), labels with some ignore_index, optional class weights, options."""
    batch, classes = draw(st.integers(1, 4)), draw(st.integers(2, 5))
    spatial = draw(st.sampled_from([(), (2,), (2, 3)]))
    rng = numpy.random.default_rng(draw(st.integers(0, 2**16)))
    scores = rng.standard_normal((batch, classes, *spatial)) * 3
    target = rng.integers(0, classes, (batch, *spatial))
    if draw(st.booleans()):
        target[rng.random(target.shape) < 0.3] = -100
        target.reshape(-1)[0] = 0                                         # keep one row for "mean"
    weight = rng.uniform(0.2, 2.0, classes) if draw(st.booleans()) else None
    reduction = draw(st.sampled_from(["mean", "sum", "none"]))
    return scores, target, weight, reduction


def with_weight(fn, weight):
    """Call fn(scores, target, weight) with the class weight as a constant of the right library."""
    def call(lib, scores, target):
        w = None if weight is None else lib.tensor(weight)
        return fn(lib, scores, target, w)
    return call


def torch_functional():
    return pytest.importorskip("torch").nn.functional


# ------------------------------------------------------------------ cross_entropy
@given(class_problems(), st.sampled_from([0.0, 0.1, 0.4]))
def test_cross_entropy_matches_torch_values_and_gradients(problem, label_smoothing):
    functional = torch_functional()
    scores, target, weight, reduction = problem
    options = dict(reduction=reduction, label_smoothing=label_smoothing)
    compare_with_torch(
        with_weight(lambda mg, z, t, w: cross_entropy(z, t, weight=w, **options), weight), [scores, target],
        torch_fn=with_weight(lambda t_, z, t, w: functional.cross_entropy(z, t, weight=w, **options), weight),
    )


@settings(max_examples=20)
@given(class_problems(), st.sampled_from([0.0, 0.2]))
def test_cross_entropy_gradcheck(problem, label_smoothing):
    scores, target, weight, reduction = problem
    z = minigrad.tensor(scores, requires_grad=True)
    assert minigrad.gradcheck(
        lambda z: cross_entropy(z, target, weight=weight, reduction=reduction, label_smoothing=label_smoothing), [z]
    )


def test_cross_entropy_is_stable_for_large_logits():
    functional = torch_functional()
    import torch

    logits = numpy.array([[1e4, 0.0, -1e4], [-1e4, 1e4, 1e4 - 5], [0.0, 0.0, 1e4]])
    target = numpy.array([1, 2, 0])
    z = minigrad.tensor(logits, requires_grad=True)
    loss = cross_entropy(z, target, label_smoothing=0.1)
    loss.backward()
    z_torch = torch.tensor(logits, requires_grad=True)
    expected = functional.cross_entropy(z_torch, torch.tensor(target), label_smoothing=0.1)
    expected.backward()
    assert numpy.isfinite(loss.item()) and numpy.isfinite(z.grad.numpy()).all()
    numpy.testing.assert_allclose(loss.item(), expected.item(), rtol=1e-12)
    numpy.testing.assert_allclose(z.grad.numpy(), z_torch.grad.numpy(), rtol=1e-10, atol=1e-15)


def test_cross_entropy_equals_log_softmax_then_nll():
    rng = numpy.random.default_rng(0)
    z, target = minigrad.tensor(rng.standard_normal((5, 4))), rng.integers(0, 4, 5)
    fused = cross_entropy(z, target).item()
    composed = nll_loss(minigrad.log_softmax(z, dim=1), target).item()
    assert fused == pytest.approx(composed, rel=1e-12)


def test_cross_entropy_of_one_unbatched_sample_matches_torch():
    torch = pytest.importorskip("torch")
    scores = numpy.array([0.5, -1.0, 2.0])
    ours = cross_entropy(minigrad.tensor(scores), numpy.array(2)).item()
    theirs = torch.nn.functional.cross_entropy(torch.tensor(scores), torch.tensor(2)).item()
    assert ours == pytest.approx(theirs, rel=1e-12)


def test_cross_entropy_label_out_of_range_names_label_and_classes():
    with pytest.raises(IndexError, match=r"cross_entropy: target label 7 is out of range for 3 classes"):
        cross_entropy(minigrad.randn(2, 3), numpy.array([0, 7]))


def test_cross_entropy_negative_label_is_an_error():
    with pytest.raises(IndexError, match=r"target label -1 is out of range for 3 classes"):
        cross_entropy(minigrad.randn(2, 3), numpy.array([-1, 0]))


def test_cross_entropy_float_target_is_an_error():
    with pytest.raises(TypeError, match=r"cross_entropy: target must hold integer class indices .* float64"):
        cross_entropy(minigrad.randn(2, 3), numpy.array([0.0, 1.0]))


def test_cross_entropy_target_of_wrong_shape_is_an_error():
    with pytest.raises(ValueError, match=r"cross_entropy: target must have shape \(2,\) .* got \(3,\)"):
        cross_entropy(minigrad.randn(2, 3), numpy.array([0, 1, 2]))


def test_cross_entropy_unknown_reduction_is_an_error():
    with pytest.raises(ValueError, match=r"cross_entropy: reduction must be one of"):
        cross_entropy(minigrad.randn(2, 3), numpy.array([0, 1]), reduction="avg")


# ------------------------------------------------------------------ nll_loss
@given(class_problems())
def test_nll_loss_matches_torch_values_and_gradients(problem):
    functional = torch_functional()
    scores, target, weight, reduction = problem
    compare_with_torch(
        with_weight(lambda mg, z, t, w: nll_loss(z, t, weight=w, reduction=reduction), weight), [scores, target],
        torch_fn=with_weight(lambda t_, z, t, w: functional.nll_loss(z, t, weight=w, reduction=reduction), weight),
    )


@settings(max_examples=20)
@given(class_problems())
def test_nll_loss_gradcheck(problem):
    scores, target, weight, reduction = problem
    z = minigrad.tensor(scores, requires_grad=True)
    assert minigrad.gradcheck(lambda z: nll_loss(z, target, weight=weight, reduction=reduction), [z])


def test_nll_loss_label_out_of_range_is_an_error():
    with pytest.raises(IndexError, match=r"nll_loss: target label 3 is out of range for 3 classes"):
        nll_loss(minigrad.randn(2, 3), numpy.array([3, 0]))


# ------------------------------------------------------------------ mse_loss
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_mse_loss_matches_torch_values_and_gradients(reduction):
    functional = torch_functional()
    rng = numpy.random.default_rng(1)
    x, target = rng.standard_normal((3, 4)), rng.standard_normal((3, 4))
    compare_with_torch(
        lambda mg, x, t: mse_loss(x, t, reduction), [x, target],
        torch_fn=lambda t_, x, t: functional.mse_loss(x, t, reduction=reduction),
    )


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_mse_loss_gradcheck_input_and_target(reduction):
    rng = numpy.random.default_rng(2)
    x, target = (minigrad.tensor(rng.standard_normal((2, 3)), requires_grad=True) for _ in range(2))
    assert minigrad.gradcheck(lambda x, t: mse_loss(x, t, reduction), [x, target])


def test_mse_loss_shape_mismatch_is_an_error():
    with pytest.raises(ValueError, match=r"mse_loss: input shape \(2, 3\) and target shape \(3,\) must be equal"):
        mse_loss(minigrad.randn(2, 3), minigrad.randn(3))


# ------------------------------------------------------------------ binary_cross_entropy_with_logits
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("use_weight, use_pos_weight", [(False, False), (True, False), (False, True), (True, True)])
def test_bce_with_logits_matches_torch_values_and_gradients(reduction, use_weight, use_pos_weight):
    functional = torch_functional()
    rng = numpy.random.default_rng(3)
    x, target = rng.standard_normal((4, 3)) * 3, rng.random((4, 3))
    weight = rng.uniform(0.5, 2, (4, 3)) if use_weight else None
    pos_weight = rng.uniform(0.5, 3, 3) if use_pos_weight else None

    def run(fn):
        def call(lib, x, t):
            w = None if weight is None else lib.tensor(weight)
            pw = None if pos_weight is None else lib.tensor(pos_weight)
            return fn(x, t, w, reduction=reduction, pos_weight=pw)
        return call

    compare_with_torch(
        run(binary_cross_entropy_with_logits), [x, target],
        torch_fn=run(functional.binary_cross_entropy_with_logits),
    )


@pytest.mark.parametrize("use_pos_weight", [False, True])
def test_bce_with_logits_gradcheck_input_and_target(use_pos_weight):
    rng = numpy.random.default_rng(4)
    x = minigrad.tensor(rng.standard_normal((3, 4)) * 2, requires_grad=True)
    target = minigrad.tensor(rng.random((3, 4)), requires_grad=True)
    weight = rng.uniform(0.5, 2, (3, 4))
    pos_weight = rng.uniform(0.5, 3, 4) if use_pos_weight else None
    assert minigrad.gradcheck(
        lambda x, t: binary_cross_entropy_with_logits(x, t, weight, pos_weight=pos_weight), [x, target]
    )


def test_bce_with_logits_is_stable_for_large_logits():
    functional = torch_functional()
    import torch

    logits = numpy.array([1e4, -1e4, 50.0, -50.0])
    target = numpy.array([0.0, 1.0, 0.3, 0.7])
    x = minigrad.tensor(logits, requires_grad=True)
    loss = binary_cross_entropy_with_logits(x, minigrad.tensor(target), reduction="none")
    loss.sum().backward()
    x_torch = torch.tensor(logits, requires_grad=True)
    expected = functional.binary_cross_entropy_with_logits(x_torch, torch.tensor(target), reduction="none")
    expected.sum().backward()
    numpy.testing.assert_allclose(loss.detach().numpy(), expected.detach().numpy(), rtol=1e-12)
    numpy.testing.assert_allclose(x.grad.numpy(), x_torch.grad.numpy(), rtol=1e-12)


def test_bce_with_logits_shape_mismatch_is_an_error():
    with pytest.raises(ValueError, match=r"binary_cross_entropy_with_logits: input shape \(4,\) and target shape"):
        binary_cross_entropy_with_logits(minigrad.randn(4), minigrad.rand(4, 1))
