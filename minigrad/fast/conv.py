"""The fast im2col convolution: minigrad/ops/conv.py's Conv2d, engineered for the CPU's caches and cores.

The same maths as the reference Conv2d (read that first: cols = im2col(x), y_g = W_g @ cols_g,
dW_g = dY_g @ cols_g^T, dx = col2im(W_g^T @ dY_g)), with four changes that only make it faster:

- Chunks. The batch goes through im2col and the products a chunk of images at a time, so a
  chunk's cols (tuning.CONV_CHUNK_BYTES, or the weight's size when that is larger) stays in
  the core's cache instead of streaming the whole batch's cols (KH*KW times x) through memory.
  dW adds up the chunks' products. On the GPU one chunk holds the whole batch: its GEMMs want
  to be large.
- Threads. The chunks are cut into one block per core and the blocks run side by side
  (threads.py); the blocks write disjoint images of y and dx, and dW adds the chunks' products
  in chunk order within each part of the batch, then the parts' sums in part order, so the
  numbers do not depend on the number of threads.
- Memory. Forward keeps x, not cols: backward rebuilds a chunk's cols with one cheap im2col,
  so a deep network does not hold every layer's cols at once. Strided layers, whose cols is
  small and costs a GEMM's time to rebuild, keep it (tuning.CONV_KEEP_COLS_MAX_GROWTH). Big
  arrays come from the buffer pool (buffers.py). A chunk of ONE image needs no transposes:
  y[n] viewed as (F, OH*OW) is exactly the (F, P) product, and so is dy[n].
- dW order. Small weights sum dW^T = cols @ dY^T (the faster order for thin chunks) and
  transpose once at the end; large ones (tuning.CONV_DW_TRANSPOSED_MAX_BYTES) sum dW = dY @
  cols^T directly, avoiding a slow transpose of a big array.

`Conv2dDirect` skips cols altogether, for layers with few channels and large kernels (LeNet's
5x5): kernels/numba_cpu/direct_conv.py computes each output from its input window; `direct_suits`
says when (tuning.DIRECT_*).

docs/10_performance.md explains each choice; tests/test_fast_conv.py checks that these classes
give the reference's numbers.
"""
import numpy

from minigrad import backend
from minigrad.fast import cpu_kernels, tuning, winograd
from minigrad.fast.buffers import add_bias, scratch
from minigrad.fast.threads import fold_parts, parts_for, run_blocks, sum_in_order
from minigrad.ops.conv import Conv2d
from minigrad.ops.im2col import col2im, im2col
from minigrad.ops.registry import register_function


def _gemm(a, b, out):
    """out = a @ b for 2-D arrays, written straight into `out` (a view of y, or a pooled buffer): one
    2-D product per group, whose speed does not depend on how NumPy handles a stacked matmul."""
    backend.array_module(a).matmul(a, b, out=out)


def _as_columns(chunk):
    """(n, F, OH, OW) -> (F, n*OH*OW), the layout of the products; a view (no copy) for one image."""
    if chunk.shape[0] == 1:
        return chunk.reshape(chunk.shape[1], -1)
    return chunk.transpose(1, 0, 2, 3).reshape(chunk.shape[1], -1)


