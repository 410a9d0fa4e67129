"""2-D convolution (cross-correlation, as in every deep-learning library) via im2col.

(`conv2d` below sends the 3x3 stride-1 layers that suit it on the CPU to Winograd's
algorithm instead, minigrad/ops/winograd.py; this file is the general method.)

Shapes:  N batch, C input channels, H x W input size, F filters (output channels),
         G groups, C/G and F/G channels per group, KH x KW kernel size,
         OH x OW output size, P = N*OH*OW output positions, K = C/G*KH*KW.

    y[n, f, oh, ow] = b[f] + sum_(c in group of f, kh, kw)
                      w[f, c, kh, kw] * x_padded[n, c, oh*SH + kh*DH, ow*SW + kw*DW]

`conv2d_reference` computes exactly this with loops. `Conv2d` gathers every
patch into the columns of one matrix with im2col (see im2col.py) and does ONE
matrix product per group:

    cols = im2col(x)                                   (C*KH*KW, P) = G blocks of (K, P)
    y_g  = W_g @ cols_g                                (F/G, K) @ (K, P) -> (F/G, P)

Backward, with dY_g = dy for group g's filters laid out as (F/G, P):
    dW_g    = dY_g @ cols_g^T                          (F/G, P) @ (P, K) -> (F/G, K)
    db      = sum of dy over n, oh, ow                 (F,)
    dcols_g = W_g^T @ dY_g                             (K, F/G) @ (F/G, P) -> (K, P)
    dx      = col2im(dcols)                            (N, C, H, W)
col2im is the adjoint of im2col, which is what the chain rule asks for.

Memory and speed: on the CPU the batch goes through these products a chunk of
images at a time (P above becomes n*OH*OW for the n images of a chunk), so cols
needs no more than CHUNK_BYTES (or the weight's size when that is larger); dW adds
up the chunks' products. Forward keeps x, not cols (KH*KW times larger); backward
rebuilds each chunk's cols with im2col (strided layers, whose cols is small, keep
it: KEEP_COLS_UP_TO).
The products go into `scratch` buffers (on the CPU reused from a pool, see
registry.py). A chunk of ONE image needs no transposes: y[n] viewed as (F, OH*OW)
is exactly the (F, P) product, and so is dy[n].
"""
import numpy

from minigrad import backend
from minigrad.function import Function
from minigrad.ops import winograd
from minigrad.ops.cpu_threads import chunks_for, run_blocks
from minigrad.ops.im2col import check_conv_shapes, col2im, conv_output_size, im2col, pair
from minigrad.ops.registry import scratch
from minigrad.tensor import Tensor


# Images per chunk, as a bound on the bytes of one chunk's cols. About 1 MiB keeps a
# chunk's cols in the core's L2 cache (2 MiB here) while im2col writes it, the GEMM reads
# it and col2im reads dcols, instead of streaming 75 MiB through memory for a 16-channel
# 32x32 layer at batch 128. Measured (1 thread, fwd+bwd, that layer, benchmarks/RESULTS.md):
# 16 MiB chunks 78 ms, 1 MiB 66 ms; one image per chunk everywhere (1 byte) was slower on
# the small 8x8 layers (38 vs 33 ms: too many tiny GEMMs).
# On the GPU one chunk of the whole batch keeps the GEMMs large.
# The budget is never below the weight's size, though: OpenBLAS copies (packs) the weight for
# every product, and a 9 MiB weight (ResNet-18's 512->512) with 1 MiB chunks of 3 images was copied
# eleven times for as many thin products (fwd+bwd, batch 32, 1 thread: 69.9-70.6 ms; one chunk:
# 48.1-51.7 ms; benchmarks/raw/round6/adhoc/later_changes_ab_t1.txt).
CHUNK_BYTES = {"cpu": 1 << 20, "gpu": None}

