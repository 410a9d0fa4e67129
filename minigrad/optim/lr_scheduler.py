"""Learning-rate schedules: change each parameter group's lr as training goes on.

A scheduler is stepped once per epoch (or per batch, for OneCycleLR), after
the optimizer::

    for epoch in range(epochs):
        train_one_epoch(model, optimizer)        # calls optimizer.step()
        scheduler.step()                         # epoch -> epoch + 1, sets group["lr"]

`last_epoch` counts the scheduler's steps; creating the scheduler is step 0 and
already sets the first lr. Every schedule here is written in closed form,
lr = f(base_lr, epoch), where base_lr is the group's lr when the scheduler was
made (kept as group["initial_lr"]). PyTorch computes most of these
recursively from the previous lr; both give the same numbers, but the closed
form is easier to read and to check. One consequence: an lr changed by hand
between steps is overwritten at the next step.

Notation below: b = base_lr, t = last_epoch.
"""
import math
from bisect import bisect_right
from collections import Counter

from minigrad.optim.optimizer import Optimizer


class LRScheduler:
    """Base class: subclasses implement get_lr() (the lrs at epoch self.last_epoch)."""

    def __init__(self, optimizer):
        if not isinstance(optimizer, Optimizer):
            raise TypeError(f"{type(self).__name__}: {type(optimizer).__name__} is not an Optimizer")
        self.optimizer = optimizer
        for group in optimizer.param_groups:
            group.setdefault("initial_lr", group["lr"])
        self.base_lrs = [group["initial_lr"] for group in optimizer.param_groups]
        self.last_epoch = -1
        self.step()

    def get_lr(self):
        raise NotImplementedError

    def step(self):
        """Advance one epoch and write the new lrs into the optimizer."""
        self.last_epoch += 1
        self.update_optimizer()

    def update_optimizer(self):
        """Write this schedule's values at self.last_epoch into the optimizer's groups."""
        lrs = self.get_lr()
        for group, lr in zip(self.optimizer.param_groups, lrs):
            group["lr"] = lr
        self._last_lr = list(lrs)

    def get_last_lr(self):
        """The lrs set by the latest step, one per parameter group."""
        return list(self._last_lr)

    def state_dict(self):
        """Everything but the optimizer (lists are copied, so this is a snapshot)."""
        return {key: _copy(value) for key, value in self.__dict__.items() if key != "optimizer"}

    def load_state_dict(self, state_dict):
        self.__dict__.update({key: _copy(value) for key, value in state_dict.items()})


def _copy(value):
    return list(value) if isinstance(value, list) else value


