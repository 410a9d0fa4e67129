"""Pooling layers: summarise each window of a feature map by its max or mean.

    x (N, C, H, W) -> y (N, C, OH, OW),  OH = (H + 2 P - K) // S + 1

MaxPool2d and AvgPool2d slide a KH x KW window with stride S (default: the
window size, so windows do not overlap). AdaptiveAvgPool2d picks the windows
itself so that the output has a fixed size; AdaptiveAvgPool2d(1) is the
"global average pool" at the end of a ResNet. No parameters.
"""
from minigrad.nn.module import Module
from minigrad.ops import pool


def _check_4d(layer, x):
    if x.ndim != 4:
        raise ValueError(f"{layer}: expected a 4-D input (N, C, H, W), got shape {tuple(x.shape)}")


class MaxPool2d(Module):
    def __init__(self, kernel_size, stride=None, padding=0):
        super().__init__()
        self.kernel_size, self.padding = kernel_size, padding
        self.stride = kernel_size if stride is None else stride

    def forward(self, x):
        _check_4d(f"MaxPool2d(kernel_size={self.kernel_size})", x)
        return pool.max_pool2d(x, self.kernel_size, self.stride, self.padding)

    def extra_repr(self):
        return f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}"


class AvgPool2d(Module):
    def __init__(self, kernel_size, stride=None, padding=0):
        super().__init__()
        self.kernel_size, self.padding = kernel_size, padding
        self.stride = kernel_size if stride is None else stride

    def forward(self, x):
        _check_4d(f"AvgPool2d(kernel_size={self.kernel_size})", x)
        return pool.avg_pool2d(x, self.kernel_size, self.stride, self.padding)

    def extra_repr(self):
        return f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}"


class AdaptiveAvgPool2d(Module):
    def __init__(self, output_size):
        super().__init__()
        self.output_size = output_size

    def forward(self, x):
        _check_4d(f"AdaptiveAvgPool2d(output_size={self.output_size})", x)
        return pool.adaptive_avg_pool2d(x, self.output_size)

    def extra_repr(self):
        return f"output_size={self.output_size}"