# Strided layers on the CPU keep cols from forward for backward when it is at most this many
# times the size of x (cols has KH*KW/(SH*SW) numbers per input number: 2.25 for a 3x3 kernel at
# stride 2, 0.25 for a 1x1 shortcut, 12.25 for a 7x7 stem at stride 2, which is rebuilt instead).
# Rebuilding a stride-2 layer's cols costs about as much as one of its matrix products; keeping
# it took minigrad's forward+backward on ResNet-20's two 3x3 stride-2 layers from 22.4 to 20.9 ms
# and from 16.1 to 14.5 ms (medians of three A/B rounds, 1 thread, with torch alternating:
# benchmarks/raw/round5/adhoc/keep_cols_ab.txt; keeping always ran first in a round), for 15 MiB more first-step
# memory (406 vs 391 MiB).
# (In round 4, from the phase planes and without torch alternating, it had not helped.)
KEEP_COLS_UP_TO = 4

# Backward computes dW^T = cols @ dY^T, (K, nP) @ (nP, F/G), which measured 1.6x faster than
# dY @ cols^T on ResNet-20's chunks, and transposes the sum at the end. Transposing is a slow,
# cache-unfriendly copy for a large weight (ResNet-18's 512x512x3x3, 9 MiB: most of 18 ms), and
# for such shapes the two orders run at the same speed (12.3 ms each, 512x4608 by 512); so weights
# of more than this many bytes get dW = dY @ cols^T directly. ResNet-18's 512->512 4x4 layer, batch
# 32, fwd+bwd, 1 thread: 68.5-69.9 -> 51.1-52.3 ms; its 256->512 stride-2 layer 34.8-36.0 -> 25.0-27.1
# ms (benchmarks/raw/round6/adhoc/later_changes_ab_t1.txt). Always computing it directly made
# ResNet-20's 32->64 stride-2 layer slower (11.4 against 10.6-11.0 ms, a short script not kept).
DW_TRANSPOSED_UP_TO = 1 << 20


def _gemm(a, b, out):
    """out = a @ b for 2-D arrays. One 2-D product per group, not one stacked (G, ., .)
    matmul: NumPy's stacked matmul with a transposed operand measured 50x slower than the
    2-D product at 2 threads when torch was imported in the same process."""
    backend.array_module(a).matmul(a, b, out=out)


def _as_columns(chunk):
    """(n, F, OH, OW) -> (F, n*OH*OW), the layout of the products; a view (no copy) for one image."""
    if chunk.shape[0] == 1:
        return chunk.reshape(chunk.shape[1], -1)
    return chunk.transpose(1, 0, 2, 3).reshape(chunk.shape[1], -1)


