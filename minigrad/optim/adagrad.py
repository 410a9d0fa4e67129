"""Adagrad: each parameter's own learning rate, shrinking with the sum of its squared gradients.

Duchi, Hazan and Singer, "Adaptive Subgradient Methods for Online Learning and Stochastic
Optimization" (JMLR 2011). For each parameter p, at step t (1, 2, ...), as PyTorch computes it:

    g = dL/dp                                  (g = -dL/dp when maximize=True)
    g = g + weight_decay * p
    lr_t = lr / (1 + (t - 1) * lr_decay)
    s = s + g * g                              s starts at initial_accumulator_value
    p = p - lr_t * g / (sqrt(s) + eps)

A coordinate that has had large gradients takes small steps from then on, and a rarely
updated one keeps large steps. s only grows, so every step size only shrinks: a good fit for
sparse, convex problems, and the reason RMSprop replaced the sum by a running mean.
"""
from minigrad import backend
from minigrad.optim.optimizer import Optimizer, check_non_negative


class Adagrad(Optimizer):
    def __init__(self, params, lr=1e-2, lr_decay=0.0, weight_decay=0.0, initial_accumulator_value=0.0,
                 eps=1e-10, maximize=False):
        defaults = dict(lr=lr, lr_decay=lr_decay, weight_decay=weight_decay,
                        initial_accumulator_value=initial_accumulator_value, eps=eps, maximize=maximize)
        super().__init__(params, defaults)

    def check_hyperparameters(self, group):
        for name in ("lr", "lr_decay", "weight_decay", "initial_accumulator_value", "eps"):
            check_non_negative("Adagrad", name, group[name])

    def update(self, p, g, state, group):
        xp = backend.array_module(p.array)
        if not state:
            state["step"] = 0
            state["sum"] = xp.full_like(p.array, group["initial_accumulator_value"])
        state["step"] += 1

        if group["maximize"]:
            g = -g
        if group["weight_decay"] != 0:
            g = g + group["weight_decay"] * p.array

        lr_t = group["lr"] / (1 + (state["step"] - 1) * group["lr_decay"])
        s = state["sum"]
        s += g * g
        p.array -= lr_t * (g / (xp.sqrt(s) + group["eps"]))
