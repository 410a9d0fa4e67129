"""Flatten: merge dimensions start_dim..end_dim into one, e.g. (N, C, H, W) -> (N, C*H*W)."""
from minigrad.nn.module import Module
from minigrad.ops.shape import flatten


class Flatten(Module):
    def __init__(self, start_dim=1, end_dim=-1):
        super().__init__()
        self.start_dim, self.end_dim = start_dim, end_dim

    def forward(self, x):
        return flatten(x, self.start_dim, self.end_dim)

    def extra_repr(self):
        return f"start_dim={self.start_dim}, end_dim={self.end_dim}"