class Conv2d(Function):
    """y = conv2d(x, w) + b with x (N, C, H, W), w (F, C/G, KH, KW), b (F,) or None."""

    fresh_gradients = (0, 1, 2)      # dx, dW and db are new arrays (see Function)

    def __init__(self, stride=1, padding=0, dilation=1, groups=1):
        self.stride = pair(stride, "stride", "conv2d")
        self.padding = pair(padding, "padding", "conv2d")
        self.dilation = pair(dilation, "dilation", "conv2d")
        self.groups = int(groups)
        if min(self.stride) < 1 or min(self.dilation) < 1 or min(self.padding) < 0 or self.groups < 1:
            raise ValueError(
                f"conv2d: need stride >= 1, dilation >= 1, padding >= 0 and groups >= 1, got "
                f"stride={self.stride}, dilation={self.dilation}, padding={self.padding}, groups={self.groups}"
            )

    def _im2col(self, x):
        kernel_h, kernel_w = self.kernel
        cols = im2col(x, kernel_h, kernel_w, self.stride, self.padding, self.dilation)  # (C*KH*KW, n*OH*OW)
        return cols.reshape(self.groups, -1, cols.shape[-1])                            # (G, K, n*OH*OW)

    def _keeps_cols(self, x):
        """Whether forward keeps each chunk's cols for backward (see KEEP_COLS_UP_TO): only when a
        backward will need it for dW (needs_input_grad is set before forward; it is empty when no
        graph is recorded, under no_grad or when no input needs a gradient)."""
        kernel_h, kernel_w = self.kernel
        growth = kernel_h * kernel_w / (self.stride[0] * self.stride[1])    # cols size / x size
        weight_needs_grad = len(self.needs_input_grad) > 1 and self.needs_input_grad[1]
        return (weight_needs_grad and max(self.stride) > 1 and growth <= KEEP_COLS_UP_TO
                and backend.device_of(x) == "cpu")

    def _chunks(self, x, weight_bytes):
        _, c, _, _ = x.shape
        out_h, out_w = self.out_size
        bytes_per_image = c * self.kernel[0] * self.kernel[1] * out_h * out_w * x.dtype.itemsize
        budget = CHUNK_BYTES.get(backend.device_of(x))
        if budget is not None:                   # never below the weight's size (see CHUNK_BYTES)
            budget = max(budget, weight_bytes)
        return chunks_for(x.shape[0], bytes_per_image, budget, backend.device_of(x))

    def forward(self, x, weight, bias=None):
        check_conv_shapes(x, weight, bias, self.padding, self.dilation, self.groups)
        xp = backend.array_module(x)
        n, c, height, width = x.shape
        filters, c_group, kernel_h, kernel_w = weight.shape
        self.kernel = (kernel_h, kernel_w)
        self.out_size = (conv_output_size(height, kernel_h, self.stride[0], self.padding[0], self.dilation[0]),
                         conv_output_size(width, kernel_w, self.stride[1], self.padding[1], self.dilation[1]))
        out_h, out_w = self.out_size
        w_2d = weight.reshape(self.groups, filters // self.groups, -1)                  # (G, F/G, K)
        y = scratch((n, filters, out_h, out_w), xp.result_type(x, weight), x)   # pooled on the CPU
        kept_cols = {} if self._keeps_cols(x) else None                 # (first, last + 1 image) -> cols

        def forward_block(block):                 # chunk by chunk: cols stays small (see CHUNK_BYTES)
            for images in block:
                cols = self._im2col(x[images])                                          # (G, K, n*OH*OW)
                if kept_cols is not None:
                    kept_cols[images.start, images.stop] = cols
                one_image = images.stop - images.start == 1
                y_2d = (y[images.start].reshape(self.groups, filters // self.groups, -1) if one_image  # view of y
                        else scratch((self.groups, filters // self.groups, cols.shape[-1]), y.dtype, x))
                for g in range(self.groups):          # 2-D products (see _gemm)
                    _gemm(w_2d[g], cols[g], y_2d[g])      # (F/G, K) @ (K, n*OH*OW) -> (F/G, n*OH*OW)
                if not one_image:
                    y[images] = y_2d.reshape(filters, -1, out_h, out_w).transpose(1, 0, 2, 3)  # (n, F, OH, OW)

        chunks = self._chunks(x, weight.nbytes)
        run_blocks(forward_block, chunks, backend.device_of(x))   # blocks of chunks on the CPU's cores
        if bias is not None:
            y += bias.reshape(1, filters, 1, 1)
        # Keep x, not cols: at stride 1 cols is KH*KW times larger than x and backward rebuilds it
        # in one cheap copy (im2col), so a deep network does not hold every layer's cols at once.
        # Strided layers, whose cols is small and costly to rebuild, also keep it (KEEP_COLS_UP_TO).
        self.saved = (x, w_2d, weight.shape, bias is not None, kept_cols)
        return y

    def backward(self, dy):
        x, w_2d, w_shape, has_bias, kept_cols = self.saved
        xp = backend.array_module(dy)
        groups = self.groups
        filters, _, kernel_h, kernel_w = w_shape
        need_dx, need_dw = self.needs_input_grad[0], self.needs_input_grad[1]
        dx = scratch(x.shape, dy.dtype, dy) if need_dx else None
        w_t = w_2d.transpose(0, 2, 1)                                                    # (G, K, F/G)
        dw_transposed = w_2d.nbytes <= DW_TRANSPOSED_UP_TO        # sum dW^T, (G, K, F/G), or dW, (G, F/G, K)
        dw_shape = (groups, w_2d.shape[2], w_2d.shape[1]) if dw_transposed else w_2d.shape

        def backward_block(block):
            dw_part = xp.zeros(dw_shape, dtype=dy.dtype) if need_dw else None     # this block's sum
            for images in block:
                dy_2d = _as_columns(dy[images]).reshape(groups, filters // groups, -1)  # (G, F/G, n*OH*OW)
                if need_dw:
                    cols = kept_cols.pop((images.start, images.stop), None) if kept_cols else None  # used once
                    if cols is None:       # a second backward (retain_graph), or other chunks (threads changed)
                        cols = self._im2col(x[images])                                   # (G, K, n*OH*OW)
                    for g in range(groups):   # see DW_TRANSPOSED_UP_TO
                        if dw_transposed:
                            dw_part[g] += cols[g] @ dy_2d[g].T   # (K, nP) @ (nP, F/G) -> (K, F/G)
                        else:
                            dw_part[g] += dy_2d[g] @ cols[g].T   # (F/G, nP) @ (nP, K) -> (F/G, K)
                    del cols                                     # its buffer serves dcols below
                if need_dx:
                    dcols = scratch((w_t.shape[0] * w_t.shape[1], dy_2d.shape[-1]), dy.dtype, dy)  # (C*KH*KW, nP)
                    dcols_g = dcols.reshape(groups, -1, dcols.shape[-1])                 # (G, K, nP)
                    for g in range(groups):                      # in a pooled buffer like cols
                        _gemm(w_t[g], dy_2d[g], dcols_g[g])      # (K, F/G) @ (F/G, nP) -> (K, nP)
                    col2im(dcols, x[images].shape, kernel_h, kernel_w, self.stride, self.padding,
                           self.dilation, out=dx[images])        # straight into this chunk of dx
            return dw_part

        dw_parts = run_blocks(backward_block, self._chunks(x, w_2d.nbytes), backend.device_of(dy))
        if kept_cols:
            kept_cols.clear()              # chunks that did not match (threads changed): free them now
        dw = None
        if need_dw:
            dw_sum = sum(dw_parts[1:], dw_parts[0])                                     # in block order
            dw = (dw_sum.transpose(0, 2, 1) if dw_transposed else dw_sum).reshape(w_shape)  # (F, C/G, KH, KW)
        db = dy.sum(axis=(0, 2, 3)) if has_bias and self.needs_input_grad[2] else None  # (F,)
        return dx, dw, db


def conv2d(x, weight, bias=None, stride=1, padding=0, dilation=1, groups=1):
    """torch.nn.functional.conv2d: x (N, C, H, W), weight (F, C/groups, KH, KW), bias (F,) or None.

    Picks the algorithm: Winograd F(2x2, 3x3) (minigrad/ops/winograd.py) for the 3x3,
    stride-1 layers that suit it on the CPU, im2col (Conv2d above) for everything else.
    Both compute the same convolution to float rounding.
    """
    function = Conv2d(stride, padding, dilation, groups)
    x_array = x.data if isinstance(x, Tensor) else x                 # raw NumPy/CuPy arrays are allowed too
    w_array = weight.data if isinstance(weight, Tensor) else weight
    if winograd.suits(x_array, w_array, function.stride, function.dilation, function.groups):
        function = winograd.Conv2dWinograd(padding)
    return function(x, weight, bias)


def conv2d_reference(x, weight, bias=None, stride=1, padding=0, dilation=1, groups=1):
    """The definition of conv2d with plain loops (NumPy arrays in and out, forward only).

    Slow on purpose: one output number at a time, written as the formula at the
    top of this file. For teaching and as the oracle that Conv2d is tested against.
    """
    x, weight = numpy.asarray(x), numpy.asarray(weight)
    (sh, sw), (ph, pw), (dh, dw) = pair(stride, "stride", "conv2d"), pair(padding, "padding", "conv2d"), \
        pair(dilation, "dilation", "conv2d")
    check_conv_shapes(x, weight, bias, (ph, pw), (dh, dw), groups)
    n_batch, channels, height, width = x.shape
    filters, c_group, kernel_h, kernel_w = weight.shape
    f_group = filters // groups
    out_h = conv_output_size(height, kernel_h, sh, ph, dh)
    out_w = conv_output_size(width, kernel_w, sw, pw, dw)
    x_padded = numpy.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)))
    y = numpy.zeros((n_batch, filters, out_h, out_w), dtype=numpy.result_type(x, weight))
    for n in range(n_batch):
        for f in range(filters):
            first_channel = (f // f_group) * c_group          # the group of filter f sees these channels
            for oh in range(out_h):
                for ow in range(out_w):
                    total = 0.0 if bias is None else float(bias[f])
                    for c in range(c_group):
                        for kh in range(kernel_h):
                            for kw in range(kernel_w):
                                pixel = x_padded[n, first_channel + c, oh * sh + kh * dh, ow * sw + kw * dw]
                                total += weight[f, c, kh, kw] * pixel
                    y[n, f, oh, ow] = total
    return y
