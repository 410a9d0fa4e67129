"""Activations and softmax: relu, leaky_relu, sigmoid, tanh, gelu, softmax, log_softmax, and
add_relu, relu(a + b) in one op (the end of a residual block).

Each backward multiplies dy by the derivative of the activation at x (or at y
when the derivative is cheaper to write in terms of the output).
"""
import math

from minigrad import backend
from minigrad.function import Function
from minigrad.ops.registry import find_kernel
from minigrad.tensor import Tensor


def relu_forward_numpy(x):
    """(y, mask): y = max(x, 0) and mask = x > 0, which is all that backward needs."""
    return backend.array_module(x).maximum(x, 0), x > 0


def relu_backward_numpy(dy, mask):
    """dx = dy where mask, else 0, as a product dy * mask. (A select, numpy.where(mask, dy, 0), would
    also give 0 for an infinite dy where the ReLU clipped, as the Numba kernel and PyTorch do, where the
    product gives inf * 0 = NaN; but NumPy's select is many times slower than the product, and an
    infinite gradient means the training has already failed.)"""
    return dy * mask


class ReLU(Function):
    """y = max(x, 0);  dx = dy where x > 0, else 0 (the kink at 0 gets gradient 0, as in PyTorch).

    On the CPU both directions run as one-pass Numba kernels (kernels/numba_cpu/relu.py)
    with the same results as the NumPy functions above.
    """
    fresh_gradients = (0,)          # dx is a new array (see Function)

    def forward(self, x):
        y, mask = find_kernel("relu_forward", x, relu_forward_numpy)(x)
        self.saved = (mask,)
        return y

    def backward(self, dy):
        (mask,) = self.saved
        return find_kernel("relu_backward", dy, relu_backward_numpy)(dy, mask)


def relu_in_place(z):
    """z = max(z, 0) in place, returning z; a NaN stays NaN (numpy.maximum), as in relu."""
    backend.array_module(z).maximum(z, 0, out=z)
    return z


def add_relu_forward_numpy(a, b):
    """z = max(a + b, 0) for a and b of one shape and dtype (NaN stays NaN, as in relu)."""
    return relu_in_place(a + b)


def relu_backward_from_output_numpy(dz, z):
    """dx = dz where z > 0, else 0: ReLU's backward from its OUTPUT z (z > 0 exactly where its input was)."""
    return relu_backward_numpy(dz, z > 0)


class AddReLU(Function):
    """z = relu(a + b) as one op, the last step of a residual block: da = db = dz where z > 0, else 0.

    The same numbers as relu(a + b), without the array a + b (the graph would keep it alive until
    backward as the ReLU's input) or ReLU's mask: backward reads z, which the next layer keeps anyway.
    On the CPU one Numba pass each way (kernels/numba_cpu/relu.py).
    """

    def forward(self, a, b):
        z = find_kernel("add_relu_forward", a, add_relu_forward_numpy)(a, b)
        self.saved = (z,)
        return z

    def backward(self, dz):
        (z,) = self.saved
        g = find_kernel("relu_backward_from_output", dz, relu_backward_from_output_numpy)(dz, z)
        return g, g                              # the sum passes its gradient to both terms unchanged


class LeakyReLU(Function):
    """y = x if x > 0 else slope * x;  dx = dy if x > 0 else slope * dy."""

    def __init__(self, negative_slope=0.01):
        self.negative_slope = negative_slope

    def forward(self, x):
        xp = backend.array_module(x)
        mask = x > 0
        self.saved = (mask,)
        return xp.where(mask, x, x * self.negative_slope)

    def backward(self, dy):
        (mask,) = self.saved
        return backend.array_module(dy).where(mask, dy, dy * self.negative_slope)


class Sigmoid(Function):
    """y = 1 / (1 + e^-x);  dx = dy * y (1 - y).

    Computed as e^x / (1 + e^x) for negative x so that e^-x never overflows.
    """

    def forward(self, x):
        xp = backend.array_module(x)
        e = xp.exp(-xp.abs(x))                  # in (0, 1]: never overflows
        y = xp.where(x >= 0, 1 / (1 + e), e / (1 + e))
        self.saved = (y,)
        return y.astype(x.dtype, copy=False)

    def backward(self, dy):
        (y,) = self.saved
        return dy * y * (1 - y)


