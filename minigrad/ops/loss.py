"""Losses: cross_entropy (fused log-softmax + NLL), nll_loss, mse_loss, binary_cross_entropy_with_logits.

Shapes:  N batch, C classes, d... optional spatial axes (e.g. H, W for
         segmentation); M = N * prod(d...) rows that each get one label.
         Class scores are (N, C) or (N, C, d...), labels (N,) or (N, d...), integers.

reduction: "none" (one loss per row, shape of the labels), "sum", or "mean".
For the class losses "mean" is a WEIGHTED mean, sum_i loss_i / sum_i w[t_i]
over rows whose label is not ignore_index (PyTorch's definition).

cross_entropy, fused. With p = softmax(z) per row and target distribution q,
    loss_i = -sum_c q_ic log p_ic
    q_ic   = (1 - ls) w[t_i] [c == t_i] + (ls / C) w_c       (ls = label_smoothing, w = class weights)
Since d(log p_ic')/dz_ic = [c == c'] - p_ic,
    dloss_i/dz_ic = p_ic Q_i - q_ic,   Q_i = sum_c q_ic   (= 1 without weights: p - q)
then scaled by dy (and by 1/sum_i w[t_i] for "mean"). Fusing avoids the
exp/log round trip of log_softmax followed by nll_loss, and log p is computed as
(z - max z) - log sum exp(z - max z), so logits of 1e4 neither overflow nor
produce log(0).
"""
import numpy

from minigrad import backend
from minigrad.function import Function

REDUCTIONS = ("none", "mean", "sum")


def _check_reduction(op_name, reduction):
    if reduction not in REDUCTIONS:
        raise ValueError(f"{op_name}: reduction must be one of {REDUCTIONS}, got {reduction!r}")


def _reduce(loss, reduction):
    if reduction == "sum":
        return loss.sum()
    if reduction == "mean":
        return loss.mean()
    return loss


def _reduction_grad(dy, size, reduction):
    """dL/d(loss_i) for each element: dy itself, or dy / size for "mean"."""
    return dy / size if reduction == "mean" else dy


# ------------------------------------------------------------------ class-index losses
def _flatten_classes(x):
    """(N, C, d...) -> (M, C) with rows in (n, d...) order; (C,) -> (1, C)."""
    xp = backend.array_module(x)
    if x.ndim == 1:
        return x.reshape(1, -1)                                          # (1, C)
    return xp.moveaxis(x, 1, -1).reshape(-1, x.shape[1])                # (M, C)


def _unflatten_classes(rows, shape):
    """Inverse of _flatten_classes: (M, C) -> shape (N, C, d...)."""
    xp = backend.array_module(rows)
    if len(shape) == 1:
        return rows.reshape(shape)
    moved = rows.reshape((shape[0],) + tuple(shape[2:]) + (shape[1],))   # (N, d..., C)
    return xp.ascontiguousarray(xp.moveaxis(moved, -1, 1))              # (N, C, d...)


def _check_arrays(op_name, **arrays):
    """Each argument must be a Tensor or an array: a Python list has no dtype to check."""
    for name, value in arrays.items():
        if value is not None and not (hasattr(value, "dtype") and hasattr(value, "shape")):
            raise TypeError(f"{op_name}: {name} must be a Tensor (or a NumPy/CuPy array), got "
                            f"{type(value).__name__}; wrap it first: minigrad.tensor({name})")


def _check_class_target(op_name, scores, target, weight, ignore_index):
    """Labels must be integers of shape (N, d...), each in [0, C) or equal to ignore_index.

    Dtype and shape are checked everywhere. The range needs the labels' values: on the host that is
    cheap, but on the GPU the host would wait for the GPU at every step to learn them, so there a
    label out of range makes the loss NaN instead (_row_weights), which shows when the loss is read;
    the same batch on the CPU raises the exact error."""
    _check_arrays(op_name, input=scores, target=target, weight=weight)
    if scores.ndim < 1:
        raise ValueError(f"{op_name}: input must be (C,), (N, C) or (N, C, d...), got a 0-d array")
    classes = scores.shape[0] if scores.ndim == 1 else scores.shape[1]
    expected = () if scores.ndim == 1 else (scores.shape[0],) + tuple(scores.shape[2:])
    if target.dtype.kind not in "iu":
        raise TypeError(
            f"{op_name}: target must hold integer class indices (e.g. int64), got dtype {target.dtype}; "
            f"class probabilities are not supported"
        )
    if tuple(target.shape) != expected:
        raise ValueError(
            f"{op_name}: target must have shape {expected} for input of shape {tuple(scores.shape)}, "
            f"got {tuple(target.shape)}"
        )
    if weight is not None and tuple(weight.shape) != (classes,):
        raise ValueError(f"{op_name}: weight must have shape ({classes},) (one per class), got {tuple(weight.shape)}")
    if not backend.is_gpu_array(target):
        _check_label_range(op_name, target, classes, ignore_index)
    return classes


