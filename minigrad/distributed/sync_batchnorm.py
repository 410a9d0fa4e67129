"""Synchronized batch norm: the statistics of the GLOBAL batch, the parts of which live on different ranks.

Shapes:  N batch on this rank, C channels, L = H*W (any trailing size; 1 for (N, C) input);
         m = N*L values per channel on this rank, M = sum over the ranks of m (the global count);
         p ranks.

Why
---
With DistributedDataParallel and plain batch norm, each rank normalises ITS part of the batch with
that part's own mean and variance: p ranks with B examples each train as if the batch were B, not
pB. With few examples per rank (detection and segmentation hold 1 or 2 images per GPU) those
statistics are noisy and training suffers. Peng et al. 2018 (MegDet, "A Large Mini-Batch Object
Detector") computed them across GPUs; PyTorch's SyncBatchNorm does the same, as this op does. Batch
norm itself: Ioffe & Szegedy 2015. The single-process maths and its derivation: minigrad/ops/norm.py.

Forward, per channel: ONE all_reduce
------------------------------------
    this rank:    S1_r = sum_i x_i,   S2_r = sum_i x_i^2,   m_r           (its m_r values)
    all_reduce:   [S1, S2, M] = sum_r [S1_r, S2_r, m_r]     one packed float64 buffer (3, C)
    mu     = S1 / M
    var    = S2 / M - mu^2                 (biased; float64, as this difference cancels digits)
    s      = 1 / sqrt(var + eps)
    xhat_i = (x_i - mu) s,    y_i = gamma xhat_i + beta
    running_mean <- (1 - momentum) running_mean + momentum mu
    running_var  <- (1 - momentum) running_var  + momentum var M / (M - 1)   (unbiased, GLOBAL M)
Every rank gets the same mu and var, so the running statistics stay equal on every rank.

Backward, per channel, g = dy: ONE all_reduce
---------------------------------------------
mu and var depend on the x of every rank, so batch norm's backward (ops/norm.py, steps 1-8) holds
with its two sums taken over the M values of the global batch:
    this rank:    [sum_i g_i,  sum_i g_i xhat_i]            (its m_r values)
    all_reduce:   [Sg, Sgx] = sum over the ranks
    dx_i   = gamma s (g_i - Sg / M - xhat_i Sgx / M)        GLOBAL sums
    dgamma = sum_i g_i xhat_i,   dbeta = sum_i g_i          LOCAL sums (this rank's values only)

Why dx takes the global sums and dgamma, dbeta the local ones
--------------------------------------------------------------
Rank r computes L_r, the mean loss of its B examples; the loss of the whole batch is
L = (1/p) sum_r L_r, and DistributedDataParallel sums each parameter's gradient over the ranks and
divides by p. So each rank's backward must deliver ITS SHARE of the gradient of S = sum_r L_r = pL,
such that the shares add up to dS/dw.

  x (this rank's activations). x_j feeds every rank's loss: its own directly, the others' through
      mu and var. dS/dx_j = sum_r dL_r/dx_j, and by batch norm's backward over the global batch
      with upstream gradient g (g_i = dL_r/dy_i for i on rank r) this is the dx above, with sums
      over ALL M values. Local sums would drop the other ranks' losses' dependence on x_j: the
      gradient of the small-batch model, not of the big batch. The conv weights below then get,
      on rank r, sum_{j on r} dS/dx_j dx_j/dw: their share of dS/dw, and DDP's sum adds the shares.
  gamma, beta (one copy per rank, the same values). L_r depends on gamma only through rank r's own
      y_i (mu and var do not depend on gamma), so dS/dgamma = sum_r (sum_{i on r} g_i xhat_i): rank
      r's share IS its local sum, and DDP's all-reduce adds the shares. A global sum here would give
      every rank the whole of dS/dgamma, and DDP would count it p times.
After DDP's division by p every rank holds dL/dw, the gradient of one process on the batch of pB.

The all_reduces are blocking and happen in the same order on every rank (the same model, the same
forward and backward), as a collective needs. Under NCCL the packed buffers stay on the GPU.
"""
from minigrad import backend
from minigrad.ops.activation import relu_backward_from_output_numpy, relu_in_place
from minigrad.ops.norm import BatchNorm, _per_channel


def _sum_over_ranks(buffer, group):
    """buffer <- the sum of every rank's buffer, in place. One process (group None) already holds it."""
    if group is not None and group.size > 1:
        group.all_reduce(buffer, op="sum")