class Conv2dFast(Conv2d):
    """Conv2d (minigrad/ops/conv.py) in chunks of images, on several cores: the same numbers."""

    def _im2col(self, x):
        kernel_h, kernel_w = self.kernel
        cols = im2col(x, kernel_h, kernel_w, self.stride, self.padding, self.dilation)  # (C*KH*KW, n*OH*OW)
        return cols.reshape(self.groups, -1, cols.shape[-1])                            # (G, K, n*OH*OW)

    def _keeps_cols(self, x):
        """Whether forward keeps each chunk's cols for backward: on the CPU, for strided layers whose cols
        is small (tuning.CONV_KEEP_COLS_MAX_GROWTH), when a backward will need it for dW (needs_input_grad
        is set before forward; it is empty when no graph is recorded)."""
        kernel_h, kernel_w = self.kernel
        growth = kernel_h * kernel_w / (self.stride[0] * self.stride[1])    # cols size / x size
        weight_needs_grad = len(self.needs_input_grad) > 1 and self.needs_input_grad[1]
        return (weight_needs_grad and max(self.stride) > 1 and growth <= tuning.CONV_KEEP_COLS_MAX_GROWTH
                and backend.device_of(x) == backend.CPU)

    def _parts(self, x, weight_bytes):
        """The batch in parts of chunks (threads.py): each chunk's cols within the budget."""
        out_h, out_w = self.out_size
        bytes_per_image = x.shape[1] * self.kernel[0] * self.kernel[1] * out_h * out_w * x.dtype.itemsize
        device = backend.device_of(x)
        budget = max(tuning.CONV_CHUNK_BYTES, weight_bytes) if device == backend.CPU else None   # None: one chunk
        return parts_for(x.shape[0], bytes_per_image, budget, device)

    def forward(self, x, weight, bias=None):
        self.out_size = self.check(x, weight, bias)
        xp = backend.array_module(x)
        filters, groups = weight.shape[0], self.groups
        self.kernel = tuple(weight.shape[2:])
        out_h, out_w = self.out_size
        w_2d = weight.reshape(groups, filters // groups, -1)                            # (G, F/G, K)
        y = scratch((x.shape[0], filters, out_h, out_w), xp.result_type(x, weight), x)  # (N, F, OH, OW)
        kept_cols = {} if self._keeps_cols(x) else None                 # (first, last + 1 image) -> cols

        def forward_block(block):
            for images in (chunk for part in block for chunk in part):
                cols = self._im2col(x[images])                                          # (G, K, n*OH*OW)
                if kept_cols is not None:
                    kept_cols[images.start, images.stop] = cols
                one_image = images.stop - images.start == 1
                y_2d = (y[images.start].reshape(groups, filters // groups, -1) if one_image   # a view of y
                        else scratch((groups, filters // groups, cols.shape[-1]), y.dtype, x))
                for g in range(groups):
                    _gemm(w_2d[g], cols[g], y_2d[g])      # (F/G, K) @ (K, n*OH*OW) -> (F/G, n*OH*OW)
                if not one_image:
                    y[images] = y_2d.reshape(filters, -1, out_h, out_w).transpose(1, 0, 2, 3)  # (n, F, OH, OW)

        run_blocks(forward_block, self._parts(x, weight.nbytes), backend.device_of(x))
        if bias is not None:
            y = add_bias(y, bias)
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
        dw_transposed = w_2d.nbytes <= tuning.CONV_DW_TRANSPOSED_MAX_BYTES   # sum dW^T (G, K, F/G), or dW (G, F/G, K)
        dw_shape = (groups, w_2d.shape[2], w_2d.shape[1]) if dw_transposed else w_2d.shape

        def backward_chunk(images, dw_sum):          # dx for these images, and dW's running sum of the part
            dy_2d = _as_columns(dy[images]).reshape(groups, filters // groups, -1)      # (G, F/G, n*OH*OW)
            if need_dw:
                cols = kept_cols.pop((images.start, images.stop), None) if kept_cols else None  # used once
                if cols is None:       # a second backward (retain_graph), or other chunks (tuning changed)
                    cols = self._im2col(x[images])                                       # (G, K, n*OH*OW)
                product = xp.empty(dw_shape, dtype=dy.dtype)
                for g in range(groups):
                    if dw_transposed:
                        _gemm(cols[g], dy_2d[g].T, product[g])   # (K, nP) @ (nP, F/G) -> (K, F/G)
                    else:
                        _gemm(dy_2d[g], cols[g].T, product[g])   # (F/G, nP) @ (nP, K) -> (F/G, K)
                if dw_sum is None:
                    dw_sum = product
                else:
                    dw_sum += product                        # in chunk order within the part
                del cols                                         # its buffer can serve dcols below
            if need_dx:
                dcols = scratch((w_t.shape[0] * w_t.shape[1], dy_2d.shape[-1]), dy.dtype, dy)  # (C*KH*KW, nP)
                dcols_g = dcols.reshape(groups, -1, dcols.shape[-1])                     # (G, K, nP)
                for g in range(groups):
                    _gemm(w_t[g], dy_2d[g], dcols_g[g])          # (K, F/G) @ (F/G, nP) -> (K, nP)
                col2im(dcols, x[images].shape, kernel_h, kernel_w, self.stride, self.padding,
                       self.dilation, out=dx[images])            # straight into this chunk of dx
            return dw_sum

        blocks = run_blocks(lambda block: fold_parts(block, backward_chunk), self._parts(x, w_2d.nbytes),
                            backend.device_of(dy))                               # a dW sum per part
        if kept_cols:
            kept_cols.clear()              # chunks that did not match (tuning changed): free them now
        dw = None
        if need_dw:
            sums = [part for block in blocks for part in block] or [xp.zeros(dw_shape, dy.dtype)]  # none: no images
            dw_sum = sum_in_order(sums)                                                  # in part order
            dw = (dw_sum.transpose(0, 2, 1) if dw_transposed else dw_sum).reshape(w_shape)  # (F, C/G, KH, KW)
        db = dy.sum(axis=(0, 2, 3)) if has_bias and self.needs_input_grad[2] else None  # (F,)
        return dx, dw, db


class Conv2dDirect(Conv2d):
    """Conv2d (minigrad/ops/conv.py) at stride 1 without cols: the direct loops of kernels/numba_cpu/direct_conv.py
    (forward, dx as the full correlation of dy with the flipped filters, dW over fixed parts of the batch)."""

    def forward(self, x, weight, bias=None):
        self.out_size = self.check(x, weight, bias)
        fused = bias is not None and numpy.result_type(x, weight, bias) == x.dtype   # else the wider dtype, after
        y = cpu_kernels.direct_conv_kernel("conv2d_direct_forward")(x, weight, bias if fused else None, self.padding)
        if bias is not None and not fused:
            y = add_bias(y, bias)
        self.saved = (x, weight, bias is not None)
        return y                                                                         # (N, F, OH, OW)

    def backward(self, dy):
        x, weight, has_bias = self.saved
        dy = dy.astype(numpy.result_type(dy, x), copy=False)
        dx = dw = db = None
        if self.needs_input_grad[0]:
            dx = cpu_kernels.direct_conv_kernel("conv2d_direct_input_grad")(dy, weight, self.padding)  # (N, C, H, W)
        if self.needs_input_grad[1]:
            dw = cpu_kernels.direct_conv_kernel("conv2d_direct_weight_grad")(
                x, dy, weight.shape[2:], self.padding, tuning.CHUNKS_AT_LEAST)                # (F, C, KH, KW)
        if has_bias and self.needs_input_grad[2]:
            db = dy.sum(axis=(0, 2, 3))                                                      # (F,)
        return dx, dw, db


def direct_suits(x, weight, stride, padding, dilation, groups):
    """True when the fast conv2d should use Conv2dDirect for arrays x and weight: on the CPU with Numba, float32
    or float64, stride 1, no dilation or groups, a kernel of at least tuning.DIRECT_MIN_TAPS taps (and more than
    the padding), and at most tuning.DIRECT_MAX_CHANNELS input channels and filters."""
    return (backend.device_of(x) == backend.CPU and x.ndim == 4 and weight.ndim == 4
            and x.dtype == weight.dtype and x.dtype in cpu_kernels.KERNEL_DTYPES
            and tuple(stride) == (1, 1) and tuple(dilation) == (1, 1) and groups == 1
            and weight.shape[2] * weight.shape[3] >= tuning.DIRECT_MIN_TAPS
            and padding[0] < weight.shape[2] and padding[1] < weight.shape[3]
            and max(x.shape[1], weight.shape[0]) <= tuning.DIRECT_MAX_CHANNELS
            and cpu_kernels.numba_cpu.numba_available())


def fast_conv2d(function, x, weight):
    """The Function that runs conv2d for these arrays: the direct loops or Winograd where they suit
    (`direct_suits`, winograd.py), else Conv2dFast."""
    if direct_suits(x, weight, function.stride, function.padding, function.dilation, function.groups):
        return Conv2dDirect(function.stride, function.padding, function.dilation, function.groups)
    if winograd.suits(x, weight, function.stride, function.dilation, function.groups):
        return winograd.Conv2dWinogradFast(function.padding)
    return im2col_conv2d(function, x, weight)


def im2col_conv2d(function, x, weight):
    """Conv2dFast with `function`'s settings: the chooser that never picks Winograd or the direct loops
    (for comparisons)."""
    return Conv2dFast(function.stride, function.padding, function.dilation, function.groups)


def install(use_winograd=True):
    """Run conv2d through this module (the direct loops and winograd.py where they suit, unless
    use_winograd=False: then im2col everywhere)."""
    for device in (backend.CPU, backend.GPU):
        register_function("Conv2d", device, fast_conv2d if use_winograd else im2col_conv2d)
