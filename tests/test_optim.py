"""Tests for minigrad/optim: SGD, RMSprop, Adam, AdamW and the Optimizer base.

The torch tests run the same 50-step problem through minigrad.optim and
torch.optim and compare the parameter trajectories. Both sides get their
gradients from the same NumPy function (below), so only the update rules are
compared, in float64.
"""
import numpy as np
import pytest

import minigrad
from minigrad import optim

STEPS = 50
TOLERANCE = 1e-6   # largest relative difference from torch allowed at any step

# ---------------------------------------------------------------------- the shared problem
# Least squares with a quartic penalty (so the curvature changes along the way):
#   L(W, b) = sum((X @ W + b - Y)^2) / N + 0.1 * sum(W^4)
#   dL/dW = 2 X^T r / N + 0.4 W^3,  dL/db = 2 sum_n r / N,  r = X @ W + b - Y


def make_problem(seed=0):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((8, 3))            # (N, 3)
    Y = rng.standard_normal((8, 4))            # (N, 4)
    W = rng.standard_normal((3, 4)) * 0.5      # (3, 4)
    b = rng.standard_normal(4) * 0.5           # (4,)
    return X, Y, W, b


def loss_gradients(X, Y, W, b, sign=1.0):
    """(dL/dW, dL/db) of the problem above; sign=-1 gives the gradients of -L."""
    r = X @ W + b - Y                           # (N, 4)
    N = X.shape[0]
    dW = 2 * X.T @ r / N + 0.4 * W ** 3         # (3, 4)
    db = 2 * r.sum(axis=0) / N                  # (4,)
    return sign * dW, sign * db


def minigrad_trajectory(build, steps=STEPS, sign=1.0, seed=0, frozen=()):
    """Parameter values (W, b) after each step; build(module, [W, b]) makes the optimizer."""
    X, Y, W0, b0 = make_problem(seed)
    params = [minigrad.tensor(W0, requires_grad=True), minigrad.tensor(b0, requires_grad=True)]
    for index in frozen:
        params[index].requires_grad = False
    optimizer = build(optim, params)
    trajectory = []
    for _ in range(steps):
        grads = loss_gradients(X, Y, params[0].array, params[1].array, sign)
        for p, g in zip(params, grads):
            p.grad = minigrad.tensor(g)
        optimizer.step()
        trajectory.append([p.array.copy() for p in params])
    return trajectory


def torch_trajectory(build, steps=STEPS, sign=1.0, seed=0):
    torch = pytest.importorskip("torch")
    X, Y, W0, b0 = make_problem(seed)
    params = [torch.tensor(W0, requires_grad=True), torch.tensor(b0, requires_grad=True)]
    optimizer = build(torch.optim, params)
    trajectory = []
    for _ in range(steps):
        values = [p.detach().numpy() for p in params]
        grads = loss_gradients(X, Y, values[0], values[1], sign)
        for p, g in zip(params, grads):
            p.grad = torch.tensor(g)
        optimizer.step()
        trajectory.append([p.detach().numpy().copy() for p in params])
    return trajectory


def largest_relative_difference(ours, theirs):
    """max over steps and parameters of ||ours - theirs||_max / ||theirs||_max."""
    largest = 0.0
    for our_step, their_step in zip(ours, theirs):
        for a, b in zip(our_step, their_step):
            largest = max(largest, np.abs(a - b).max() / np.abs(b).max())
    return largest


def builder(name, **kwargs):
    return lambda module, params: getattr(module, name)(params, **kwargs)