class Tanh(Function):
    """y = tanh x;  dx = dy (1 - y^2)."""

    def forward(self, x):
        y = backend.array_module(x).tanh(x)
        self.saved = (y,)
        return y

    def backward(self, dy):
        (y,) = self.saved
        return dy * (1 - y * y)


class GELU(Function):
    """y = x Phi(x), Phi the standard normal CDF (approximate='none'), or the tanh approximation
    y = x/2 (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))) (approximate='tanh').

    Exact: dx = dy (Phi(x) + x phi(x)), phi(x) = e^(-x^2/2) / sqrt(2 pi).
    """

    def __init__(self, approximate="none"):
        if approximate not in ("none", "tanh"):
            raise ValueError(f"gelu: approximate must be 'none' or 'tanh', got {approximate!r}")
        self.approximate = approximate

    def forward(self, x):
        xp = backend.array_module(x)
        self.saved = (x,)
        if self.approximate == "tanh":
            inner = math.sqrt(2 / math.pi) * (x + 0.044715 * x ** 3)
            return 0.5 * x * (1 + xp.tanh(inner))
        return find_kernel("gelu_forward", x, gelu_forward_numpy)(x)

    def backward(self, dy):
        (x,) = self.saved
        xp = backend.array_module(x)
        if self.approximate == "tanh":
            k = math.sqrt(2 / math.pi)
            t = xp.tanh(k * (x + 0.044715 * x ** 3))
            return dy * (0.5 * (1 + t) + 0.5 * x * (1 - t * t) * k * (1 + 3 * 0.044715 * x * x))
        return find_kernel("gelu_backward", x, gelu_backward_numpy)(x, dy)


def gelu_forward_numpy(x):
    """The exact GELU, y = x Phi(x) = x (1 + erf(x / sqrt 2)) / 2."""
    return x * 0.5 * (1 + backend.erf(x / math.sqrt(2)))


def gelu_backward_numpy(x, dy):
    """dx = dy (Phi(x) + x phi(x)), phi(x) = e^(-x^2/2) / sqrt(2 pi)."""
    xp = backend.array_module(x)
    cdf = 0.5 * (1 + backend.erf(x / math.sqrt(2)))
    pdf = xp.exp(-0.5 * x * x) / math.sqrt(2 * math.pi)
    return dy * (cdf + x * pdf)


class Softmax(Function):
    """y_i = e^(x_i - m) / sum_j e^(x_j - m) along `axis` (m = max, for stability);
    dx = y * (dy - sum_j dy_j y_j)."""

    def __init__(self, axis=-1):
        self.axis = axis

    def forward(self, x):
        xp = backend.array_module(x)
        e = xp.exp(x - x.max(axis=self.axis, keepdims=True))
        y = e / e.sum(axis=self.axis, keepdims=True)
        self.saved = (y,)
        return y

    def backward(self, dy):
        (y,) = self.saved
        return y * (dy - (dy * y).sum(axis=self.axis, keepdims=True))


class LogSoftmax(Function):
    """y = x - logsumexp(x) along `axis`;  dx = dy - softmax(x) * sum_j dy_j."""

    def __init__(self, axis=-1):
        self.axis = axis

    def forward(self, x):
        xp = backend.array_module(x)
        shifted = x - x.max(axis=self.axis, keepdims=True)
        y = shifted - xp.log(xp.exp(shifted).sum(axis=self.axis, keepdims=True))
        self.saved = (y,)
        return y

    def backward(self, dy):
        (y,) = self.saved
        xp = backend.array_module(y)
        return dy - xp.exp(y) * dy.sum(axis=self.axis, keepdims=True)


def relu(x):
    return ReLU()(x)


def add_relu(a, b):
    """relu(a + b); one fused op (AddReLU) when a and b are Tensors of one shape and dtype on one device,
    else the two ops (broadcasting, mixed dtypes)."""
    same = (isinstance(a, Tensor) and isinstance(b, Tensor) and a.shape == b.shape and a.dtype == b.dtype
            and a.device == b.device)
    return AddReLU()(a, b) if same else relu(a + b)


def leaky_relu(x, negative_slope=0.01):
    return LeakyReLU(negative_slope)(x)


def sigmoid(x):
    return Sigmoid()(x)


def tanh(x):
    return Tanh()(x)


def gelu(x, approximate="none"):
    return GELU(approximate)(x)


def softmax(x, dim=-1, *, axis=None):
    return Softmax(dim if axis is None else axis)(x)


def log_softmax(x, dim=-1, *, axis=None):
    return LogSoftmax(dim if axis is None else axis)(x)
