"""SGD: stochastic gradient descent, with optional momentum and weight decay.

For each parameter p with gradient dL/dp, one step computes (as PyTorch does):

    g = dL/dp                      (g = -dL/dp when maximize=True)
    g = g + weight_decay * p       (L2 penalty folded into the gradient)

    with momentum > 0, using a buffer b kept per parameter:
        first step:  b = g                                   (no dampening yet)
        later:       b = momentum * b + (1 - dampening) * g
        nesterov:    d = g + momentum * b                    (look ahead along b)
        otherwise:   d = b
    without momentum:
        d = g

    p = p - lr * d

The first step copies g into b instead of decaying a zero buffer, so the
first update has the full size lr * g whatever `dampening` is.
"""
from minigrad.optim.optimizer import Optimizer, check_non_negative


class SGD(Optimizer):
    def __init__(self, params, lr, momentum=0.0, dampening=0.0, weight_decay=0.0,
                 nesterov=False, maximize=False):
        defaults = dict(lr=lr, momentum=momentum, dampening=dampening,
                        weight_decay=weight_decay, nesterov=nesterov, maximize=maximize)
        super().__init__(params, defaults)

    def check_hyperparameters(self, group):
        check_non_negative("SGD", "lr", group["lr"])
        check_non_negative("SGD", "momentum", group["momentum"])
        check_non_negative("SGD", "weight_decay", group["weight_decay"])
        if group["nesterov"] and (group["momentum"] <= 0 or group["dampening"] != 0):
            raise ValueError(
                f"SGD: nesterov=True needs momentum > 0 and dampening = 0, but got "
                f"momentum={group['momentum']!r} and dampening={group['dampening']!r}"
            )

    def update(self, p, g, state, group):
        momentum = group["momentum"]
        if group["maximize"]:
            g = -g
        if group["weight_decay"] != 0:
            g = g + group["weight_decay"] * p.array   # a new array: p.grad is left untouched

        if momentum != 0:
            if "momentum_buffer" not in state:
                state["momentum_buffer"] = g.copy()
            else:
                b = state["momentum_buffer"]
                b *= momentum
                b += (1 - group["dampening"]) * g
            b = state["momentum_buffer"]
            d = g + momentum * b if group["nesterov"] else b
        else:
            d = g

        p.array -= group["lr"] * d
