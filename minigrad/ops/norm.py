"""Batch normalisation (torch.nn.functional.batch_norm) with its analytic backward.

Shapes:  N batch, C channels (features), H x W spatial size (optional; any
         number of trailing axes works); M = number of values per channel that
         are normalised together (N for (N, C) input, N*H*W for (N, C, H, W)).

Forward, per channel, over its M values x_i:
    mu     = (1/M) sum_i x_i
    var    = (1/M) sum_i (x_i - mu)^2            (biased: what normalises the batch)
    s      = 1 / sqrt(var + eps)                 ("inv_std")
    xhat_i = (x_i - mu) s
    y_i    = gamma xhat_i + beta

Training also updates the running statistics IN PLACE (PyTorch's convention):
    running_mean = (1 - m) running_mean + m mu
    running_var  = (1 - m) running_var  + m var * M / (M - 1)   (the UNBIASED variance)
Evaluation uses running_mean and running_var instead of mu and var.

Backward in training, derived step by step (write dxhat_i = dy_i gamma):
 1. dL/dx_i = sum_j dxhat_j * d(xhat_j)/d(x_i), because every xhat_j depends
    on every x_i through mu and var.
 2. d(mu)/d(x_i) = 1/M.
 3. d(var)/d(x_i) = (2/M) sum_j (x_j - mu)(delta_ij - 1/M) = (2/M)(x_i - mu),
    since sum_j (x_j - mu) = 0.
 4. d(s)/d(x_i) = -1/2 (var + eps)^(-3/2) d(var)/d(x_i) = -s^3 (x_i - mu) / M
    = -s^2 xhat_i / M.
 5. d(xhat_j)/d(x_i) = s (delta_ij - 1/M) + (x_j - mu) d(s)/d(x_i)
    = s (delta_ij - 1/M) - s xhat_j xhat_i / M
    = (s/M) (M delta_ij - 1 - xhat_i xhat_j).
 6. Put 5 into 1:
        dx_i = (s/M) (M dxhat_i - sum_j dxhat_j - xhat_i sum_j dxhat_j xhat_j)
    Three reductions per channel, no chain of small ops.
 7. dgamma = sum_i dy_i xhat_i,   dbeta = sum_i dy_i   (summed over all M values).
 8. With dxhat = gamma dy, the sums of 6 are gamma dbeta and gamma dgamma, so
        dx_i = gamma s (dy_i - dbeta/M - xhat_i dgamma/M)
    and the whole backward needs only the two reductions of 7.
In evaluation mu and var are constants, so y is an affine map of x:
        dx_i = dy_i gamma s,   dgamma and dbeta as in 7.

Fused with a ReLU (`batch_norm_relu`, z = max(y, 0)): forward clips y in the same pass that
writes it, and backward first sends dz back through the ReLU, dy_i = dz_i where z_i > 0 else 0,
then runs 7 and 8 on that dy. The same numbers as relu(batch_norm(x)), one op instead of two:
the ReLU's separate pass over the whole activation, forward and backward, is gone.
"""
from minigrad import backend
from minigrad.function import Function
from minigrad.ops.activation import relu_backward_from_output_numpy, relu_in_place
from minigrad.ops.registry import find_kernel


def _per_channel(vector, like3):
    """A (C,) vector as (1, C, 1) in the dtype of `like3` (N, C, M/N), to broadcast against it."""
    return vector.reshape(1, -1, 1).astype(like3.dtype, copy=False)


def batch_norm_train_forward_numpy(x3, gamma, beta, eps, relu=False):
    """Training forward for x3 (N, C, M/N): (y3, mu, var, inv_std), the last three (C,); relu=True clips y3 at 0.

    Steps as in the module docstring; the centred values are computed once and
    become y in place, and the variance comes from an einsum of them (no squared
    temporary). The Numba kernel (kernels/numba_cpu/batchnorm.py) does the same
    in three passes over x.
    """
    xp = backend.array_module(x3)
    count = x3.shape[0] * x3.shape[2]                                    # M
    mu = x3.mean(axis=(0, 2))                                            # (C,)
    centred = x3 - _per_channel(mu, x3)                                  # (N, C, M/N), becomes y
    var = xp.einsum("ncm,ncm->c", centred, centred) / count              # (C,) biased
    inv_std = 1.0 / xp.sqrt(var + eps)                                   # (C,) s
    y3 = centred
    y3 *= _per_channel(gamma * inv_std, y3)                              # fused: y = centred*gamma*s + beta
    y3 += _per_channel(beta, y3)
    if relu:
        relu_in_place(y3)
    return y3, mu, var, inv_std


def batch_norm_backward_numpy(x3, dy3, mu, inv_std, gamma, relu_out3=None):
    """Training backward: (dx3, dgamma, dbeta) from steps 7 and 8 of the module docstring.
    relu_out3: the output of a fused batch_norm_relu (dy3 first goes back through its ReLU), or None."""
    xp = backend.array_module(dy3)
    if relu_out3 is not None:
        dy3 = relu_backward_from_output_numpy(dy3, relu_out3)
    count = x3.shape[0] * x3.shape[2]                                    # M
    xhat = x3 - _per_channel(mu, x3)                                     # rebuilt in one buffer
    xhat *= _per_channel(inv_std, xhat)
    dbeta = dy3.sum(axis=(0, 2))                                         # (C,)
    dgamma = xp.einsum("ncm,ncm->c", dy3, xhat)                          # (C,)
    # dx = gamma s (dy - dbeta/M - xhat dgamma/M), computed in place in xhat's buffer.
    dx3 = xhat
    dx3 *= _per_channel(-dgamma / count, dx3)
    dx3 += dy3
    dx3 -= _per_channel(dbeta / count, dx3)
    dx3 *= _per_channel(gamma * inv_std, dx3)
    return dx3, dgamma, dbeta