def _check_label_range(op_name, target, classes, ignore_index):
    """Host arrays only: every label in [0, C) or equal to ignore_index."""
    labels = target[target != ignore_index]
    bad = labels[(labels < 0) | (labels >= classes)]
    if bad.size:
        raise IndexError(
            f"{op_name}: target label {int(bad[0])} is out of range for {classes} classes "
            f"(expected 0 <= label < {classes}, or ignore_index={ignore_index})"
        )


def _row_weights(xp, target_rows, classes, weight, ignore_index, dtype):
    """(valid rows, safe labels, w[t_i]), each (M,): w[t_i] is 0 for an ignored row and NaN for a label
    out of range, which gets here only on the GPU (see _check_class_target): the loss comes out NaN,
    not silently wrong (CuPy wraps an index out of range around where NumPy raises)."""
    valid = target_rows != ignore_index
    in_range = (target_rows >= 0) & (target_rows < classes)
    labels = xp.where(valid & in_range, target_rows, 0)
    row_weight = valid.astype(dtype) if weight is None else weight.astype(dtype)[labels] * valid
    return valid, labels, xp.where(valid & ~in_range, numpy.dtype(dtype).type(numpy.nan), row_weight)


class CrossEntropy(Function):
    """loss_i = -sum_c q_ic log softmax(z_i)_c;  dz_i = (softmax(z_i) Q_i - q_i) * dL/dloss_i (see module)."""

    def __init__(self, reduction="mean", label_smoothing=0.0, ignore_index=-100):
        _check_reduction("cross_entropy", reduction)
        if not 0.0 <= label_smoothing <= 1.0:
            raise ValueError(f"cross_entropy: label_smoothing must be in [0, 1], got {label_smoothing}")
        self.reduction, self.label_smoothing, self.ignore_index = reduction, label_smoothing, ignore_index

    def forward(self, logits, target, weight=None):
        xp = backend.array_module(logits)
        classes = _check_class_target("cross_entropy", logits, target, weight, self.ignore_index)
        z = _flatten_classes(logits)                                     # (M, C)
        valid, labels, row_weight = _row_weights(xp, target.reshape(-1), classes, weight, self.ignore_index, z.dtype)
        shifted = z - z.max(axis=1, keepdims=True)                       # <= 0: exp never overflows
        log_p = shifted - xp.log(xp.exp(shifted).sum(axis=1, keepdims=True))  # (M, C)
        class_weight = xp.ones(classes, dtype=z.dtype) if weight is None else weight.astype(z.dtype)
        rows = xp.arange(z.shape[0])
        q = xp.zeros_like(z)                                             # (M, C) target distribution
        q[rows, labels] = (1 - self.label_smoothing) * row_weight        # row_weight is 0 when ignored
        q += (self.label_smoothing / classes) * class_weight[None, :] * valid[:, None]
        loss = -(q * log_p).sum(axis=1)                                  # (M,)
        denominator = row_weight.sum()
        self.saved = (log_p, q, denominator, logits.shape)
        if self.reduction == "none":
            return loss.reshape(target.shape)
        return loss.sum() / denominator if self.reduction == "mean" else loss.sum()

    def backward(self, dy):
        log_p, q, denominator, logits_shape = self.saved
        xp = backend.array_module(log_p)
        p = xp.exp(log_p)                                                # softmax, (M, C)
        scale = dy.reshape(-1, 1) if self.reduction == "none" else dy    # (M, 1) or a scalar
        if self.reduction == "mean":
            scale = scale / denominator
        dz = (p * q.sum(axis=1, keepdims=True) - q) * scale              # (M, C)
        return _unflatten_classes(dz, logits_shape), None, None


class NLLLoss(Function):
    """loss_i = -w[t_i] log_probs[i, t_i];  d log_probs[i, t_i] = -w[t_i] * dL/dloss_i, 0 elsewhere."""

    def __init__(self, reduction="mean", ignore_index=-100):
        _check_reduction("nll_loss", reduction)
        self.reduction, self.ignore_index = reduction, ignore_index

    def forward(self, log_probs, target, weight=None):
        xp = backend.array_module(log_probs)
        classes = _check_class_target("nll_loss", log_probs, target, weight, self.ignore_index)
        rows_lp = _flatten_classes(log_probs)                            # (M, C)
        _, labels, row_weight = _row_weights(xp, target.reshape(-1), classes, weight, self.ignore_index,
                                             rows_lp.dtype)
        rows = xp.arange(rows_lp.shape[0])
        loss = -row_weight * rows_lp[rows, labels]                       # (M,)
        denominator = row_weight.sum()
        self.saved = (labels, row_weight, denominator, log_probs.shape, rows_lp.shape)
        if self.reduction == "none":
            return loss.reshape(target.shape)
        return loss.sum() / denominator if self.reduction == "mean" else loss.sum()

    def backward(self, dy):
        labels, row_weight, denominator, shape, flat_shape = self.saved
        xp = backend.array_module(row_weight)
        scale = dy.reshape(-1) if self.reduction == "none" else dy       # (M,) or a scalar
        if self.reduction == "mean":
            scale = scale / denominator
        d_rows = xp.zeros(flat_shape, dtype=row_weight.dtype)            # (M, C)
        d_rows[xp.arange(flat_shape[0]), labels] = -row_weight * scale
        return _unflatten_classes(d_rows, shape), None, None


