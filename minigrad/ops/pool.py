"""2-D pooling: max_pool2d, avg_pool2d, adaptive_avg_pool2d (torch.nn.functional semantics).

Shapes:  N batch, C channels, H x W input size, HP x WP padded size (H + 2 PH, W + 2 PW),
         KH x KW window, SH x SW stride, OH x OW output size.

Each output pixel looks at one window of its own channel:
    window(oh, ow) = x_padded[n, c, oh*SH : oh*SH + KH, ow*SW : ow*SW + KW]
Like im2col, the NumPy code loops only over the KH*KW positions (kh, kw) inside
the window, each time taking one strided slice that holds that position of
EVERY window at once.

max_pool2d: y = max of the window (padding counts as -inf, so it never wins).
    backward: each dy goes to the one input that was the max (the first one on
    ties); overlapping windows (stride < kernel) ADD their contributions.
avg_pool2d: y = sum of the window / (KH*KW)  (padding counts as zeros and is in
    the count: count_include_pad=True, PyTorch's default).
    backward: dy / (KH*KW) is added to every input of the window.
adaptive_avg_pool2d: the output size is given; window i along an axis of length
    L covers [floor(i L / O), ceil((i+1) L / O)), PyTorch's rule.

Max pooling dispatches to a faster kernel (minigrad/ops/registry.py) when one is registered
(the fast layer adds Numba and CUDA C versions), else the NumPy/CuPy functions below.
"""
from minigrad import backend
from minigrad.function import Function
from minigrad.kernels.geometry import pair, pool_output_size, tap_window
from minigrad.ops.registry import find_kernel

# The fast layer registers kernels under "max_pool2d_forward" and "max_pool2d_backward", with the
# signatures and results of max_pool2d_forward_numpy and max_pool2d_backward_numpy below.


# ------------------------------------------------------------------ max pooling
def max_pool2d_forward_numpy(x, kh, kw, stride, padding):
    """x (N, C, H, W) -> (y, argmax_index), both (N, C, OH, OW).

    argmax_index layout: for each output element, the FLAT index of the winning
    input inside the padded (HP, WP) plane of the same (n, c):
        argmax_index[n, c, oh, ow] = row * WP + column,  0 <= row < HP, 0 <= column < WP
    (int64). Padding is -inf, so row, column always land on a real pixel.
    """
    xp = backend.array_module(x)
    out_h, out_w = pool_output_size("max_pool2d", x.shape, (kh, kw), stride, padding)
    (ph, pw) = padding
    x_padded = xp.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)), constant_values=-xp.inf)  # (N, C, HP, WP)
    padded_w = x_padded.shape[3]
    y = best = None
    for i in range(kh):
        for j in range(kw):
            rows, columns = tap_window(i, j, out_h, out_w, stride)
            candidate = x_padded[:, :, rows, columns]                    # (N, C, OH, OW)
            if y is None:
                y, best = candidate.copy(), xp.zeros(candidate.shape, dtype=xp.int64)
            else:
                wins = candidate > y                                     # strict: first max wins ties
                y = xp.where(wins, candidate, y)
                best = xp.where(wins, i * kw + j, best)
    # window position (i, j) of output (oh, ow) sits at padded pixel (oh*SH + i, ow*SW + j)
    oh = xp.arange(out_h).reshape(out_h, 1) * stride[0]
    ow = xp.arange(out_w).reshape(1, out_w) * stride[1]
    argmax_index = (oh + best // kw) * padded_w + (ow + best % kw)       # (N, C, OH, OW)
    return y, argmax_index


def max_pool2d_backward_numpy(dy, argmax_index, x_shape, kh, kw, stride, padding):
    """dy (N, C, OH, OW) -> dx (N, C, H, W): add each dy onto the padded pixel argmax_index names.

    A bincount over (plane, pixel) indices is a scatter-ADD, so pixels that win
    several overlapping windows collect every contribution.
    """
    xp = backend.array_module(dy)
    n, c, height, width = x_shape
    (ph, pw) = padding
    padded_h, padded_w = height + 2 * ph, width + 2 * pw
    plane_size = padded_h * padded_w
    plane = xp.arange(n * c).reshape(n, c, 1, 1) * plane_size          # start of each (n, c) plane
    flat_index = (plane + argmax_index).reshape(-1)                      # (N*C*OH*OW,)
    dx_padded = xp.bincount(flat_index, weights=dy.reshape(-1), minlength=n * c * plane_size)
    dx_padded = dx_padded.astype(dy.dtype, copy=False).reshape(n, c, padded_h, padded_w)
    return xp.ascontiguousarray(dx_padded[:, :, ph:ph + height, pw:pw + width])  # (N, C, H, W)


class MaxPool2d(Function):
    """y = max over each window;  dx = dy routed to the arg-max of its window (summed over windows)."""
    fresh_gradients = (0,)          # dx is a new array (see Function)

    def __init__(self, kernel_size, stride=None, padding=0):
        self.kernel = pair(kernel_size, "max_pool2d", "kernel_size")
        self.stride = self.kernel if stride is None else pair(stride, "max_pool2d", "stride")
        self.padding = pair(padding, "max_pool2d", "padding")

    def forward(self, x):
        pool_output_size("max_pool2d", x.shape, self.kernel, self.stride, self.padding)  # checks, for every kernel
        forward = find_kernel("max_pool2d_forward", x, max_pool2d_forward_numpy)
        y, argmax_index = forward(x, *self.kernel, self.stride, self.padding)
        self.saved = (argmax_index, x.shape)
        return y

    def backward(self, dy):
        argmax_index, x_shape = self.saved
        backward = find_kernel("max_pool2d_backward", dy, max_pool2d_backward_numpy)
        return backward(dy, argmax_index, x_shape, *self.kernel, self.stride, self.padding)


# ------------------------------------------------------------------ average pooling
class AvgPool2d(Function):
    """y = (1 / (KH*KW)) * sum over each zero-padded window;  dx = dy / (KH*KW) added to each window."""

    def __init__(self, kernel_size, stride=None, padding=0):
        self.kernel = pair(kernel_size, "avg_pool2d", "kernel_size")
        self.stride = self.kernel if stride is None else pair(stride, "avg_pool2d", "stride")
        self.padding = pair(padding, "avg_pool2d", "padding")

    def forward(self, x):
        xp = backend.array_module(x)
        out_h, out_w = pool_output_size("avg_pool2d", x.shape, self.kernel, self.stride, self.padding)
        (ph, pw), (kh, kw) = self.padding, self.kernel
        x_padded = xp.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)))        # (N, C, HP, WP)
        total = xp.zeros(x.shape[:2] + (out_h, out_w), dtype=x.dtype)    # (N, C, OH, OW)
        for i in range(kh):
            for j in range(kw):
                rows, columns = tap_window(i, j, out_h, out_w, self.stride)
                total += x_padded[:, :, rows, columns]
        self.saved = (x.shape,)
        return total / (kh * kw)

    def backward(self, dy):
        (x_shape,) = self.saved
        xp = backend.array_module(dy)
        n, c, height, width = x_shape
        (ph, pw), (kh, kw) = self.padding, self.kernel
        out_h, out_w = dy.shape[2], dy.shape[3]
        share = dy / (kh * kw)                                           # (N, C, OH, OW)
        dx_padded = xp.zeros((n, c, height + 2 * ph, width + 2 * pw), dtype=dy.dtype)
        for i in range(kh):
            for j in range(kw):
                rows, columns = tap_window(i, j, out_h, out_w, self.stride)
                dx_padded[:, :, rows, columns] += share                  # one slice: no repeated pixels
        return xp.ascontiguousarray(dx_padded[:, :, ph:ph + height, pw:pw + width])  # (N, C, H, W)


