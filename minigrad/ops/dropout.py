"""Dropout (inverted): zero each element with probability p during training.

Shapes: any; the mask has the shape of x.

    mask_i = 1 with probability 1 - p, else 0
    y_i    = x_i * mask_i / (1 - p)          dx_i = dy_i * mask_i / (1 - p)

"Inverted" means the 1/(1 - p) scaling happens at training time, so that
E[y_i] = x_i and evaluation is the identity: nothing to rescale at test time.
The mask comes from NumPy's global generator on the CPU and CuPy's on the GPU,
both seeded by minigrad.manual_seed, so a seeded run repeats exactly.
"""
from minigrad import backend
from minigrad.function import Function


class Dropout(Function):
    """y = x * mask / (1 - p), mask ~ Bernoulli(1 - p);  dx = dy * mask / (1 - p)."""

    def __init__(self, p=0.5):
        if not 0.0 <= p <= 1.0:
            raise ValueError(f"dropout: p must be a probability in [0, 1], got {p}")
        self.p = p

    def forward(self, x):
        xp = backend.array_module(x)
        if self.p == 1.0:
            scaled_mask = xp.zeros(x.shape, dtype=x.dtype)               # every element dropped
        else:
            keep = xp.random.random_sample(x.shape) >= self.p            # True with probability 1 - p
            scaled_mask = keep.astype(x.dtype) * (1.0 / (1.0 - self.p))
        self.saved = (scaled_mask,)
        return x * scaled_mask

    def backward(self, dy):
        (scaled_mask,) = self.saved
        return dy * scaled_mask


def dropout(x, p=0.5, training=True):
    """torch.nn.functional.dropout: inverted dropout in training, the identity (x itself) otherwise."""
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"dropout: p must be a probability in [0, 1], got {p}")
    if not training or p == 0.0:
        return x
    return Dropout(p)(x)
