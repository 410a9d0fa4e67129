"""Adadelta: steps whose size comes from the recent steps themselves, with no learning rate to tune.

Zeiler, "ADADELTA: An Adaptive Learning Rate Method" (2012). For each parameter p, as PyTorch
computes it:

    g = dL/dp                                  (g = -dL/dp when maximize=True)
    g = g + weight_decay * p
    v = rho * v + (1 - rho) * g * g            running mean of g^2, v starts at 0
    d = sqrt(u + eps) / sqrt(v + eps) * g      the step, before lr
    u = rho * u + (1 - rho) * d * d            running mean of the squared steps, u starts at 0
    p = p - lr * d                             (lr = 1 in the paper)

The ratio sqrt(u) / sqrt(v) has the units of p / g, so d has the units of p: the "units
correction" of the paper, which is what lets lr default to 1. eps starts the very first steps
(u = 0) and keeps both roots away from 0.
"""
from minigrad import backend
from minigrad.optim.optimizer import Optimizer, check_beta, check_non_negative


class Adadelta(Optimizer):
    def __init__(self, params, lr=1.0, rho=0.9, eps=1e-6, weight_decay=0.0, maximize=False):
        defaults = dict(lr=lr, rho=rho, eps=eps, weight_decay=weight_decay, maximize=maximize)
        super().__init__(params, defaults)

    def check_hyperparameters(self, group):
        for name in ("lr", "eps", "weight_decay"):
            check_non_negative("Adadelta", name, group[name])
        check_beta("Adadelta", "rho", group["rho"])

    def update(self, p, g, state, group):
        xp = backend.array_module(p.array)
        rho, eps = group["rho"], group["eps"]
        if not state:
            state["step"] = 0
            state["square_avg"] = xp.zeros_like(p.array)          # v
            state["acc_delta"] = xp.zeros_like(p.array)           # u
        state["step"] += 1

        if group["maximize"]:
            g = -g
        if group["weight_decay"] != 0:
            g = g + group["weight_decay"] * p.array

        v, u = state["square_avg"], state["acc_delta"]
        v *= rho
        v += (1 - rho) * (g * g)
        d = xp.sqrt(u + eps) / xp.sqrt(v + eps) * g
        u *= rho
        u += (1 - rho) * (d * d)
        p.array -= group["lr"] * d
