"""Dropout: in training, zero each element with probability p and scale the rest by 1/(1-p)
(inverted dropout, so that E[y] = x and evaluation needs no rescaling); in eval, y = x."""
from minigrad.nn.module import Module
from minigrad.ops import dropout as dropout_ops


class Dropout(Module):
    def __init__(self, p=0.5, inplace=False):
        super().__init__()
        if not 0 <= p <= 1:
            raise ValueError(f"Dropout: p must be in [0, 1], got {p}")
        self.p = p

    def forward(self, x):
        return dropout_ops.dropout(x, self.p, self.training)

    def extra_repr(self):
        return f"p={self.p}, inplace=False"
