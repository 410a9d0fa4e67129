"""Chapter 6: optimizer trajectories on the Rosenbrock function, and learning-rate schedules.

    python docs/figures/optimizer_paths.py     # writes optimizer_paths.png and lr_schedules.png

Trajectories: every optimizer in minigrad.optim minimises the Rosenbrock function

    f(x, y) = (1 - x)^2 + 100 (y - x^2)^2        minimum f = 0 at (1, 1)

from (-1.5, 2) for the same number of steps. The point (x, y) is one minigrad
Tensor; each step is the usual loop: zero_grad, f.backward(), optimizer.step().
The valley floor y = x^2 is long, curved and narrow (curvature ~2 along it,
~200 across it), the shape that makes plain gradient descent zig-zag.

Schedules: the lr that each scheduler in minigrad.optim.lr_scheduler sets, epoch by
epoch, for base lr 0.1 over 100 epochs (OneCycleLR stepped 100 times).
"""
import numpy

from common import plt, save

import minigrad  # noqa: E402
from minigrad import optim  # noqa: E402
from minigrad.optim import lr_scheduler  # noqa: E402

START = (-1.5, 2.0)
STEPS = 1000
OPTIMIZERS = {                       # name -> (class, keyword arguments), lrs picked by hand
    "SGD lr=1e-3": (optim.SGD, dict(lr=1e-3)),
    "SGD lr=5e-4, momentum 0.9": (optim.SGD, dict(lr=5e-4, momentum=0.9)),
    "SGD lr=5e-4, Nesterov 0.9": (optim.SGD, dict(lr=5e-4, momentum=0.9, nesterov=True)),
    "RMSprop lr=1e-2": (optim.RMSprop, dict(lr=1e-2)),
    "Adam lr=0.1": (optim.Adam, dict(lr=0.1)),
    "AdamW lr=0.1, weight_decay=0.1": (optim.AdamW, dict(lr=0.1, weight_decay=0.1)),
}


def rosenbrock(p):
    x, y = p[0], p[1]
    return (1 - x) ** 2 + 100 * (y - x * x) ** 2


def trajectory(optimizer_class, kwargs, steps=STEPS):
    point = minigrad.tensor(START, dtype=minigrad.float64, requires_grad=True)
    optimizer = optimizer_class([point], **kwargs)
    path = [point.array.copy()]
    for _ in range(steps):
        optimizer.zero_grad()
        rosenbrock(point).backward()
        optimizer.step()
        path.append(point.array.copy())
    return numpy.array(path)


def plot_trajectories():
    figure, grid = plt.subplots(2, 3, figsize=(9.5, 5.6), sharex=True, sharey=True)
    xs, ys = numpy.meshgrid(numpy.linspace(-2, 2, 120), numpy.linspace(-1, 3, 120))
    levels = numpy.log10((1 - xs) ** 2 + 100 * (ys - xs ** 2) ** 2 + 1e-3)
    print(f"Rosenbrock from {START}, {STEPS} steps:")
    for axes, (name, (optimizer_class, kwargs)) in zip(grid.flat, OPTIMIZERS.items()):
        path = trajectory(optimizer_class, kwargs)
        final = path[-1]
        loss = (1 - final[0]) ** 2 + 100 * (final[1] - final[0] ** 2) ** 2
        print(f"  {name:32s} ends at ({final[0]: .3f}, {final[1]: .3f}), f = {loss:.2e}")
        axes.contour(xs, ys, levels, levels=12, cmap="Greys", linewidths=0.5)
        axes.plot(path[:, 0], path[:, 1], color="#d62828", linewidth=1.2)
        axes.plot(*START, "ko", markersize=4)
        axes.plot(1, 1, "b*", markersize=10)
        axes.set_title(f"{name}\nf after {STEPS} steps = {loss:.1e}", fontsize=9)
    for axes in grid[-1]:
        axes.set_xlabel("x")
    for axes in grid[:, 0]:
        axes.set_ylabel("y")
    figure.suptitle(f"minigrad.optim on Rosenbrock from {START} (dot) towards the minimum (1, 1) (star)")
    figure.tight_layout()
    save(figure, "optimizer_paths.png")


def schedule(make, epochs=100, base_lr=0.1):
    """The lr of each epoch under the scheduler that make(optimizer) builds."""
    point = minigrad.tensor([0.0], requires_grad=True)
    optimizer = optim.SGD([point], lr=base_lr, momentum=0.9)
    scheduler = make(optimizer)
    lrs = []
    for _ in range(epochs):
        lrs.append(optimizer.param_groups[0]["lr"])   # the lr this epoch trains with
        optimizer.step()                     # no gradient, so nothing moves; the call order is the real one
        if len(lrs) < epochs:                # OneCycleLR refuses to step past its last step
            scheduler.step()
    return lrs


def plot_schedules():
    schedules = {
        "StepLR(step_size=30, gamma=0.1)": lambda o: lr_scheduler.StepLR(o, step_size=30, gamma=0.1),
        "MultiStepLR([50, 75])": lambda o: lr_scheduler.MultiStepLR(o, milestones=[50, 75]),
        "ExponentialLR(gamma=0.96)": lambda o: lr_scheduler.ExponentialLR(o, gamma=0.96),
        "CosineAnnealingLR(T_max=100)": lambda o: lr_scheduler.CosineAnnealingLR(o, T_max=100),
        "LinearLR warm-up 5, then cosine": lambda o: lr_scheduler.SequentialLR(
            o, [lr_scheduler.LinearLR(o, start_factor=0.1, total_iters=5),
                lr_scheduler.CosineAnnealingLR(o, T_max=95)], milestones=[5]),
        "OneCycleLR(max_lr=0.1, 100 steps)": lambda o: lr_scheduler.OneCycleLR(o, max_lr=0.1, total_steps=100),
    }
    figure, axes = plt.subplots(figsize=(7.5, 3.8))
    for name, make in schedules.items():
        axes.plot(schedule(make), label=name, linewidth=1.5)
    axes.set_xlabel("epoch (step)")
    axes.set_ylabel("learning rate")
    axes.set_title("minigrad.optim.lr_scheduler, base lr 0.1")
    axes.legend(fontsize=8)
    save(figure, "lr_schedules.png")


def main():
    plot_trajectories()
    plot_schedules()


if __name__ == "__main__":
    main()
