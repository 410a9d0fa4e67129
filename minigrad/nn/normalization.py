"""Batch normalisation layers: BatchNorm1d for (N, C) or (N, C, L), BatchNorm2d for (N, C, H, W).

Per channel c, over the batch (and spatial) axes:

    training:  y = gamma * (x - mean_B) / sqrt(var_B + eps) + beta
               running_mean <- (1 - momentum) running_mean + momentum mean_B
               running_var  <- (1 - momentum) running_var  + momentum var_B * m / (m - 1)
    eval:      y = gamma * (x - running_mean) / sqrt(running_var + eps) + beta

with m the number of values averaged per channel (running_var keeps the
unbiased estimate, as PyTorch does). The maths and the buffer updates are in
minigrad/ops/norm.py; this layer owns gamma (`weight`), beta (`bias`) and the
buffers running_mean, running_var and num_batches_tracked. With momentum=None
the running statistics are a plain cumulative average: momentum = 1 / t at
batch t. With track_running_stats=False there are no buffers and batch
statistics are used in eval too.
"""
import numpy

from minigrad.creation import ones, zeros
from minigrad.nn import init
from minigrad.nn.linear import empty_parameter
from minigrad.nn.module import Module, check_input_dtype
from minigrad.ops.norm import batch_norm, batch_norm_relu
from minigrad.tensor import Tensor


class _BatchNorm(Module):
    expected_dims = ()      # the input ranks a subclass accepts

    def __init__(self, num_features, eps=1e-5, momentum=0.1, affine=True, track_running_stats=True,
                 device=None, dtype=None):
        super().__init__()
        self.num_features, self.eps, self.momentum = num_features, eps, momentum
        self.affine, self.track_running_stats = affine, track_running_stats
        if affine:
            self.weight = empty_parameter((num_features,), device, dtype)
            self.bias = empty_parameter((num_features,), device, dtype)
        else:
            self.register_parameter("weight", None)
            self.register_parameter("bias", None)
        if track_running_stats:
            device = device or "cpu"
            self.register_buffer("running_mean", zeros(num_features, dtype=dtype, device=device))
            self.register_buffer("running_var", ones(num_features, dtype=dtype, device=device))
            self.register_buffer("num_batches_tracked", Tensor(numpy.array(0, dtype=numpy.int64), device=device))
        else:
            self.register_buffer("running_mean", None)
            self.register_buffer("running_var", None)
            self.register_buffer("num_batches_tracked", None)
        self.reset_parameters()

    def reset_running_stats(self):
        if self.track_running_stats:
            self.running_mean.zero_()
            self.running_var.fill_(1)
            self.num_batches_tracked.zero_()

    def reset_parameters(self):
        self.reset_running_stats()
        if self.affine:
            init.ones_(self.weight)
            init.zeros_(self.bias)

    def forward(self, x, relu=False):
        """Batch norm of x; relu=True returns relu(batch norm of x) from ONE fused op
        (minigrad.ops.norm.batch_norm_relu: the same numbers, one pass less over the activation)."""
        self._check_input(x)
        momentum = self._momentum_for_this_batch()
        use_batch_stats = self.training or not self.track_running_stats
        # the running buffers are updated only while training; in eval they are only read
        return (batch_norm_relu if relu else batch_norm)(
            x, self.running_mean, self.running_var, self.weight, self.bias,
            training=use_batch_stats, momentum=momentum, eps=self.eps,
        )

    def _check_input(self, x):
        name = f"{type(self).__name__}({self.num_features})"
        check_input_dtype(name, x, self.weight if self.affine else self.running_mean)
        if x.ndim not in self.expected_dims:
            ranks = " or ".join(f"{d}-D" for d in self.expected_dims)
            raise ValueError(f"{name}: expected a {ranks} input, got shape {tuple(x.shape)}")
        if x.shape[1] != self.num_features:
            raise ValueError(
                f"{name}: expected input with {self.num_features} channels (dim 1), got shape {tuple(x.shape)}"
            )

    def _momentum_for_this_batch(self):
        """Counts the batch in num_batches_tracked (training with running stats) and returns the
        momentum of this update: self.momentum, or 1 / t at batch t when it is None."""
        momentum = self.momentum
        if self.training and self.track_running_stats:
            self.num_batches_tracked.array += 1
            if momentum is None:
                momentum = 1.0 / int(self.num_batches_tracked.item())
        return momentum if momentum is not None else 0.0

    def extra_repr(self):
        return (f"{self.num_features}, eps={self.eps}, momentum={self.momentum}, affine={self.affine}, "
                f"track_running_stats={self.track_running_stats}")


class BatchNorm1d(_BatchNorm):
    """Input (N, C) or (N, C, L)."""
    expected_dims = (2, 3)


class BatchNorm2d(_BatchNorm):
    """Input (N, C, H, W)."""
    expected_dims = (4,)