# ---------------------------------------------------------------------- trajectories vs torch
CASES = {
    "sgd-plain": ("SGD", dict(lr=0.05), 1.0),
    "sgd-momentum": ("SGD", dict(lr=0.05, momentum=0.9), 1.0),
    "sgd-momentum-dampening": ("SGD", dict(lr=0.05, momentum=0.9, dampening=0.5), 1.0),
    "sgd-nesterov": ("SGD", dict(lr=0.05, momentum=0.9, nesterov=True), 1.0),
    "sgd-weight-decay": ("SGD", dict(lr=0.05, momentum=0.5, weight_decay=0.1), 1.0),
    "sgd-maximize": ("SGD", dict(lr=0.05, momentum=0.9, weight_decay=0.01, maximize=True), -1.0),
    "adam-default": ("Adam", dict(lr=0.01), 1.0),
    "adam-betas-eps": ("Adam", dict(lr=0.02, betas=(0.8, 0.99), eps=1e-3), 1.0),
    "adam-weight-decay": ("Adam", dict(lr=0.01, weight_decay=0.1), 1.0),
    "adam-amsgrad": ("Adam", dict(lr=0.05, amsgrad=True), 1.0),
    "adam-maximize": ("Adam", dict(lr=0.01, weight_decay=0.1, maximize=True), -1.0),
    "adamw-default": ("AdamW", dict(lr=0.01), 1.0),
    "adamw-weight-decay": ("AdamW", dict(lr=0.01, weight_decay=0.5), 1.0),
    "adamw-amsgrad": ("AdamW", dict(lr=0.05, weight_decay=0.1, amsgrad=True), 1.0),
    "rmsprop-default": ("RMSprop", dict(lr=0.01), 1.0),
    # lr=0.01 with alpha=0.9 makes RMSprop hop chaotically around the minimum, where
    # rounding differences of 1e-16 grow to 1e-4 within 50 steps; lr=0.005 stays stable.
    "rmsprop-alpha-eps": ("RMSprop", dict(lr=0.005, alpha=0.9, eps=1e-4), 1.0),
    "rmsprop-momentum": ("RMSprop", dict(lr=0.005, momentum=0.9), 1.0),
    "rmsprop-centered": ("RMSprop", dict(lr=0.01, centered=True), 1.0),
    "rmsprop-centered-momentum-weight-decay": (
        "RMSprop", dict(lr=0.005, centered=True, momentum=0.5, weight_decay=0.1), 1.0),
    "rmsprop-maximize": ("RMSprop", dict(lr=0.01, maximize=True), -1.0),
    "adagrad-default": ("Adagrad", dict(lr=0.05), 1.0),
    "adagrad-decay-initial-weight-decay": (
        "Adagrad", dict(lr=0.05, lr_decay=0.01, initial_accumulator_value=0.1, weight_decay=0.1), 1.0),
    "adagrad-maximize": ("Adagrad", dict(lr=0.05, maximize=True), -1.0),
    "adadelta-default": ("Adadelta", dict(), 1.0),
    "adadelta-rho-eps-weight-decay": ("Adadelta", dict(lr=0.5, rho=0.8, eps=1e-4, weight_decay=0.1), 1.0),
    "adadelta-maximize": ("Adadelta", dict(lr=1.0, maximize=True), -1.0),
}


@pytest.mark.parametrize("case", CASES)
def test_trajectory_matches_torch(case):
    name, kwargs, sign = CASES[case]
    ours = minigrad_trajectory(builder(name, **kwargs), sign=sign)
    theirs = torch_trajectory(builder(name, **kwargs), sign=sign)
    difference = largest_relative_difference(ours, theirs)
    assert difference < TOLERANCE, f"{case}: relative difference {difference:.2e} from torch"


def test_trajectory_actually_moves_the_parameters():
    # Guards the comparison above: it would pass trivially if nothing moved.
    _, _, W0, b0 = make_problem()
    last = minigrad_trajectory(builder("Adam", lr=0.01))[-1]
    assert np.abs(last[0] - W0).max() > 0.1 and np.abs(last[1] - b0).max() > 0.1


def grouped_builder(name, **kwargs):
    def build(module, params):
        groups = [{"params": [params[0]], "lr": 0.02, "weight_decay": 0.1},
                  {"params": [params[1]]}]
        return getattr(module, name)(groups, **kwargs)
    return build


