"""Muon: momentum, then the nearest (semi-)orthogonal matrix to the update, for the weight matrices.

Keller Jordan et al., "Muon: An optimizer for hidden layers in neural networks" (2024, the blog
post and github.com/KellerJordan/Muon); used by the CIFAR-10 speed records (airbench) and
PyTorch's torch.optim.Muon. For a weight matrix W (a convolution's filters are the matrix
(F, C*KH*KW), one row per filter), at each step, as PyTorch computes it:

    b = momentum * b + (1 - momentum) * g                     the momentum buffer (b starts at 0)
    u = (1 - momentum) * g + momentum * b   (nesterov)  or  u = b
    O = orthogonalise(u)                                      see below
    W = W * (1 - lr * weight_decay) - lr * sqrt(max(1, rows / cols)) * O

Why orthogonalise? Write u = U S V^T (its singular value decomposition). The gradient of a layer
is dominated by a few directions (a few large singular values); SGD moves W mostly along them.
Replacing u by U V^T (every singular value set to 1) keeps the directions of the update and
gives each the same step, so the rare directions learn as fast as the common ones. It is the
steepest-descent step under the spectral norm instead of the Frobenius norm.

Computing U V^T without an SVD: the Newton-Schulz iteration. Scale X = u / ||u||_F, so that every
singular value lies in (0, 1]; then repeat five times

    A = X X^T,   X = a X + (b A + c A A) X,    (a, b, c) = (3.4445, -4.7750, 2.0315)

Each step applies the odd polynomial p(s) = a s + b s^3 + c s^5 to every singular value s of X at
once (X X^T X = U S^3 V^T). These coefficients push small singular values up fast (p'(0) = a)
and, for singular values within two orders of magnitude of the largest, leave them in roughly
[0.5, 1.2] after five steps (much smaller ones grow a few hundredfold, short of 1): not exactly
U V^T, which does not hurt training. A wide matrix is iterated as is and a tall one transposed, so that A is the smaller
of X X^T and X^T X.

Difference from torch.optim.Muon: PyTorch runs the iteration in bfloat16 (fast on GPUs) and
accepts only 2-D parameters; minigrad runs it in the parameter's own dtype and takes any
parameter of 2 or more dimensions as the matrix (shape[0], the rest), as the speed records do
with convolution filters. Biases, batch-norm scales and the like (1-D) belong to another
optimizer (SGD or Adam) in a second optimizer or parameter group.
"""
import math

from minigrad import backend
from minigrad.optim.optimizer import Optimizer, check_non_negative

DEFAULT_COEFFICIENTS = (3.4445, -4.7750, 2.0315)


def orthogonalise(update, coefficients=DEFAULT_COEFFICIENTS, steps=5, eps=1e-7):
    """The Newton-Schulz approximation of U V^T for a 2-D array update = U S V^T (see the module docstring)."""
    a, b, c = coefficients
    xp = backend.array_module(update)
    x = update.T if update.shape[0] > update.shape[1] else update
    x = x / xp.maximum(xp.linalg.norm(x), eps)                      # every singular value now <= 1
    for _ in range(steps):
        gram = x @ x.T                                               # (rows, rows), rows <= cols
        x = a * x + (b * gram + c * (gram @ gram)) @ x
    return x.T if update.shape[0] > update.shape[1] else x


class Muon(Optimizer):
    def __init__(self, params, lr=1e-3, weight_decay=0.1, momentum=0.95, nesterov=True,
                 ns_coefficients=DEFAULT_COEFFICIENTS, eps=1e-7, ns_steps=5, adjust_lr_fn=None):
        if adjust_lr_fn not in (None, "original", "match_rms_adamw"):
            raise ValueError(f"Muon: adjust_lr_fn must be None, 'original' or 'match_rms_adamw', got {adjust_lr_fn!r}")
        defaults = dict(lr=lr, weight_decay=weight_decay, momentum=momentum, nesterov=nesterov,
                        ns_coefficients=tuple(ns_coefficients), eps=eps, ns_steps=ns_steps, adjust_lr_fn=adjust_lr_fn)
        super().__init__(params, defaults)

    def check_hyperparameters(self, group):
        for name in ("lr", "weight_decay", "momentum", "eps"):
            check_non_negative("Muon", name, group[name])
        if len(group["ns_coefficients"]) != 3:
            raise ValueError(f"Muon: ns_coefficients must be 3 numbers (a, b, c), got {group['ns_coefficients']!r}")
        if not isinstance(group["ns_steps"], int) or not 0 < group["ns_steps"] < 100:
            raise ValueError(f"Muon: ns_steps must be an integer in [1, 99], got {group['ns_steps']!r}")
        for p in group.get("params", ()):                 # the defaults have none; each group does
            if p.ndim < 2:
                raise ValueError(
                    f"Muon: a parameter of shape {p.shape} is not a matrix; Muon updates weight matrices and "
                    f"convolution filters. Give biases and batch-norm parameters to another optimizer "
                    f"(e.g. SGD or AdamW over [p for p in model.parameters() if p.ndim < 2])")

    @staticmethod
    def adjusted_lr(group, rows, cols):
        """PyTorch's rules: 'original' (the default) lr * sqrt(max(1, rows/cols)); 'match_rms_adamw'
        0.2 * sqrt(max(rows, cols)) * lr, which gives the update the typical size of AdamW's."""
        if group["adjust_lr_fn"] == "match_rms_adamw":
            return group["lr"] * 0.2 * math.sqrt(max(rows, cols))
        return group["lr"] * math.sqrt(max(1.0, rows / cols))

    def update(self, p, g, state, group):
        xp = backend.array_module(p.array)
        momentum = group["momentum"]
        if "momentum_buffer" not in state:
            state["momentum_buffer"] = xp.zeros_like(p.array)
        b = state["momentum_buffer"]
        b += (1 - momentum) * (g - b)                                 # b = momentum * b + (1 - momentum) * g
        u = g + momentum * (b - g) if group["nesterov"] else b        # (1 - momentum) * g + momentum * b
        matrix = u.reshape(p.shape[0], -1)                            # a filter per row
        rows, cols = matrix.shape
        o = orthogonalise(matrix, group["ns_coefficients"], group["ns_steps"], group["eps"])
        p.array *= 1 - group["lr"] * group["weight_decay"]
        p.array -= self.adjusted_lr(group, rows, cols) * o.reshape(p.shape).astype(p.dtype, copy=False)