class SyncBatchNorm(BatchNorm):
    """Training-mode batch norm with the global batch's statistics; see the module docstring.

    group: a minigrad.distributed ProcessGroup, or None for one process (then it is batch norm).
    relu=True: z = relu(y) in the same op, as ops.norm.batch_norm_relu.
    """

    def __init__(self, running_mean, running_var, momentum=0.1, eps=1e-5, group=None, relu=False):
        super().__init__(running_mean, running_var, training=True, momentum=momentum, eps=eps, relu=relu)
        self.group = group

    def forward(self, x, gamma=None, beta=None):
        xp = backend.array_module(x)
        self._check(x, gamma, beta)
        channels = x.shape[1]
        x3 = x.reshape(x.shape[0], channels, -1)                         # (N, C, L)
        gamma = xp.ones(channels, x.dtype) if gamma is None else gamma   # absent: y = xhat
        beta = xp.zeros(channels, x.dtype) if beta is None else beta
        mu, var, count = self._global_statistics(x3)                     # (C,), (C,) float64; M
        inv_std = 1.0 / xp.sqrt(var + self.eps)                          # (C,) s
        y3 = x3 - _per_channel(mu, x3)                                   # (N, C, L), in x's dtype
        y3 *= _per_channel(gamma * inv_std, y3)                          # y = (x - mu) gamma s + beta
        y3 += _per_channel(beta, y3)
        if self.relu:
            relu_in_place(y3)
        self._update_running_stats(mu, var * count / (count - 1))
        self.saved = (x3, mu, inv_std, gamma, count, y3 if self.relu else None)
        return y3.reshape(x.shape)

    def _global_statistics(self, x3):
        """(mu, var, M) of the global batch, from one all_reduce of [S1, S2, m] per channel."""
        xp = backend.array_module(x3)
        x64 = x3.astype(xp.float64, copy=False)                          # (N, C, L)
        packed = xp.empty((3, x3.shape[1]), dtype=xp.float64)            # (3, C): S1, S2, m
        packed[0] = x64.sum(axis=(0, 2))
        packed[1] = xp.einsum("ncl,ncl->c", x64, x64)
        packed[2] = x3.shape[0] * x3.shape[2]
        _sum_over_ranks(packed, self.group)
        total, total_of_squares, counts = packed
        count = backend.to_python(counts[0])                             # M, the same for every channel
        if count < 2:
            raise ValueError(f"sync_batch_norm: training needs more than 1 value per channel in the global "
                             f"batch to estimate a variance, got {count:g} (input shape {tuple(x3.shape)} here)")
        mu = total / count
        var = xp.maximum(total_of_squares / count - mu * mu, 0.0)       # rounding could make it < 0
        return mu, var, count

    def backward(self, dy):
        xp = backend.array_module(dy)
        x3, mu, inv_std, gamma, count, relu_out3 = self.saved
        dy3 = dy.reshape(x3.shape)                                       # (N, C, L)
        if relu_out3 is not None:
            dy3 = relu_backward_from_output_numpy(dy3, relu_out3)
        xhat = x3 - _per_channel(mu, x3)
        xhat *= _per_channel(inv_std, xhat)                              # (N, C, L)
        dbeta = dy3.sum(axis=(0, 2))                                     # (C,) local
        dgamma = xp.einsum("ncl,ncl->c", dy3, xhat)                      # (C,) local
        dx = None
        if self.needs_input_grad[0]:                                     # the same on every rank: all reduce, or none
            sums = xp.stack([dbeta, dgamma]).astype(xp.float64)          # (2, C), a new contiguous buffer
            _sum_over_ranks(sums, self.group)
            sum_g, sum_gx = sums                                         # Sg, Sgx over the global batch
            dx3 = dy3 - _per_channel(sum_g / count, dy3) - xhat * _per_channel(sum_gx / count, xhat)
            dx3 *= _per_channel(gamma * inv_std, dx3)
            dx = dx3.reshape(dy.shape)
        dgamma = dgamma.astype(dy.dtype, copy=False) if self.needs_input_grad[1] else None
        dbeta = dbeta.astype(dy.dtype, copy=False) if self.needs_input_grad[2] else None
        return dx, dgamma, dbeta


def sync_batch_norm(x, running_mean, running_var, weight=None, bias=None, momentum=0.1, eps=1e-5, group=None,
                    relu=False):
    """Training-mode batch norm of x (N, C, ...) with the statistics of the batch of every rank of `group`.

    running_mean / running_var: (C,) arrays or Tensors updated in place (or None); weight = gamma,
    bias = beta, each (C,) or None; group None: one process (plain batch norm); relu: relu(y), fused.
    """
    return SyncBatchNorm(running_mean, running_var, momentum, eps, group, relu)(x, weight, bias)