# ------------------------------------------------------------------ elementwise losses
class MSELoss(Function):
    """loss = (x - t)^2 elementwise, then reduced;  dx = 2 (x - t) * dL/dloss,  dt = -dx."""

    def __init__(self, reduction="mean"):
        _check_reduction("mse_loss", reduction)
        self.reduction = reduction

    def forward(self, x, target):
        _check_arrays("mse_loss", input=x, target=target)
        if tuple(x.shape) != tuple(target.shape):
            raise ValueError(
                f"mse_loss: input shape {tuple(x.shape)} and target shape {tuple(target.shape)} must be equal"
            )
        difference = x - target
        self.saved = (difference,)
        return _reduce(difference * difference, self.reduction)

    def backward(self, dy):
        (difference,) = self.saved
        dx = 2 * difference * _reduction_grad(dy, difference.size, self.reduction)
        return dx, (-dx if self.needs_input_grad[1] else None)


class BCEWithLogits(Function):
    """loss = w [ (1 - t) x + l softplus(-x) ],  l = 1 + (pos_weight - 1) t,  softplus(-x) = log(1 + e^-x).

    softplus(-x) is computed as log1p(e^-|x|) + max(-x, 0): e^-|x| <= 1 never
    overflows, and log1p keeps precision when e^-|x| is tiny.
        dx = w [ (1 - t) + l (sigmoid(x) - 1) ] * dL/dloss
        dt = w [ -x + (pos_weight - 1) softplus(-x) ] * dL/dloss
    """

    def __init__(self, reduction="mean"):
        _check_reduction("binary_cross_entropy_with_logits", reduction)
        self.reduction = reduction

    def forward(self, x, target, weight=None, pos_weight=None):
        _check_arrays("binary_cross_entropy_with_logits", input=x, target=target, weight=weight, pos_weight=pos_weight)
        xp = backend.array_module(x)
        if tuple(x.shape) != tuple(target.shape):
            raise ValueError(
                f"binary_cross_entropy_with_logits: input shape {tuple(x.shape)} and target shape "
                f"{tuple(target.shape)} must be equal"
            )
        for name, value in (("weight", weight), ("pos_weight", pos_weight)):
            if value is not None and numpy.broadcast_shapes(tuple(value.shape), tuple(x.shape)) != tuple(x.shape):
                raise ValueError(
                    f"binary_cross_entropy_with_logits: {name} of shape {tuple(value.shape)} does not "
                    f"broadcast to the input shape {tuple(x.shape)}"
                )
        softplus_neg = xp.log1p(xp.exp(-xp.abs(x))) + xp.maximum(-x, 0)  # log(1 + e^-x), stable
        log_weight = 1.0 if pos_weight is None else 1 + (pos_weight - 1) * target
        loss = (1 - target) * x + log_weight * softplus_neg
        if weight is not None:
            loss = loss * weight
        self.saved = (x, target, weight, pos_weight, softplus_neg, log_weight)
        return _reduce(loss, self.reduction)

    def backward(self, dy):
        x, target, weight, pos_weight, softplus_neg, log_weight = self.saved
        xp = backend.array_module(x)
        scale = _reduction_grad(dy, x.size, self.reduction)
        if weight is not None:
            scale = scale * weight
        dx = dt = None
        if self.needs_input_grad[0]:
            e = xp.exp(-xp.abs(x))
            sigmoid = xp.where(x >= 0, 1 / (1 + e), e / (1 + e))
            dx = xp.broadcast_to(((1 - target) + log_weight * (sigmoid - 1)) * scale, x.shape)
        if self.needs_input_grad[1]:
            dt = -x if pos_weight is None else -x + (pos_weight - 1) * softplus_neg
            dt = xp.broadcast_to(dt * scale, x.shape)
        return dx, dt, None, None


# ------------------------------------------------------------------ what users call
def cross_entropy(logits, target, weight=None, reduction="mean", label_smoothing=0.0, ignore_index=-100):
    """torch.nn.functional.cross_entropy with class-index targets: logits (N, C) or (N, C, d...)."""
    return CrossEntropy(reduction, label_smoothing, ignore_index)(logits, target, weight)


def nll_loss(log_probs, target, weight=None, reduction="mean", ignore_index=-100):
    """torch.nn.functional.nll_loss: log_probs (N, C) or (N, C, d...), integer target (N,) or (N, d...)."""
    return NLLLoss(reduction, ignore_index)(log_probs, target, weight)


def mse_loss(input, target, reduction="mean"):
    """torch.nn.functional.mse_loss: mean (or sum) of (input - target)^2; shapes must be equal."""
    return MSELoss(reduction)(input, target)


def binary_cross_entropy_with_logits(logits, target, weight=None, reduction="mean", pos_weight=None):
    """torch.nn.functional.binary_cross_entropy_with_logits, computed stably from the logits."""
    return BCEWithLogits(reduction)(logits, target, weight, pos_weight)