@pytest.mark.parametrize("name", ["SGD", "Adam", "AdamW", "RMSprop", "Adagrad", "Adadelta"])
def test_param_groups_with_own_lr_and_weight_decay_match_torch(name):
    kwargs = dict(lr=0.005, momentum=0.9) if name in ("SGD", "RMSprop") else dict(lr=0.005)
    ours = minigrad_trajectory(grouped_builder(name, **kwargs))
    theirs = torch_trajectory(grouped_builder(name, **kwargs))
    assert largest_relative_difference(ours, theirs) < TOLERANCE


@pytest.mark.parametrize("name", ["SGD", "Adam", "AdamW", "RMSprop", "Adagrad", "Adadelta"])
def test_state_dict_round_trip_continues_the_same_trajectory(name):
    kwargs = dict(lr=0.01, momentum=0.9) if name in ("SGD", "RMSprop") else dict(lr=0.01)
    X, Y, W0, b0 = make_problem()

    def run(optimizer, params, steps):
        out = []
        for _ in range(steps):
            grads = loss_gradients(X, Y, params[0].array, params[1].array)
            for p, g in zip(params, grads):
                p.grad = minigrad.tensor(g)
            optimizer.step()
            out.append([p.array.copy() for p in params])
        return out

    params = [minigrad.tensor(W0, requires_grad=True), minigrad.tensor(b0, requires_grad=True)]
    optimizer = getattr(optim, name)(params, **kwargs)
    run(optimizer, params, 20)
    saved = optimizer.state_dict()
    restored_params = [minigrad.tensor(p.array, requires_grad=True) for p in params]
    continued = run(optimizer, params, 30)

    restored = getattr(optim, name)(restored_params, lr=123.0)   # lr comes from the snapshot
    restored.load_state_dict(saved)
    resumed = run(restored, restored_params, 30)
    for step, (a, b) in enumerate(zip(continued, resumed)):
        for index in range(2):
            np.testing.assert_array_equal(a[index], b[index], err_msg=f"step {step}, param {index}")


# ---------------------------------------------------------------------- hand-computed steps
def one_parameter(values, grad):
    p = minigrad.tensor(np.array(values, dtype=np.float64), requires_grad=True)
    p.grad = minigrad.tensor(np.array(grad, dtype=np.float64))
    return p


def test_sgd_step_is_p_minus_lr_times_gradient_plus_weight_decay():
    p = one_parameter([1.0, -2.0], [0.5, 0.25])
    optim.SGD([p], lr=0.1, weight_decay=0.2).step()
    # g = [0.5, 0.25] + 0.2 * [1, -2] = [0.7, -0.15]
    np.testing.assert_allclose(p.array, [1.0 - 0.07, -2.0 + 0.015], rtol=1e-15)


def test_sgd_momentum_first_step_uses_the_gradient_as_buffer():
    p = one_parameter([1.0], [2.0])
    optimizer = optim.SGD([p], lr=0.1, momentum=0.9, dampening=0.5)
    optimizer.step()
    np.testing.assert_allclose(p.array, [1.0 - 0.2])           # not (1 - dampening) * g
    optimizer.step()
    # b = 0.9 * 2 + 0.5 * 2 = 2.8
    np.testing.assert_allclose(p.array, [0.8 - 0.28])


def test_sgd_nesterov_adds_momentum_times_buffer_to_gradient():
    p = one_parameter([1.0], [2.0])
    optim.SGD([p], lr=0.1, momentum=0.5, nesterov=True).step()
    # b = g = 2, d = g + 0.5 * b = 3
    np.testing.assert_allclose(p.array, [0.7])


def test_adam_first_step_moves_each_coordinate_by_about_lr():
    # After bias correction m_hat = g and v_hat = g^2, so the step is lr * g / (|g| + eps).
    p = one_parameter([1.0, 1.0, 1.0], [1e-3, -5.0, 300.0])
    optim.Adam([p], lr=0.01).step()
    np.testing.assert_allclose(p.array, [0.99, 1.01, 0.99], rtol=1e-6)


