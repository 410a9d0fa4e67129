"""Tests for minigrad/optim/lr_scheduler.py.

The torch tests step the same schedule 30 times on an optimizer with two
parameter groups (lr 0.1 and 0.03) and compare the lrs after every step, and
the momentum or beta1 where OneCycleLR cycles it.
"""
import math

import numpy as np
import pytest

import minigrad
from minigrad import optim
from minigrad.optim import lr_scheduler

STEPS = 30
TOLERANCE = 1e-12


def make_optimizer(module, name="SGD"):
    """An optimizer of `module` (minigrad.optim or torch.optim) with groups at lr 0.1 and 0.03."""
    if module is optim:
        params = [minigrad.tensor([1.0], requires_grad=True), minigrad.tensor([2.0], requires_grad=True)]
    else:
        torch = pytest.importorskip("torch")
        params = [torch.tensor([1.0], requires_grad=True), torch.tensor([2.0], requires_grad=True)]
    groups = [{"params": [params[0]]}, {"params": [params[1]], "lr": 0.03}]
    if name == "SGD":
        return module.SGD(groups, lr=0.1, momentum=0.9)
    return getattr(module, name)(groups, lr=0.1)


def momenta(optimizer):
    return [g["betas"][0] if "betas" in g else g.get("momentum") for g in optimizer.param_groups]


def schedule(optimizer, scheduler, steps=STEPS):
    """[(lrs, momenta)] at creation and after each step; the optimizer steps first, as in training."""
    values = [(scheduler.get_last_lr(), momenta(optimizer))]
    for _ in range(steps):
        optimizer.step()
        scheduler.step()
        values.append((scheduler.get_last_lr(), momenta(optimizer)))
    return values


def run_both(build, optimizer_name="SGD", steps=STEPS):
    torch = pytest.importorskip("torch")
    ours_opt = make_optimizer(optim, optimizer_name)
    ours = schedule(ours_opt, build(lr_scheduler, ours_opt), steps)
    theirs_opt = make_optimizer(torch.optim, optimizer_name)
    theirs = schedule(theirs_opt, build(torch.optim.lr_scheduler, theirs_opt), steps)
    return ours, theirs


def sequential(module, opt):
    warmup = module.LinearLR(opt, start_factor=0.1, total_iters=5)
    decay = module.CosineAnnealingLR(opt, T_max=20, eta_min=1e-3)
    return module.SequentialLR(opt, [warmup, decay], milestones=[5])


def three_stage(module, opt):
    stages = [module.ExponentialLR(opt, gamma=0.8), module.StepLR(opt, step_size=3, gamma=0.5),
              module.MultiStepLR(opt, milestones=[2, 4], gamma=0.1)]
    return module.SequentialLR(opt, stages, milestones=[6, 15])


CASES = {
    "step": (lambda m, o: m.StepLR(o, step_size=7, gamma=0.5), "SGD"),
    "multistep": (lambda m, o: m.MultiStepLR(o, milestones=[5, 12, 12, 20], gamma=0.3), "SGD"),
    "exponential": (lambda m, o: m.ExponentialLR(o, gamma=0.9), "SGD"),
    "cosine": (lambda m, o: m.CosineAnnealingLR(o, T_max=STEPS), "SGD"),
    "cosine-past-T_max": (lambda m, o: m.CosineAnnealingLR(o, T_max=10, eta_min=1e-3), "SGD"),
    "linear-warmup": (lambda m, o: m.LinearLR(o, start_factor=0.1, total_iters=8), "SGD"),
    "linear-decay": (lambda m, o: m.LinearLR(o, start_factor=1.0, end_factor=0.2, total_iters=12), "SGD"),
    "onecycle-sgd": (lambda m, o: m.OneCycleLR(o, max_lr=[1.0, 0.5], total_steps=STEPS), "SGD"),
    "onecycle-adam": (lambda m, o: m.OneCycleLR(o, max_lr=0.01, epochs=5, steps_per_epoch=6), "Adam"),
    "onecycle-linear-no-momentum": (
        lambda m, o: m.OneCycleLR(o, max_lr=1.0, total_steps=STEPS, pct_start=0.25,
                                  anneal_strategy="linear", cycle_momentum=False), "SGD"),
    "onecycle-rmsprop": (
        lambda m, o: m.OneCycleLR(o, max_lr=0.2, total_steps=40, div_factor=10.0,
                                  final_div_factor=100.0, base_momentum=0.5, max_momentum=0.9), "RMSprop"),
    "sequential-warmup-cosine": (sequential, "SGD"),
    "sequential-three-stages": (three_stage, "SGD"),
}


def assert_same_schedule(ours, theirs):
    assert len(ours) == len(theirs)
    for step, ((our_lrs, our_m), (their_lrs, their_m)) in enumerate(zip(ours, theirs)):
        np.testing.assert_allclose(our_lrs, their_lrs, rtol=TOLERANCE, atol=0, err_msg=f"lr at step {step}")
        if their_m[0] is not None:
            np.testing.assert_allclose(our_m, their_m, rtol=TOLERANCE, err_msg=f"momentum at step {step}")


@pytest.mark.parametrize("case", CASES)
def test_lr_sequence_matches_torch(case):
    build, optimizer_name = CASES[case]
    ours, theirs = run_both(build, optimizer_name)
    assert_same_schedule(ours, theirs)


