"""Batch normalisation (training mode) on the CPU with Numba, forward and backward.

One loop iteration (one `prange` index) owns ONE CHANNEL c: it reads the N
contiguous rows x[n, c, :] (M/N values each, M = N*H*W values per channel),
so the channels run in parallel without races. Sums are kept in float64.

Forward, three passes over the channel (minigrad.ops.norm derives the maths):

    mean_c  = sum x / M
    var_c   = sum (x - mean_c)^2 / M               (two passes: no cancellation)
    y       = x * scale_c + shift_c,   scale_c = gamma_c / sqrt(var_c + eps),
                                       shift_c = beta_c - mean_c * scale_c

Backward, two passes: the two sums, then dx (step 6 of norm.py, divided by M):

    dbeta_c  = sum dy,    dgamma_c = sum dy * xhat,    xhat = (x - mean_c) * inv_std_c
    dx       = scale_c * (dy - dbeta_c / M - xhat * dgamma_c / M)

With relu=True the same kernels compute relu(batch_norm(x)) as one op (minigrad.ops.norm,
`batch_norm_relu`): forward writes `0 if v <= 0 else v` in its last pass, and backward
reads the fused output relu_out and uses g = (dy where relu_out > 0, else 0) in place of dy, the
ReLU's backward folded into the batch norm's two passes. That saves the separate
ReLU's read and write of the whole activation, each way.

The NumPy reference (minigrad.ops.norm.batch_norm_train_forward_numpy and
batch_norm_backward_numpy) makes about twice as many passes and allocates
temporaries. The sums here may be reordered (fastmath "reassoc", so that LLVM
vectorises them), so results agree with the reference to float rounding, not bit
for bit; NaN and infinity still propagate (no "nnan"/"ninf" flags).

    x, y, dy, dx   (N, C, M/N)  float32 or float64 (the caller reshapes (N, C, H, W))
    gamma, beta    (C,)         in x's dtype
    mean, var, inv_std, dgamma, dbeta   (C,) float64 results
"""
import numpy
from numba import njit, prange

from . import launch_lock, workspace

REORDER_SUMS = {"reassoc", "contract", "nsz", "arcp"}   # fastmath flags that keep NaN/inf semantics


@njit(inline="always")
def _relu(value, relu):
    """value, or max(value, 0) when the ReLU is fused (a NaN stays NaN, as in relu_forward)."""
    return 0 if relu and value <= 0 else value


@njit(inline="always")
def _through_relu(grad, relu_out, relu):
    """One dy on its way back through a fused ReLU: 0 where its output relu_out is not > 0."""
    return grad if not relu or relu_out > 0 else 0


@njit(parallel=True, cache=True, fastmath=REORDER_SUMS)
def _forward_channels(x, y, gamma, beta, eps, mean, var, inv_std, relu):
    n_images, channels, per_image = x.shape
    count = n_images * per_image
    for c in prange(channels):
        total = 0.0
        for n in range(n_images):
            row = x[n, c]
            for i in range(per_image):
                total += row[i]
        mu = total / count
        squares = 0.0
        for n in range(n_images):
            row = x[n, c]
            for i in range(per_image):
                centred = row[i] - mu
                squares += centred * centred
        mean[c] = mu
        var[c] = squares / count
        inv_std[c] = 1.0 / numpy.sqrt(squares / count + eps)
        scale = gamma[c] * inv_std[c]
        shift = beta[c] - mu * scale
        for n in range(n_images):
            row = x[n, c]
            out = y[n, c]
            for i in range(per_image):
                out[i] = _relu(row[i] * scale + shift, relu)


@njit(parallel=True, cache=True, fastmath=REORDER_SUMS)
def _backward_channels(x, dy, dx, mean, inv_std, gamma, dgamma, dbeta, relu_out, relu):
    n_images, channels, per_image = x.shape
    count = n_images * per_image
    for c in prange(channels):
        mu, s = mean[c], inv_std[c]
        sum_dy = 0.0
        sum_dy_xhat = 0.0
        for n in range(n_images):
            row, grad, clipped = x[n, c], dy[n, c], relu_out[n, c]
            for i in range(per_image):
                g = _through_relu(grad[i], clipped[i], relu)
                sum_dy += g
                sum_dy_xhat += g * ((row[i] - mu) * s)
        dbeta[c] = sum_dy
        dgamma[c] = sum_dy_xhat
        scale = gamma[c] * s
        # dx = scale dy - scale dbeta/M - scale s (x - mu) dgamma/M  =  scale dy + slope x + offset
        slope = -scale * s * sum_dy_xhat / count
        offset = -scale * sum_dy / count - slope * mu
        for n in range(n_images):
            row, grad, clipped, out = x[n, c], dy[n, c], relu_out[n, c], dx[n, c]
            for i in range(per_image):
                out[i] = scale * _through_relu(grad[i], clipped[i], relu) + slope * row[i] + offset


def batch_norm_train_forward(x3, gamma, beta, eps, relu=False):
    """(y3, mean, var, inv_std) for x3 (N, C, M/N); gamma/beta (C,) arrays (ones/zeros if absent).
    relu=True: y3 = relu(batch norm), fused."""
    x3 = numpy.ascontiguousarray(x3)
    channels = x3.shape[1]
    y3 = workspace.empty(x3.shape, x3.dtype)
    mean, var, inv_std = (numpy.empty(channels, numpy.float64) for _ in range(3))
    with launch_lock:
        _forward_channels(x3, y3, gamma.astype(x3.dtype, copy=False), beta.astype(x3.dtype, copy=False),
                          float(eps), mean, var, inv_std, bool(relu))
    return y3, mean, var, inv_std


def batch_norm_backward(x3, dy3, mean, inv_std, gamma, relu_out3=None):
    """(dx3, dgamma, dbeta) of training-mode batch norm; shapes as batch_norm_train_forward.
    relu_out3: the output of a fused batch_norm_relu forward (dy3 then passes back through its ReLU), or None."""
    x3, dy3 = numpy.ascontiguousarray(x3), numpy.ascontiguousarray(dy3)
    relu = relu_out3 is not None
    # Without the ReLU, dy3 stands in for relu_out3: the loops load it (from the cache) but never use it.
    relu_out3 = numpy.ascontiguousarray(relu_out3) if relu else dy3
    channels = x3.shape[1]
    dx3 = workspace.empty(dy3.shape, dy3.dtype)
    dgamma, dbeta = numpy.empty(channels, numpy.float64), numpy.empty(channels, numpy.float64)
    with launch_lock:
        _backward_channels(x3, dy3, dx3, mean, inv_std, gamma.astype(x3.dtype, copy=False), dgamma, dbeta,
                           relu_out3, relu)
    return dx3, dgamma, dbeta