def test_adamw_with_zero_gradient_only_shrinks_the_weights():
    p = one_parameter([2.0, -4.0], [0.0, 0.0])
    optim.AdamW([p], lr=0.1, weight_decay=0.5).step()
    np.testing.assert_allclose(p.array, [2.0 * 0.95, -4.0 * 0.95], rtol=1e-15)


def test_adam_weight_decay_is_added_to_the_gradient_not_to_the_weights():
    # With L2 decay and zero loss gradient, g = wd * p, so the first Adam step is about lr.
    p = one_parameter([2.0, -4.0], [0.0, 0.0])
    optim.Adam([p], lr=0.1, weight_decay=0.5).step()
    np.testing.assert_allclose(p.array, [1.9, -3.9], rtol=1e-6)


def test_rmsprop_first_step_divides_by_root_of_scaled_square():
    p = one_parameter([1.0], [2.0])
    optim.RMSprop([p], lr=0.01, alpha=0.99, eps=0.0).step()
    # v = 0.01 * 4, step = 0.01 * 2 / sqrt(0.04) = 0.1
    np.testing.assert_allclose(p.array, [0.9], rtol=1e-14)


# ---------------------------------------------------------------------- freezing and grads
@pytest.mark.parametrize("name", ["SGD", "Adam", "AdamW", "RMSprop"])
def test_frozen_parameter_is_not_changed(name):
    trajectory = minigrad_trajectory(builder(name, lr=0.01, weight_decay=0.1), steps=5, frozen=[1])
    _, _, W0, b0 = make_problem()
    np.testing.assert_array_equal(trajectory[-1][1], b0)
    assert not np.array_equal(trajectory[-1][0], W0)


def test_parameter_without_gradient_is_skipped_and_gets_no_state():
    used = one_parameter([1.0], [1.0])
    unused = minigrad.tensor([5.0], requires_grad=True)
    optimizer = optim.Adam([used, unused], lr=0.1, weight_decay=0.1)
    optimizer.step()
    np.testing.assert_array_equal(unused.array, [5.0])
    assert unused not in optimizer.state and used in optimizer.state


def test_step_updates_parameter_array_in_place():
    p = one_parameter([1.0, 2.0], [1.0, 1.0])
    array = p.array
    optim.Adam([p], lr=0.1).step()
    assert p.array is array


def test_adam_keeps_float32_parameters_float32():
    p = minigrad.tensor(np.ones(3, dtype=np.float32), requires_grad=True)
    p.grad = minigrad.tensor(np.ones(3, dtype=np.float32))
    optimizer = optim.Adam([p], lr=0.1)
    optimizer.step()
    assert p.dtype == np.float32 and optimizer.state[p]["v"].dtype == np.float32


def test_sgd_uses_the_gradients_left_by_backward():
    x = minigrad.tensor(np.array([1.0, -3.0]), requires_grad=True)
    (x * x).sum().backward()                     # dL/dx = 2x
    optim.SGD([x], lr=0.25).step()
    np.testing.assert_allclose(x.array, [0.5, -1.5])


def test_zero_grad_sets_gradients_to_none_by_default():
    p = one_parameter([1.0], [1.0])
    optim.SGD([p], lr=0.1).zero_grad()
    assert p.grad is None


def test_zero_grad_without_set_to_none_zeroes_the_same_array():
    p = one_parameter([1.0, 2.0], [3.0, 4.0])
    grad_array = p.grad.array
    optim.SGD([p], lr=0.1).zero_grad(set_to_none=False)
    assert p.grad.array is grad_array
    np.testing.assert_array_equal(grad_array, [0.0, 0.0])


def test_step_calls_the_closure_and_returns_its_loss():
    p = minigrad.tensor(np.array([3.0]), requires_grad=True)

    def closure():
        p.grad = None
        loss = (p * p).sum()
        loss.backward()
        return loss

    loss = optim.SGD([p], lr=0.1).step(closure)
    assert float(loss) == 9.0
    np.testing.assert_allclose(p.array, [3.0 - 0.6])