@pytest.mark.parametrize("case", CASES)
def test_state_dict_round_trip_continues_the_same_schedule(case):
    build, optimizer_name = CASES[case]
    optimizer = make_optimizer(optim, optimizer_name)
    scheduler = build(lr_scheduler, optimizer)
    schedule(optimizer, scheduler, 12)
    saved_optimizer, saved_scheduler = optimizer.state_dict(), scheduler.state_dict()
    continued = schedule(optimizer, scheduler, 18)

    new_optimizer = make_optimizer(optim, optimizer_name)
    new_scheduler = build(lr_scheduler, new_optimizer)
    new_optimizer.load_state_dict(saved_optimizer)
    new_scheduler.load_state_dict(saved_scheduler)
    resumed = schedule(new_optimizer, new_scheduler, 18)
    assert resumed == continued


# ---------------------------------------------------------------------- without torch
def test_step_lr_multiplies_by_gamma_every_step_size_epochs():
    optimizer = make_optimizer(optim)
    lrs = [lrs[0] for lrs, _ in schedule(optimizer, lr_scheduler.StepLR(optimizer, 3, gamma=0.5), 6)]
    np.testing.assert_allclose(lrs, [0.1] * 3 + [0.05] * 3 + [0.025])


def test_cosine_reaches_eta_min_at_T_max():
    optimizer = make_optimizer(optim)
    values = schedule(optimizer, lr_scheduler.CosineAnnealingLR(optimizer, T_max=10, eta_min=0.01), 10)
    assert values[-1][0] == pytest.approx([0.01, 0.01], rel=1e-12)
    assert values[5][0] == pytest.approx([(0.1 + 0.01) / 2, (0.03 + 0.01) / 2], rel=1e-12)


def test_creating_a_scheduler_sets_the_first_lr():
    optimizer = make_optimizer(optim)
    lr_scheduler.LinearLR(optimizer, start_factor=0.25, total_iters=4)
    assert [g["lr"] for g in optimizer.param_groups] == pytest.approx([0.025, 0.0075])


def test_scheduler_writes_the_lr_the_optimizer_uses():
    p = minigrad.tensor(np.array([1.0]), requires_grad=True)
    optimizer = optim.SGD([p], lr=1.0)
    scheduler = lr_scheduler.ExponentialLR(optimizer, gamma=0.5)
    scheduler.step()
    p.grad = minigrad.tensor(np.array([1.0]))
    optimizer.step()
    np.testing.assert_allclose(p.array, [0.5])


def test_sequential_lr_starts_the_next_schedule_at_its_milestone():
    optimizer = make_optimizer(optim)
    scheduler = sequential(lr_scheduler, optimizer)
    lrs = [lrs[0] for lrs, _ in schedule(optimizer, scheduler, 6)]
    np.testing.assert_allclose(lrs[:5], [0.01 + 0.018 * t for t in range(5)])
    assert lrs[5] == pytest.approx(0.1)                 # cosine at its epoch 0 = base lr


def test_one_cycle_peaks_at_max_lr_and_ends_far_below_the_start():
    optimizer = make_optimizer(optim)
    scheduler = lr_scheduler.OneCycleLR(optimizer, max_lr=1.0, total_steps=12, pct_start=0.5)
    lrs = [lrs[0] for lrs, _ in schedule(optimizer, scheduler, 11)]
    assert lrs[0] == pytest.approx(1.0 / 25) and max(lrs) == pytest.approx(1.0)
    assert lrs[-1] == pytest.approx(1.0 / 25 / 1e4)
    assert lrs.index(max(lrs)) == 5                     # pct_start * total_steps - 1


def test_one_cycle_stepping_past_total_steps_is_an_error():
    optimizer = make_optimizer(optim)
    scheduler = lr_scheduler.OneCycleLR(optimizer, max_lr=1.0, total_steps=5)
    for _ in range(5):
        scheduler.step()
    with pytest.raises(ValueError, match="total_steps is 5"):
        scheduler.step()


def test_one_cycle_needs_total_steps_or_epochs_and_steps_per_epoch():
    with pytest.raises(ValueError, match="total_steps"):
        lr_scheduler.OneCycleLR(make_optimizer(optim), max_lr=1.0, epochs=3)


def test_one_cycle_max_lr_list_must_match_the_groups():
    with pytest.raises(ValueError, match="max_lr has 3 values but the optimizer has 2 groups"):
        lr_scheduler.OneCycleLR(make_optimizer(optim), max_lr=[1.0, 1.0, 1.0], total_steps=10)


def test_scheduler_needs_an_optimizer():
    with pytest.raises(TypeError, match="not an Optimizer"):
        lr_scheduler.StepLR(object(), step_size=3)


def test_step_lr_rejects_a_non_positive_step_size():
    with pytest.raises(ValueError, match="step_size must be a positive integer, got 0"):
        lr_scheduler.StepLR(make_optimizer(optim), step_size=0)


def test_sequential_lr_needs_one_milestone_fewer_than_schedulers():
    optimizer = make_optimizer(optim)
    first = lr_scheduler.ExponentialLR(optimizer, gamma=0.9)
    with pytest.raises(ValueError, match="2 schedulers need 1 milestones, got 0"):
        lr_scheduler.SequentialLR(optimizer, [first, first], milestones=[])


def test_state_dict_is_a_snapshot_that_later_steps_do_not_change():
    optimizer = make_optimizer(optim)
    scheduler = lr_scheduler.ExponentialLR(optimizer, gamma=0.5)
    saved = scheduler.state_dict()
    scheduler.step()
    assert saved["last_epoch"] == 0 and saved["_last_lr"] == [0.1, 0.03]
    assert "optimizer" not in saved and math.isclose(scheduler.get_last_lr()[0], 0.05)
