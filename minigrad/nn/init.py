"""Weight initialisation: fill a Tensor in place with numbers of the right scale.

Why the scale matters: for y = W x with fan_in inputs of variance 1 and weights
of variance s^2, each output has variance fan_in * s^2. To keep activations (and,
going backward, gradients) from growing or shrinking layer after layer, pick

    Xavier/Glorot (tanh, linear):  Var(w) = gain^2 * 2 / (fan_in + fan_out)
    Kaiming/He (ReLU family):      Var(w) = gain^2 / fan           (fan = fan_in or fan_out)

with gain = calculate_gain(nonlinearity): sqrt(2) for ReLU, because ReLU zeroes
half of its inputs and so halves the variance. A uniform U(-b, b) has variance
b^2 / 3, so the uniform versions use b = sqrt(3) * std.

For a conv weight (F, C/groups, KH, KW): fan_in = C/groups * KH * KW and
fan_out = F * KH * KW (each kernel position is one more input).

All draws come from NumPy's global generator (seeded by minigrad.manual_seed),
are made in float64 on the host, then cast and copied into the tensor, so a
seed gives the same weights on the CPU and the GPU.
"""
import math

import numpy

from minigrad import backend


def calculate_gain(nonlinearity, param=None):
    """The recommended gain for an activation (the factor that restores unit variance)."""
    linear = ("linear", "conv1d", "conv2d", "conv3d", "conv_transpose1d", "conv_transpose2d",
              "conv_transpose3d", "sigmoid")
    if nonlinearity in linear:
        return 1.0
    if nonlinearity == "tanh":
        return 5.0 / 3
    if nonlinearity == "relu":
        return math.sqrt(2.0)
    if nonlinearity == "leaky_relu":
        slope = 0.01 if param is None else param
        if isinstance(slope, bool) or not isinstance(slope, (int, float)):
            raise ValueError(f"calculate_gain: negative_slope {slope!r} is not a number")
        return math.sqrt(2.0 / (1 + slope ** 2))
    if nonlinearity == "selu":
        return 3.0 / 4
    raise ValueError(f"calculate_gain: unsupported nonlinearity {nonlinearity!r}")


def calculate_fan_in_and_fan_out(tensor):
    """(fan_in, fan_out) of a weight of shape (out, in, *kernel)."""
    if tensor.ndim < 2:
        raise ValueError(
            f"fan in and fan out need a tensor with at least 2 dimensions, got shape {tensor.shape}"
        )
    receptive_field = 1
    for s in tensor.shape[2:]:
        receptive_field *= s
    return tensor.shape[1] * receptive_field, tensor.shape[0] * receptive_field


def _fan(tensor, mode):
    if mode not in ("fan_in", "fan_out"):
        raise ValueError(f"mode must be 'fan_in' or 'fan_out', got {mode!r}")
    fan_in, fan_out = calculate_fan_in_and_fan_out(tensor)
    return fan_in if mode == "fan_in" else fan_out


def _fill(tensor, values):
    """Write host float64 `values` into `tensor` in place, on its device and in its dtype."""
    tensor.array[...] = backend.to_device(numpy.asarray(values).astype(tensor.dtype), tensor.device)
    return tensor


def uniform_(tensor, a=0.0, b=1.0):
    return _fill(tensor, numpy.random.uniform(a, b, size=tensor.shape))


def normal_(tensor, mean=0.0, std=1.0):
    return _fill(tensor, numpy.random.normal(mean, std, size=tensor.shape))


def constant_(tensor, val):
    tensor.array[...] = val
    return tensor


def zeros_(tensor):
    return constant_(tensor, 0.0)


def ones_(tensor):
    return constant_(tensor, 1.0)


def xavier_uniform_(tensor, gain=1.0):
    """U(-b, b), b = gain * sqrt(6 / (fan_in + fan_out))."""
    fan_in, fan_out = calculate_fan_in_and_fan_out(tensor)
    bound = gain * math.sqrt(6.0 / (fan_in + fan_out))
    return uniform_(tensor, -bound, bound)


def xavier_normal_(tensor, gain=1.0):
    """N(0, std^2), std = gain * sqrt(2 / (fan_in + fan_out))."""
    fan_in, fan_out = calculate_fan_in_and_fan_out(tensor)
    return normal_(tensor, 0.0, gain * math.sqrt(2.0 / (fan_in + fan_out)))


def kaiming_uniform_(tensor, a=0, mode="fan_in", nonlinearity="leaky_relu"):
    """U(-b, b), b = sqrt(3) * gain / sqrt(fan); gain = calculate_gain(nonlinearity, a)."""
    std = calculate_gain(nonlinearity, a) / math.sqrt(_fan(tensor, mode))
    bound = math.sqrt(3.0) * std
    return uniform_(tensor, -bound, bound)


def kaiming_normal_(tensor, a=0, mode="fan_in", nonlinearity="leaky_relu"):
    """N(0, std^2), std = gain / sqrt(fan); gain = calculate_gain(nonlinearity, a)."""
    std = calculate_gain(nonlinearity, a) / math.sqrt(_fan(tensor, mode))
    return normal_(tensor, 0.0, std)


def dirac_(tensor, groups=1):
    """Make a convolution the identity: the filter for output channel d (of each group) is 1 at its
    centre tap on input channel d, 0 elsewhere, so y[:, d] = x[:, d] for the first min(F/groups, C)
    channels and the remaining output channels are 0. A residual-free way to start a deep stack
    near the identity (the CIFAR-10 speed records initialise their 3x3 convolutions so)."""
    if tensor.ndim not in (3, 4, 5):
        raise ValueError(f"dirac_: needs a 3-, 4- or 5-dimensional convolution weight, got shape {tensor.shape}")
    if groups < 1 or tensor.shape[0] % groups:
        raise ValueError(f"dirac_: the {tensor.shape[0]} output channels must divide into groups={groups}")
    values = numpy.zeros(tensor.shape)
    per_group = tensor.shape[0] // groups
    centre = tuple(size // 2 for size in tensor.shape[2:])
    for g in range(groups):
        for d in range(min(per_group, tensor.shape[1])):
            values[(g * per_group + d, d) + centre] = 1
    return _fill(tensor, values)