# ---------------------------------------------------------------------- groups and state dicts
def test_group_without_hyperparameters_takes_the_defaults():
    a, b = one_parameter([1.0], [1.0]), one_parameter([1.0], [1.0])
    optimizer = optim.SGD([{"params": [a], "lr": 0.5}, {"params": b}], lr=0.1, momentum=0.9)
    assert optimizer.param_groups[0]["lr"] == 0.5 and optimizer.param_groups[0]["momentum"] == 0.9
    assert optimizer.param_groups[1]["lr"] == 0.1 and optimizer.param_groups[1]["params"] == [b]


def test_add_param_group_fills_in_defaults():
    optimizer = optim.Adam([one_parameter([1.0], [1.0])], lr=0.1)
    optimizer.add_param_group({"params": [one_parameter([2.0], [1.0])], "lr": 0.5})
    assert optimizer.param_groups[1]["lr"] == 0.5
    assert optimizer.param_groups[1]["betas"] == (0.9, 0.999)


def test_state_dict_names_parameters_by_index():
    a, b, c = (one_parameter([1.0], [1.0]) for _ in range(3))
    optimizer = optim.SGD([{"params": [a, b]}, {"params": [c]}], lr=0.1, momentum=0.9)
    optimizer.step()
    saved = optimizer.state_dict()
    assert [group["params"] for group in saved["param_groups"]] == [[0, 1], [2]]
    assert sorted(saved["state"]) == [0, 1, 2]
    np.testing.assert_array_equal(saved["state"][2]["momentum_buffer"], [1.0])


def test_state_dict_is_a_snapshot_that_later_steps_do_not_change():
    p = one_parameter([1.0], [1.0])
    optimizer = optim.Adam([p], lr=0.1)
    optimizer.step()
    saved = optimizer.state_dict()
    optimizer.step()
    assert saved["state"][0]["step"] == 1
    np.testing.assert_allclose(saved["state"][0]["m"], [0.1])


def test_load_state_dict_rejects_a_different_number_of_groups():
    a, b = one_parameter([1.0], [1.0]), one_parameter([1.0], [1.0])
    saved = optim.SGD([{"params": [a]}, {"params": [b]}], lr=0.1).state_dict()
    with pytest.raises(ValueError, match="2 parameter groups but this optimizer has 1"):
        optim.SGD([a, b], lr=0.1).load_state_dict(saved)


def test_load_state_dict_rejects_a_group_of_another_size():
    a, b = one_parameter([1.0], [1.0]), one_parameter([1.0], [1.0])
    saved = optim.SGD([a, b], lr=0.1).state_dict()
    with pytest.raises(ValueError, match="group 0 has 2 parameters in the state dict but 1"):
        optim.SGD([a], lr=0.1).load_state_dict(saved)


def test_load_state_dict_copies_arrays_so_optimizers_do_not_share_buffers():
    p = one_parameter([1.0], [1.0])
    first = optim.SGD([p], lr=0.1, momentum=0.9)
    first.step()
    second = optim.SGD([p], lr=0.1, momentum=0.9)
    second.load_state_dict(first.state_dict())
    second.step()
    np.testing.assert_array_equal(first.state[p]["momentum_buffer"], [1.0])


# ---------------------------------------------------------------------- argument errors
@pytest.mark.parametrize("name", ["SGD", "Adam", "AdamW", "RMSprop"])
def test_negative_lr_is_an_error_naming_lr_and_its_value(name):
    with pytest.raises(ValueError, match=r"invalid lr=-0\.1"):
        getattr(optim, name)([one_parameter([1.0], [1.0])], lr=-0.1)


@pytest.mark.parametrize("name", ["SGD", "Adam", "AdamW", "RMSprop"])
def test_negative_weight_decay_is_an_error(name):
    with pytest.raises(ValueError, match=r"invalid weight_decay=-1"):
        getattr(optim, name)([one_parameter([1.0], [1.0])], lr=0.1, weight_decay=-1)


