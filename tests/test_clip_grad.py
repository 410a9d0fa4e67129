"""Tests for minigrad/nn/utils.py: clip_grad_norm_ and clip_grad_value_."""
import math

import numpy as np
import pytest

import minigrad
from minigrad.nn.utils import clip_grad_norm_, clip_grad_value_
from minigrad.tensor import Tensor


def gradients(seed=0, scale=1.0):
    rng = np.random.default_rng(seed)
    return [rng.standard_normal((3, 4)) * scale, rng.standard_normal(5) * scale, rng.standard_normal(())]


def minigrad_params(grads):
    params = []
    for g in grads:
        p = minigrad.tensor(np.zeros_like(g), requires_grad=True)
        p.grad = minigrad.tensor(g)
        params.append(p)
    return params


def torch_params(grads):
    torch = pytest.importorskip("torch")
    params = []
    for g in grads:
        p = torch.zeros(g.shape, dtype=torch.float64, requires_grad=True)
        p.grad = torch.tensor(g)
        params.append(p)
    return params


@pytest.mark.parametrize("norm_type", [2.0, 1.0, 3.5, math.inf])
@pytest.mark.parametrize("max_norm", [0.5, 1e3])
def test_clip_grad_norm_matches_torch(norm_type, max_norm):
    torch = pytest.importorskip("torch")
    grads = gradients()
    ours, theirs = minigrad_params(grads), torch_params(grads)
    our_norm = clip_grad_norm_(ours, max_norm, norm_type=norm_type)
    their_norm = torch.nn.utils.clip_grad_norm_(theirs, max_norm, norm_type=norm_type)
    assert float(our_norm) == pytest.approx(float(their_norm), rel=1e-12)
    for index, (a, b) in enumerate(zip(ours, theirs)):
        np.testing.assert_allclose(a.grad.array, b.grad.numpy(), rtol=1e-12, err_msg=f"parameter {index}")


def test_clipped_gradients_have_norm_max_norm():
    params = minigrad_params(gradients(scale=10.0))
    clip_grad_norm_(params, max_norm=2.0)
    total = math.sqrt(sum(float((p.grad.array ** 2).sum()) for p in params))
    assert total == pytest.approx(2.0, rel=1e-6)


def test_gradients_below_max_norm_are_unchanged():
    grads = gradients(scale=0.01)
    params = minigrad_params(grads)
    clip_grad_norm_(params, max_norm=10.0)
    for p, g in zip(params, grads):
        np.testing.assert_array_equal(p.grad.array, g)


def test_returns_the_total_norm_before_clipping_as_a_tensor():
    p = minigrad.tensor(np.zeros(2), requires_grad=True)
    p.grad = minigrad.tensor(np.array([3.0, 4.0]))
    norm = clip_grad_norm_([p], max_norm=1.0)
    assert isinstance(norm, Tensor) and norm.shape == () and float(norm) == pytest.approx(5.0)


def test_accepts_a_single_tensor():
    p = minigrad.tensor(np.zeros(2), requires_grad=True)
    p.grad = minigrad.tensor(np.array([3.0, 4.0]))
    clip_grad_norm_(p, max_norm=1.0)
    np.testing.assert_allclose(p.grad.array, [0.6, 0.8], rtol=1e-6)


def test_parameters_without_gradient_are_ignored():
    with_grad = minigrad_params([np.array([3.0, 4.0])])[0]
    without_grad = minigrad.tensor(np.zeros(2), requires_grad=True)
    norm = clip_grad_norm_([with_grad, without_grad], max_norm=1.0)
    assert float(norm) == pytest.approx(5.0) and without_grad.grad is None


def test_no_gradients_give_a_zero_norm():
    assert float(clip_grad_norm_([minigrad.tensor(np.zeros(2), requires_grad=True)], 1.0)) == 0.0


def test_nonfinite_norm_raises_when_asked():
    params = minigrad_params([np.array([1.0, np.nan])])
    with pytest.raises(RuntimeError, match="total norm of order 2.0 of the gradients is nan"):
        clip_grad_norm_(params, max_norm=1.0, error_if_nonfinite=True)


@pytest.mark.filterwarnings("ignore:invalid value encountered")   # inf * 0 = nan, as in torch
def test_nonfinite_norm_is_returned_by_default():
    params = minigrad_params([np.array([1.0, np.inf])])
    assert math.isinf(float(clip_grad_norm_(params, max_norm=1.0)))


def test_float32_gradients_stay_float32():
    p = minigrad.tensor(np.zeros(3, dtype=np.float32), requires_grad=True)
    p.grad = minigrad.tensor(np.full(3, 10.0, dtype=np.float32))
    clip_grad_norm_([p], max_norm=1.0)
    assert p.grad.dtype == np.float32


def test_non_positive_norm_type_is_an_error():
    with pytest.raises(ValueError, match="norm_type must be > 0 or inf, got 0.0"):
        clip_grad_norm_(minigrad_params(gradients()), 1.0, norm_type=0)


def test_clip_grad_value_clips_each_entry_in_place():
    p = minigrad_params([np.array([-3.0, 0.5, 2.0])])[0]
    array = p.grad.array
    clip_grad_value_([p], 1.0)
    assert p.grad.array is array
    np.testing.assert_array_equal(array, [-1.0, 0.5, 1.0])


def test_clip_grad_value_matches_torch():
    torch = pytest.importorskip("torch")
    grads = gradients(scale=2.0)
    ours, theirs = minigrad_params(grads), torch_params(grads)
    clip_grad_value_(ours, 0.7)
    torch.nn.utils.clip_grad_value_(theirs, 0.7)
    for a, b in zip(ours, theirs):
        np.testing.assert_array_equal(a.grad.array, b.grad.numpy())


@pytest.mark.gpu
def test_clip_grad_norm_on_gpu_equals_cpu():
    grads = gradients(scale=5.0)
    on_cpu = minigrad_params(grads)
    on_gpu = []
    for g in grads:
        p = minigrad.tensor(np.zeros_like(g), requires_grad=True, device="gpu")
        p.grad = minigrad.tensor(g, device="gpu")
        on_gpu.append(p)
    cpu_norm, gpu_norm = clip_grad_norm_(on_cpu, 1.0), clip_grad_norm_(on_gpu, 1.0)
    assert gpu_norm.device == "gpu" and float(gpu_norm) == pytest.approx(float(cpu_norm), rel=1e-12)
    for a, b in zip(on_cpu, on_gpu):
        np.testing.assert_allclose(b.grad.numpy(), a.grad.array, rtol=1e-12)