# ------------------------------------------------------------------ adaptive average pooling
def adaptive_pool_matrix(xp, size, out_size, dtype):
    """A (O, L) with A[i, start_i:end_i] = 1 / (end_i - start_i), so A @ v averages each window of v.

    start_i = floor(i L / O), end_i = ceil((i + 1) L / O) (PyTorch's rule); windows may overlap.
    """
    matrix = xp.zeros((out_size, size), dtype=dtype)
    for i in range(out_size):
        start = (i * size) // out_size
        end = -((-(i + 1) * size) // out_size)                           # ceil division
        matrix[i, start:end] = 1.0 / (end - start)
    return matrix


class AdaptiveAvgPool2d(Function):
    """y = A_h @ x @ A_w^T per (n, c) plane;  dx = A_h^T @ dy @ A_w.

    The mean over a rectangular window is a row average followed by a column
    average, so the whole pooling is two small matrix products (A_h, A_w from
    adaptive_pool_matrix). That handles every output size, not only divisors.
    """

    def __init__(self, output_size):
        self.output_size = output_size

    def forward(self, x):
        if x.ndim != 4:
            raise ValueError(
                f"adaptive_avg_pool2d: input must have 4 dimensions (N, C, H, W), got shape {tuple(x.shape)}"
            )
        height, width = x.shape[2], x.shape[3]
        size = (self.output_size, self.output_size) if isinstance(self.output_size, int) else self.output_size
        out_h, out_w = (height if size[0] is None else size[0]), (width if size[1] is None else size[1])
        if out_h < 1 or out_w < 1:
            raise ValueError(f"adaptive_avg_pool2d: output_size must be positive, got {self.output_size!r}")
        xp = backend.array_module(x)
        pool_matrix = find_kernel("adaptive_pool_matrix", x, adaptive_pool_matrix)   # the fast layer keeps them
        rows = pool_matrix(xp, height, out_h, x.dtype)                   # (OH, H)
        columns = pool_matrix(xp, width, out_w, x.dtype)                 # (OW, W)
        self.saved = (rows, columns)
        return rows @ x @ columns.T              # (OH, H) @ (N, C, H, W) @ (W, OW) -> (N, C, OH, OW)

    def backward(self, dy):
        rows, columns = self.saved
        return rows.T @ dy @ columns             # (H, OH) @ (N, C, OH, OW) @ (OW, W) -> (N, C, H, W)


def max_pool2d(x, kernel_size, stride=None, padding=0):
    """torch.nn.functional.max_pool2d (stride defaults to kernel_size)."""
    return MaxPool2d(kernel_size, stride, padding)(x)


def avg_pool2d(x, kernel_size, stride=None, padding=0):
    """torch.nn.functional.avg_pool2d with count_include_pad=True (stride defaults to kernel_size)."""
    return AvgPool2d(kernel_size, stride, padding)(x)


def adaptive_avg_pool2d(x, output_size):
    """torch.nn.functional.adaptive_avg_pool2d: output_size is an int or (OH, OW) (None keeps that size)."""
    return AdaptiveAvgPool2d(output_size)(x)