@pytest.mark.parametrize("betas, bad", [((1.0, 0.999), r"betas\[0\]=1\.0"),
                                        ((0.9, -0.1), r"betas\[1\]=-0\.1")])
def test_beta_outside_zero_one_is_an_error(betas, bad):
    with pytest.raises(ValueError, match=bad):
        optim.Adam([one_parameter([1.0], [1.0])], betas=betas)


def test_negative_eps_is_an_error():
    with pytest.raises(ValueError, match=r"invalid eps=-1e-08"):
        optim.RMSprop([one_parameter([1.0], [1.0])], eps=-1e-8)


def test_negative_momentum_is_an_error():
    with pytest.raises(ValueError, match=r"invalid momentum=-0\.5"):
        optim.SGD([one_parameter([1.0], [1.0])], lr=0.1, momentum=-0.5)


def test_nesterov_without_momentum_is_an_error():
    with pytest.raises(ValueError, match="nesterov=True needs momentum > 0"):
        optim.SGD([one_parameter([1.0], [1.0])], lr=0.1, nesterov=True)


def test_group_override_is_checked_like_the_defaults():
    with pytest.raises(ValueError, match=r"invalid lr=-1"):
        optim.SGD([{"params": [one_parameter([1.0], [1.0])], "lr": -1}], lr=0.1)


def test_a_single_tensor_instead_of_a_list_is_an_error():
    with pytest.raises(TypeError, match="single Tensor"):
        optim.SGD(one_parameter([1.0], [1.0]), lr=0.1)


def test_an_empty_parameter_list_is_an_error():
    with pytest.raises(ValueError, match="empty parameter list"):
        optim.Adam([])


def test_a_parameter_in_two_groups_is_an_error():
    p = one_parameter([1.0], [1.0])
    with pytest.raises(ValueError, match="more than once"):
        optim.SGD([{"params": [p]}, {"params": [p]}], lr=0.1)


def test_a_parameter_twice_in_one_group_is_an_error():
    p = one_parameter([1.0], [1.0])
    with pytest.raises(ValueError, match="more than once"):
        optim.SGD([p, p], lr=0.1)


# ---------------------------------------------------------------------- package and GPU
def test_optim_exports_optimizers_and_schedulers():
    assert optim.lr_scheduler.CosineAnnealingLR is not None
    assert all(issubclass(cls, optim.Optimizer) for cls in (optim.SGD, optim.Adam, optim.AdamW, optim.RMSprop))


@pytest.mark.gpu
@pytest.mark.parametrize("name", ["SGD", "Adam", "RMSprop"])
def test_gpu_steps_equal_cpu_steps(name):
    kwargs = dict(lr=0.01, momentum=0.9) if name != "Adam" else dict(lr=0.01, amsgrad=True)
    X, Y, W0, _ = make_problem()
    on_cpu = minigrad.tensor(W0, requires_grad=True)
    on_gpu = minigrad.tensor(W0, requires_grad=True, device="gpu")
    optimizers = [getattr(optim, name)([p], **kwargs) for p in (on_cpu, on_gpu)]
    for _ in range(10):
        g, _ = loss_gradients(X, Y, on_cpu.array, 0.0)
        on_cpu.grad = minigrad.tensor(g)
        on_gpu.grad = minigrad.tensor(g, device="gpu")
        for optimizer in optimizers:
            optimizer.step()
    np.testing.assert_allclose(on_gpu.detach().numpy(), on_cpu.array, rtol=1e-12)


@pytest.mark.parametrize("name, kwargs", [("Adagrad", dict(lr=0.05)), ("Adadelta", dict())])
def test_adagrad_and_adadelta_trajectories_move_the_parameters(name, kwargs):
    # Guards their torch comparisons: they would pass trivially if nothing moved.
    _, _, W0, b0 = make_problem()
    last = minigrad_trajectory(builder(name, **kwargs))[-1]
    assert np.abs(last[0] - W0).max() > 1e-2 and np.abs(last[1] - b0).max() > 1e-3
