"""Adam: per-coordinate step sizes from running averages of the gradient and its square.

Kingma & Ba, "Adam: A Method for Stochastic Optimization" (2015). For each
parameter p, with t counting its steps from 1, one step computes (as PyTorch
does):

    g = dL/dp                          (g = -dL/dp when maximize=True)
    weight decay, one of:
        L2 (Adam):          g = g + weight_decay * p
        decoupled (AdamW):  p = p - lr * weight_decay * p     (g is left alone)

    m = beta1 * m + (1 - beta1) * g        first moment,  m starts at 0
    v = beta2 * v + (1 - beta2) * g * g    second moment, v starts at 0
    amsgrad: v_max = max(v_max, v), and v_max replaces v below

    bias correction (m and v start at 0, so early averages are too small):
        m_hat = m / (1 - beta1^t)
        v_hat = v / (1 - beta2^t)

    p = p - lr * m_hat / (sqrt(v_hat) + eps)

eps is added after the square root of the bias-corrected v, exactly as in
PyTorch. The code computes the same thing as
    p = p - (lr / (1 - beta1^t)) * m / (sqrt(v) / sqrt(1 - beta2^t) + eps)
so that only one temporary array is made for the denominator.
"""
import math

from minigrad import backend
from minigrad.optim.optimizer import Optimizer, check_beta, check_non_negative


class Adam(Optimizer):
    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0,
                 amsgrad=False, maximize=False, decoupled_weight_decay=False):
        defaults = dict(lr=lr, betas=tuple(betas), eps=eps, weight_decay=weight_decay,
                        amsgrad=amsgrad, maximize=maximize,
                        decoupled_weight_decay=decoupled_weight_decay)
        super().__init__(params, defaults)

    def check_hyperparameters(self, group):
        name = type(self).__name__
        check_non_negative(name, "lr", group["lr"])
        check_non_negative(name, "eps", group["eps"])
        check_non_negative(name, "weight_decay", group["weight_decay"])
        if len(group["betas"]) != 2:
            raise ValueError(f"{name}: betas must be a pair (beta1, beta2), got {group['betas']!r}")
        check_beta(name, "betas[0]", group["betas"][0])
        check_beta(name, "betas[1]", group["betas"][1])

    def update(self, p, g, state, group):
        xp = backend.array_module(p.array)
        lr, eps, weight_decay = group["lr"], group["eps"], group["weight_decay"]
        beta1, beta2 = group["betas"]
        if not state:
            state["step"] = 0
            state["m"] = xp.zeros_like(p.array)
            state["v"] = xp.zeros_like(p.array)
        if group["amsgrad"] and "v_max" not in state:
            state["v_max"] = xp.zeros_like(p.array)
        state["step"] += 1
        t = state["step"]

        if group["maximize"]:
            g = -g
        if weight_decay != 0:
            if group["decoupled_weight_decay"]:
                p.array *= 1 - lr * weight_decay
            else:
                g = g + weight_decay * p.array

        m, v = state["m"], state["v"]
        m *= beta1
        m += (1 - beta1) * g
        v *= beta2
        v += (1 - beta2) * (g * g)
        if group["amsgrad"]:
            xp.maximum(state["v_max"], v, out=state["v_max"])
            v = state["v_max"]

        bias_correction1 = 1 - beta1 ** t
        bias_correction2 = 1 - beta2 ** t
        step_size = lr / bias_correction1
        denominator = xp.sqrt(v) / math.sqrt(bias_correction2) + eps
        p.array -= step_size * (m / denominator)