class StepLR(LRScheduler):
    """Multiply the lr by gamma every step_size epochs:  lr = b * gamma^floor(t / step_size)."""

    def __init__(self, optimizer, step_size, gamma=0.1):
        if not (isinstance(step_size, int) and step_size > 0):
            raise ValueError(f"StepLR: step_size must be a positive integer, got {step_size!r}")
        self.step_size = step_size
        self.gamma = gamma
        super().__init__(optimizer)

    def get_lr(self):
        return [b * self.gamma ** (self.last_epoch // self.step_size) for b in self.base_lrs]


class MultiStepLR(LRScheduler):
    """Multiply the lr by gamma at each milestone:  lr = b * gamma^(number of milestones <= t).

    A milestone listed twice counts twice.
    """

    def __init__(self, optimizer, milestones, gamma=0.1):
        self.milestones = sorted(Counter(milestones).elements())
        self.gamma = gamma
        super().__init__(optimizer)

    def get_lr(self):
        passed = bisect_right(self.milestones, self.last_epoch)
        return [b * self.gamma ** passed for b in self.base_lrs]


class ExponentialLR(LRScheduler):
    """Multiply the lr by gamma every epoch:  lr = b * gamma^t."""

    def __init__(self, optimizer, gamma):
        self.gamma = gamma
        super().__init__(optimizer)

    def get_lr(self):
        return [b * self.gamma ** self.last_epoch for b in self.base_lrs]


class CosineAnnealingLR(LRScheduler):
    """Half a cosine from b down to eta_min over T_max epochs (SGDR without restarts):

        lr = eta_min + (b - eta_min) * (1 + cos(pi * t / T_max)) / 2

    After T_max the cosine goes on, so the lr climbs back up to b at 2 * T_max.
    """

    def __init__(self, optimizer, T_max, eta_min=0.0):
        if not T_max > 0:
            raise ValueError(f"CosineAnnealingLR: T_max must be > 0, got {T_max!r}")
        self.T_max = T_max
        self.eta_min = eta_min
        super().__init__(optimizer)

    def get_lr(self):
        cosine = (1 + math.cos(math.pi * self.last_epoch / self.T_max)) / 2
        return [self.eta_min + (b - self.eta_min) * cosine for b in self.base_lrs]


class LinearLR(LRScheduler):
    """Scale the lr by a factor that moves linearly from start_factor to end_factor
    over total_iters epochs, then stays (linear warm-up with the defaults end_factor=1):

        lr = b * (start_factor + (end_factor - start_factor) * min(t, total_iters) / total_iters)
    """

    def __init__(self, optimizer, start_factor=1.0 / 3, end_factor=1.0, total_iters=5):
        if not 0 < start_factor <= 1:
            raise ValueError(f"LinearLR: start_factor must be in (0, 1], got {start_factor!r}")
        if not 0 <= end_factor <= 1:
            raise ValueError(f"LinearLR: end_factor must be in [0, 1], got {end_factor!r}")
        if not (isinstance(total_iters, int) and total_iters > 0):
            raise ValueError(f"LinearLR: total_iters must be a positive integer, got {total_iters!r}")
        self.start_factor = start_factor
        self.end_factor = end_factor
        self.total_iters = total_iters
        super().__init__(optimizer)

    def get_lr(self):
        progress = min(self.last_epoch, self.total_iters) / self.total_iters
        factor = self.start_factor + (self.end_factor - self.start_factor) * progress
        return [b * factor for b in self.base_lrs]


class OneCycleLR(LRScheduler):
    """The 1cycle policy (Smith & Topin, 2018), stepped once per batch for total_steps steps.

    With T = total_steps, s = pct_start * T - 1 (the step where the lr peaks),
    and anneal(a, c, x) = c + (a - c) * (1 + cos(pi * x)) / 2 (cosine from a to c
    as x goes 0 -> 1; 'linear' uses a + (c - a) * x):

        initial_lr = max_lr / div_factor,   min_lr = initial_lr / final_div_factor
        t <= s:  lr = anneal(initial_lr, max_lr, t / s)
                 momentum = anneal(max_momentum, base_momentum, t / s)
        t >  s:  lr = anneal(max_lr, min_lr, (t - s) / (T - 1 - s))
                 momentum = anneal(base_momentum, max_momentum, (t - s) / (T - 1 - s))

    The momentum (SGD, RMSprop) or beta1 (Adam) moves opposite to the lr when
    cycle_momentum=True. Stepping past total_steps is an error.
    """

    def __init__(self, optimizer, max_lr, total_steps=None, epochs=None, steps_per_epoch=None,
                 pct_start=0.3, anneal_strategy="cos", cycle_momentum=True,
                 base_momentum=0.85, max_momentum=0.95, div_factor=25.0, final_div_factor=1e4):
        if total_steps is None:
            if epochs is None or steps_per_epoch is None:
                raise ValueError("OneCycleLR: give total_steps, or both epochs and steps_per_epoch")
            total_steps = epochs * steps_per_epoch
        if not (isinstance(total_steps, int) and total_steps > 0):
            raise ValueError(f"OneCycleLR: total_steps must be a positive integer, got {total_steps!r}")
        if not 0 <= pct_start <= 1:
            raise ValueError(f"OneCycleLR: pct_start must be in [0, 1], got {pct_start!r}")
        if anneal_strategy not in ("cos", "linear"):
            raise ValueError(f"OneCycleLR: anneal_strategy must be 'cos' or 'linear', got {anneal_strategy!r}")
        groups = optimizer.param_groups
        self.total_steps = total_steps
        self.peak_step = float(pct_start * total_steps) - 1
        self.anneal_strategy = anneal_strategy
        self.max_lrs = _per_group("max_lr", max_lr, groups)
        self.min_lrs = [m / div_factor / final_div_factor for m in self.max_lrs]
        for group, m in zip(groups, self.max_lrs):
            group["initial_lr"] = m / div_factor
        self.cycle_momentum = cycle_momentum
        if cycle_momentum:
            if "momentum" not in optimizer.defaults and "betas" not in optimizer.defaults:
                raise ValueError(
                    f"OneCycleLR: cycle_momentum=True but {type(optimizer).__name__} has no "
                    "momentum or betas; pass cycle_momentum=False"
                )
            self.use_beta1 = "betas" in optimizer.defaults
            self.max_momentums = _per_group("max_momentum", max_momentum, groups)
            self.base_momentums = _per_group("base_momentum", base_momentum, groups)
        super().__init__(optimizer)

    def anneal(self, start, end, x):
        if self.anneal_strategy == "cos":
            return end + (start - end) * (1 + math.cos(math.pi * x)) / 2
        return start + (end - start) * x

    def _phase(self):
        """(x, phase) with phase 0 = warm-up, 1 = annealing, x in [0, 1] the progress through it."""
        t = self.last_epoch
        if t > self.total_steps:
            raise ValueError(
                f"OneCycleLR: stepped {t} times, but total_steps is {self.total_steps}"
            )
        if t <= self.peak_step:
            return t / self.peak_step, 0
        return (t - self.peak_step) / (self.total_steps - 1 - self.peak_step), 1

    def get_lr(self):
        x, phase = self._phase()
        if phase == 0:
            return [self.anneal(b, m, x) for b, m in zip(self.base_lrs, self.max_lrs)]
        return [self.anneal(m, low, x) for m, low in zip(self.max_lrs, self.min_lrs)]

    def update_optimizer(self):
        super().update_optimizer()
        if not self.cycle_momentum:
            return
        x, phase = self._phase()
        for group, high, low in zip(self.optimizer.param_groups, self.max_momentums, self.base_momentums):
            momentum = self.anneal(high, low, x) if phase == 0 else self.anneal(low, high, x)
            if self.use_beta1:
                group["betas"] = (momentum, *group["betas"][1:])
            else:
                group["momentum"] = momentum


def _per_group(name, value, groups):
    """One value per parameter group: a list is checked for length, a number is repeated."""
    if isinstance(value, (list, tuple)):
        if len(value) != len(groups):
            raise ValueError(
                f"OneCycleLR: {name} has {len(value)} values but the optimizer has {len(groups)} groups"
            )
        return list(value)
    return [value] * len(groups)


class SequentialLR(LRScheduler):
    """Run schedulers one after another, switching at the milestones (global epochs).

    Scheduler i runs on its own clock, starting at 0 on milestone i-1, e.g.
    a 5-epoch linear warm-up then cosine decay:

        warmup = LinearLR(opt, start_factor=0.1, total_iters=5)
        decay = CosineAnnealingLR(opt, T_max=25)
        scheduler = SequentialLR(opt, [warmup, decay], milestones=[5])
    """

    def __init__(self, optimizer, schedulers, milestones):
        if len(schedulers) < 1:
            raise ValueError("SequentialLR: needs at least one scheduler")
        for index, scheduler in enumerate(schedulers):
            if scheduler.optimizer is not optimizer:
                raise ValueError(f"SequentialLR: schedulers[{index}] belongs to a different optimizer")
        if len(milestones) != len(schedulers) - 1:
            raise ValueError(
                f"SequentialLR: {len(schedulers)} schedulers need {len(schedulers) - 1} milestones, "
                f"got {len(milestones)}"
            )
        self.optimizer = optimizer
        self.schedulers = list(schedulers)
        self.milestones = list(milestones)
        self.base_lrs = [group["initial_lr"] for group in optimizer.param_groups]
        self.last_epoch = -1
        self.step()

    def update_optimizer(self):
        index = bisect_right(self.milestones, self.last_epoch)
        start = self.milestones[index - 1] if index > 0 else 0
        scheduler = self.schedulers[index]
        scheduler.last_epoch = self.last_epoch - start
        scheduler.update_optimizer()
        self._last_lr = scheduler.get_last_lr()

    def state_dict(self):
        state = {key: _copy(value) for key, value in self.__dict__.items()
                 if key not in ("optimizer", "schedulers")}
        state["schedulers"] = [scheduler.state_dict() for scheduler in self.schedulers]
        return state

    def load_state_dict(self, state_dict):
        state = dict(state_dict)
        for scheduler, saved in zip(self.schedulers, state.pop("schedulers")):
            scheduler.load_state_dict(saved)
        self.__dict__.update({key: _copy(value) for key, value in state.items()})
