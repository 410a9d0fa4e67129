"""Loss layers: Modules that hold a loss function's options and call minigrad/ops/loss.py.

    CrossEntropyLoss   logits (N, K) [, d...], integer targets (N,) or class probabilities
                       loss_n = -log softmax(logits_n)[target_n]  (= LogSoftmax + NLLLoss)
    NLLLoss            log-probabilities in:  loss_n = -logp_n[target_n]
    MSELoss            (input - target)^2
    BCEWithLogitsLoss  sigmoid + binary cross-entropy in one stable step:
                       loss = max(z, 0) - z t + log(1 + e^-|z|)

reduction is 'mean' (default), 'sum' or 'none'. A class `weight` is kept as a
buffer, so it is saved and moved with the module, as in PyTorch.
"""
from minigrad.nn.module import Module
from minigrad.ops import loss as L

_REDUCTIONS = ("mean", "sum", "none")


class _Loss(Module):
    def __init__(self, reduction="mean"):
        super().__init__()
        if reduction not in _REDUCTIONS:
            raise ValueError(f"{type(self).__name__}: reduction must be one of {_REDUCTIONS}, got {reduction!r}")
        self.reduction = reduction

    def extra_repr(self):
        return f"reduction='{self.reduction}'" if self.reduction != "mean" else ""


class CrossEntropyLoss(_Loss):
    def __init__(self, weight=None, ignore_index=-100, reduction="mean", label_smoothing=0.0):
        super().__init__(reduction)
        self.register_buffer("weight", weight)
        self.ignore_index, self.label_smoothing = ignore_index, label_smoothing

    def forward(self, logits, target):
        return L.cross_entropy(logits, target, weight=self.weight, reduction=self.reduction,
                               label_smoothing=self.label_smoothing, ignore_index=self.ignore_index)


class NLLLoss(_Loss):
    def __init__(self, weight=None, ignore_index=-100, reduction="mean"):
        super().__init__(reduction)
        self.register_buffer("weight", weight)
        self.ignore_index = ignore_index

    def forward(self, log_probs, target):
        return L.nll_loss(log_probs, target, weight=self.weight, ignore_index=self.ignore_index,
                          reduction=self.reduction)


class MSELoss(_Loss):
    def forward(self, input, target):
        return L.mse_loss(input, target, reduction=self.reduction)


class BCEWithLogitsLoss(_Loss):
    def __init__(self, weight=None, reduction="mean", pos_weight=None):
        super().__init__(reduction)
        self.register_buffer("weight", weight)
        self.register_buffer("pos_weight", pos_weight)

    def forward(self, logits, target):
        return L.binary_cross_entropy_with_logits(logits, target, weight=self.weight,
                                                  reduction=self.reduction, pos_weight=self.pos_weight)
