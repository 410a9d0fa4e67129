"""Conv2d: a layer of F learned filters slid over an image.

    x (N, C, H, W)  ->  y (N, F, OH, OW),   OH = (H + 2 PH - DH (KH - 1) - 1) // SH + 1
    weight (F, C/G, KH, KW), bias (F,)

With groups G the C input channels are split into G groups of C/G, and each
group of F/G filters only sees its own group (G = C gives a depthwise conv).
The maths lives in minigrad/ops/conv.py; this layer owns the parameters and
checks the input. Default initialisation is PyTorch's: kaiming_uniform_ with
a = sqrt(5) for the weight and U(-1/sqrt(fan_in), 1/sqrt(fan_in)) for the
bias, fan_in = C/G * KH * KW.
"""
import math

from minigrad.kernels.geometry import pair
from minigrad.nn import init
from minigrad.nn.linear import empty_parameter
from minigrad.nn.module import Module, check_input_dtype
from minigrad.ops.conv import conv2d


class Conv2d(Module):
    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0, dilation=1,
                 groups=1, bias=True, device=None, dtype=None):
        super().__init__()
        if in_channels % groups or out_channels % groups:
            raise ValueError(
                f"Conv2d: in_channels ({in_channels}) and out_channels ({out_channels}) must both "
                f"be divisible by groups ({groups})"
            )
        self.in_channels, self.out_channels, self.groups = in_channels, out_channels, groups
        self.kernel_size, self.stride = pair(kernel_size, "Conv2d", "kernel_size"), pair(stride, "Conv2d", "stride")
        self.padding, self.dilation = pair(padding, "Conv2d", "padding"), pair(dilation, "Conv2d", "dilation")
        shape = (out_channels, in_channels // groups) + self.kernel_size   # (F, C/G, KH, KW)
        self.weight = empty_parameter(shape, device, dtype)
        if bias:
            self.bias = empty_parameter((out_channels,), device, dtype)
        else:
            self.register_parameter("bias", None)
        self.reset_parameters()

    def reset_parameters(self):
        init.kaiming_uniform_(self.weight, a=math.sqrt(5))
        if self.bias is not None:
            fan_in, _ = init.calculate_fan_in_and_fan_out(self.weight)
            bound = 1 / math.sqrt(fan_in) if fan_in > 0 else 0
            init.uniform_(self.bias, -bound, bound)

    def forward(self, x):
        check_input_dtype(self._signature(), x, self.weight)
        if x.ndim != 4:
            raise ValueError(
                f"{self._signature()}: expected a 4-D input (N, C, H, W), got shape {tuple(x.shape)}"
            )
        if x.shape[1] != self.in_channels:
            raise ValueError(
                f"{self._signature()}: expected input with {self.in_channels} channels, "
                f"got shape {tuple(x.shape)}"
            )
        return conv2d(x, self.weight, self.bias, self.stride, self.padding, self.dilation, self.groups)

    def _signature(self):
        return f"Conv2d({self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size})"

    def extra_repr(self):
        text = f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, stride={self.stride}"
        if self.padding != (0, 0):
            text += f", padding={self.padding}"
        if self.dilation != (1, 1):
            text += f", dilation={self.dilation}"
        if self.groups != 1:
            text += f", groups={self.groups}"
        if self.bias is None:
            text += ", bias=False"
        return text