def _raw(array_or_tensor):
    """The array inside a Tensor (so in-place updates reach the Tensor), or the array itself."""
    from minigrad.tensor import Tensor

    return array_or_tensor.array if isinstance(array_or_tensor, Tensor) else array_or_tensor


class BatchNorm(Function):
    """y = gamma (x - mu) / sqrt(var + eps) + beta per channel; see the module docstring."""

    def __init__(self, running_mean, running_var, training=False, momentum=0.1, eps=1e-5, relu=False):
        self.running_mean = None if running_mean is None else _raw(running_mean)
        self.running_var = None if running_var is None else _raw(running_var)
        self.training, self.momentum, self.eps = training, momentum, eps
        self.relu = relu                          # True: z = relu(y), fused (batch_norm_relu)

    def forward(self, x, gamma=None, beta=None):
        xp = backend.array_module(x)
        self._check(x, gamma, beta)
        channels = x.shape[1]
        x3 = x.reshape(x.shape[0], channels, -1)                         # (N, C, M/N)
        count = x.size // channels                                       # M
        gamma = xp.ones(channels, x.dtype) if gamma is None else gamma   # absent: y = xhat
        beta = xp.zeros(channels, x.dtype) if beta is None else beta
        if self.training:
            if count < 2:
                raise ValueError(
                    f"batch_norm: training needs more than 1 value per channel to estimate a variance, "
                    f"got input shape {tuple(x.shape)}"
                )
            forward = find_kernel("batch_norm_train_forward", x, batch_norm_train_forward_numpy)
            y3, mu, var, inv_std = forward(x3, gamma, beta, self.eps, relu=self.relu)
            self._update_running_stats(mu, var * count / (count - 1))
        else:
            mu, var = self.running_mean, self.running_var
            inv_std = 1.0 / xp.sqrt(var + self.eps)                      # (C,)
            y3 = x3 - _per_channel(mu, x3)                               # float32 x stays float32
            y3 *= _per_channel(gamma * inv_std, y3)                      # in place: no new array
            y3 += _per_channel(beta, y3)
            if self.relu:
                relu_in_place(y3)
        # Keep x (alive anyway as this op's input), not xhat: backward rebuilds xhat in one pass.
        # A fused ReLU also keeps its output y3 (alive anyway as the next op's input) for its mask.
        self.saved = (x3, mu, inv_std, gamma, y3 if self.relu else None)
        return y3.reshape(x.shape)

    def backward(self, dy):
        x3, mu, inv_std, gamma, relu_out3 = self.saved
        dy3 = dy.reshape(x3.shape)                                       # (N, C, M/N)
        if self.training:
            backward = find_kernel("batch_norm_backward", dy, batch_norm_backward_numpy)
            dx3, dgamma, dbeta = backward(x3, dy3, mu, inv_std, gamma, relu_out3=relu_out3)
        else:
            if relu_out3 is not None:
                dy3 = relu_backward_from_output_numpy(dy3, relu_out3)
            # mu and var are constants here: y is an affine map of x, dx = dy gamma s.
            xhat = (x3 - _per_channel(mu, x3)) * _per_channel(inv_std, x3)
            dbeta = dy3.sum(axis=(0, 2))
            dgamma = backend.array_module(dy).einsum("ncm,ncm->c", dy3, xhat)
            dx3 = dy3 * _per_channel(gamma * inv_std, dy3)
        dx = dx3.reshape(dy.shape) if self.needs_input_grad[0] else None
        dgamma = dgamma.astype(dy.dtype, copy=False) if self.needs_input_grad[1] else None
        dbeta = dbeta.astype(dy.dtype, copy=False) if self.needs_input_grad[2] else None
        return dx, dgamma, dbeta

    def _update_running_stats(self, mu, unbiased_var):
        m = self.momentum
        if self.running_mean is not None:
            self.running_mean[...] = (1 - m) * self.running_mean + m * mu
        if self.running_var is not None:
            self.running_var[...] = (1 - m) * self.running_var + m * unbiased_var

    def _check(self, x, gamma, beta):
        if x.ndim < 2:
            raise ValueError(f"batch_norm: input must be (N, C) or (N, C, H, W), got shape {tuple(x.shape)}")
        channels = x.shape[1]
        arguments = [("weight", gamma), ("bias", beta), ("running_mean", self.running_mean),
                     ("running_var", self.running_var)]
        for name, value in arguments:
            if value is not None and tuple(value.shape) != (channels,):
                raise ValueError(
                    f"batch_norm: {name} must have shape ({channels},) for input of shape "
                    f"{tuple(x.shape)}, got {tuple(value.shape)}"
                )
        if not self.training and (self.running_mean is None or self.running_var is None):
            raise ValueError("batch_norm: running_mean and running_var are required when training=False")


def batch_norm(x, running_mean, running_var, weight=None, bias=None, training=False, momentum=0.1, eps=1e-5):
    """torch.nn.functional.batch_norm for (N, C) or (N, C, H, W) input.

    running_mean / running_var: arrays or Tensors of shape (C,), updated in place
    when training=True (may be None then); weight = gamma, bias = beta, each (C,) or None.
    """
    return BatchNorm(running_mean, running_var, training, momentum, eps)(x, weight, bias)


def batch_norm_relu(x, running_mean, running_var, weight=None, bias=None, training=False, momentum=0.1, eps=1e-5):
    """relu(batch_norm(x, ...)) as ONE op, with batch_norm's arguments (PyTorch fuses these two only
    when a model is compiled). Same results; one pass less over the activation each way."""
    return BatchNorm(running_mean, running_var, training, momentum, eps, relu=True)(x, weight, bias)
