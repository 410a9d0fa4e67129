"""Gradient clipping: keep one bad batch from throwing the weights far away.

Called between `loss.backward()` and `optimizer.step()`; both functions change
the `.grad` arrays in place.

clip_grad_norm_ rescales all gradients together, as one long vector
g = (g_1, ..., g_n) of every entry of every parameter's gradient:

    total_norm = ||g||_p = (sum_i |g_i|^p)^(1/p)        (max_i |g_i| for p = inf)
    scale = min(1, max_norm / (total_norm + 1e-6))
    g_i = g_i * scale

so the direction of the step is kept and only its length is capped (the 1e-6
avoids dividing by zero; PyTorch uses the same). The total norm is computed
as the p-norm of the per-parameter p-norms, which is the same number.

clip_grad_value_ clips every entry on its own: g_i = min(max(g_i, -c), c),
which can change the direction.
"""
import math

from minigrad import backend
from minigrad.tensor import Tensor


def _gradients(parameters):
    """The gradient arrays of a Tensor or an iterable of Tensors, skipping those without one."""
    if isinstance(parameters, Tensor):
        parameters = [parameters]
    return [p.grad.array for p in parameters if p.grad is not None]


def _vector_norm(x, norm_type):
    """The p-norm of all entries of the array x, as a 0-d array on x's device."""
    xp = backend.array_module(x)
    if norm_type == math.inf:
        return xp.abs(x).max()
    if norm_type == 2.0:
        return xp.sqrt((x * x).sum())
    return (xp.abs(x) ** norm_type).sum() ** (1.0 / norm_type)


def clip_grad_norm_(parameters, max_norm, norm_type=2.0, error_if_nonfinite=False):
    """Scale the gradients in place so that their total norm is at most max_norm.

    Returns the total norm *before* clipping, as a 0-d Tensor (0.0 when no
    parameter has a gradient). norm_type is p > 0 or float('inf').
    With error_if_nonfinite=True a NaN or infinite total norm raises
    RuntimeError instead of silently writing NaNs into the gradients.
    """
    norm_type = float(norm_type)
    if not norm_type > 0:
        raise ValueError(f"clip_grad_norm_: norm_type must be > 0 or inf, got {norm_type!r}")
    grads = _gradients(parameters)
    if len(grads) == 0:
        return Tensor(0.0)
    xp = backend.array_module(grads[0])

    per_parameter = xp.stack([_vector_norm(g, norm_type) for g in grads])   # (n_params,)
    total_norm = _vector_norm(per_parameter, norm_type)                     # ()
    if error_if_nonfinite and not bool(backend.to_python(xp.isfinite(total_norm))):   # the host waits for the GPU
        raise RuntimeError(
            f"clip_grad_norm_: the total norm of order {norm_type} of the gradients is "
            f"{backend.to_python(total_norm)}, so they cannot be clipped; pass error_if_nonfinite=False "
            "to clip anyway"
        )
    scale = xp.minimum(max_norm / (total_norm + 1e-6), 1.0)
    for g in grads:
        g *= scale.astype(g.dtype)
    return Tensor(total_norm)


def clip_grad_value_(parameters, clip_value):
    """Clip every gradient entry in place to [-clip_value, clip_value]."""
    clip_value = float(clip_value)
    for g in _gradients(parameters):
        xp = backend.array_module(g)
        xp.clip(g, -clip_value, clip_value, out=g)
