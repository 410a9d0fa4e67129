"""RMSprop: divide the gradient by a running root-mean-square of recent gradients.

Hinton, Coursera lecture 6e (2012); the centered form is from Graves,
"Generating Sequences With Recurrent Neural Networks" (2013). For each
parameter p one step computes (as PyTorch does):

    g = dL/dp                                  (g = -dL/dp when maximize=True)
    g = g + weight_decay * p

    v = alpha * v + (1 - alpha) * g * g        running mean of g^2, v starts at 0
    centered:
        g_avg = alpha * g_avg + (1 - alpha) * g    running mean of g, starts at 0
        r = sqrt(v - g_avg * g_avg) + eps          (an estimate of the std of g)
    otherwise:
        r = sqrt(v) + eps

    with momentum > 0, using a buffer b that starts at 0:
        b = momentum * b + g / r
        p = p - lr * b
    without momentum:
        p = p - lr * g / r

There is no bias correction: v starts at 0, so the first steps are large
(about lr / sqrt(1 - alpha)); eps is added after the square root.
"""
from minigrad import backend
from minigrad.optim.optimizer import Optimizer, check_non_negative


class RMSprop(Optimizer):
    def __init__(self, params, lr=1e-2, alpha=0.99, eps=1e-8, weight_decay=0.0, momentum=0.0,
                 centered=False, maximize=False):
        defaults = dict(lr=lr, alpha=alpha, eps=eps, weight_decay=weight_decay,
                        momentum=momentum, centered=centered, maximize=maximize)
        super().__init__(params, defaults)

    def check_hyperparameters(self, group):
        for name in ("lr", "alpha", "eps", "weight_decay", "momentum"):
            check_non_negative("RMSprop", name, group[name])

    def update(self, p, g, state, group):
        xp = backend.array_module(p.array)
        alpha, momentum = group["alpha"], group["momentum"]
        if not state:
            state["step"] = 0
            state["square_avg"] = xp.zeros_like(p.array)
        state["step"] += 1

        if group["maximize"]:
            g = -g
        if group["weight_decay"] != 0:
            g = g + group["weight_decay"] * p.array

        v = state["square_avg"]
        v *= alpha
        v += (1 - alpha) * (g * g)
        if group["centered"]:
            if "grad_avg" not in state:
                state["grad_avg"] = xp.zeros_like(p.array)
            g_avg = state["grad_avg"]
            g_avg *= alpha
            g_avg += (1 - alpha) * g
            r = xp.sqrt(v - g_avg * g_avg) + group["eps"]
        else:
            r = xp.sqrt(v) + group["eps"]

        if momentum > 0:
            if "momentum_buffer" not in state:
                state["momentum_buffer"] = xp.zeros_like(p.array)
            b = state["momentum_buffer"]
            b *= momentum
            b += g / r
            p.array -= group["lr"] * b
        else:
            p.array -= group["lr"] * (g / r)
