"""The fast Winograd convolution, and when to use it (`suits`): minigrad/ops/winograd.py, in chunks.

The maths is the reference's (minigrad/ops/winograd.py: U = G g G^T, V = B^T d B, M = V @ U,
Y = A^T M A, and backward as the same chain of adjoints). Here the batch goes through it a
chunk of images at a time, so that a chunk's V and M stay in the core's cache between the
transforms and the 16 GEMMs (tuning.WINOGRAD_CHUNK_BYTES, with at least
tuning.WINOGRAD_MIN_TILES tiles so the GEMMs are not too thin), the chunks shared out over
the cores as in fast/conv.py, and big arrays from the buffer pool.

Winograd does 2.25x fewer multiplications than im2col but its 16 GEMMs have the input
channels C as their inner size, and the transforms are extra passes over memory, so it wins
only on 3x3, stride-1 layers with enough channels (tuning.WINOGRAD_MIN_CHANNELS) and large
enough images (tuning.WINOGRAD_MIN_PIXELS), on the CPU, with the Numba transforms there.
"""
import numpy

from minigrad import backend
from minigrad.fast import tuning
from minigrad.fast.buffers import add_bias, scratch
from minigrad.fast.threads import fold_parts, one_blas_thread, parts_for, run_blocks, sum_in_order
from minigrad.kernels import numba_cpu
from minigrad.ops.winograd import Conv2dWinograd, tile_counts, transforms_for, weight_transform, \
    weight_transform_adjoint


def suits(x, weight, stride, dilation, groups):
    """True when the fast conv2d should use Winograd for arrays x and weight (see the module docstring)."""
    return (backend.device_of(x) == backend.CPU and x.ndim == 4 and weight.ndim == 4
            and numpy.result_type(x, weight).kind == "f"               # G holds 1/2: floats only
            and tuple(weight.shape[2:]) == (3, 3) and tuple(stride) == (1, 1) and tuple(dilation) == (1, 1)
            and groups == 1 and weight.shape[1] == x.shape[1] >= tuning.WINOGRAD_MIN_CHANNELS
            and x.shape[2] * x.shape[3] >= tuning.WINOGRAD_MIN_PIXELS
            and numba_cpu.numba_available())


class Conv2dWinogradFast(Conv2dWinograd):
    """Conv2dWinograd (minigrad/ops/winograd.py) in chunks of images, on several cores: the same numbers."""

    def _parts(self, x):
        """The batch in parts of chunks (threads.py): each chunk's V within the budget."""
        tiles_h, tiles_w = tile_counts(*self.out_size)
        bytes_per_tile = 16 * x.shape[1] * x.dtype.itemsize                          # one tile's V
        device = backend.device_of(x)
        budget = None                                                                # the GPU: one chunk
        if device == backend.CPU:       # wide layers: enough tiles for the GEMMs, even past the cache
            budget = max(tuning.WINOGRAD_CHUNK_BYTES, tuning.WINOGRAD_MIN_TILES * bytes_per_tile)
        return parts_for(x.shape[0], bytes_per_tile * tiles_h * tiles_w, budget, device)

    def forward(self, x, weight, bias=None):
        self.out_size = self.check(x, weight, bias)
        xp = backend.array_module(x)
        n, filters = x.shape[0], weight.shape[0]
        dtype = xp.result_type(x, weight)
        x = x.astype(dtype, copy=False)
        with one_blas_thread(backend.device_of(x)):      # a small product: no spinning BLAS worker
            u = weight_transform(weight.astype(dtype, copy=False))                   # (16, C, F)
        y = scratch((n, filters) + self.out_size, dtype, x)                         # (N, F, OH, OW)
        input_transform, output_transform, _, _ = transforms_for(x)

        def forward_block(block):
            for images in (chunk for part in block for chunk in part):
                v = input_transform(x[images], self.padding, *self.out_size)          # (16, T, C)
                m = scratch((16, v.shape[1], filters), dtype, x)                     # (16, T, F)
                xp.matmul(v, u, out=m)          # 16 GEMMs in one call: (16, T, C) @ (16, C, F) -> (16, T, F)
                output_transform(m, y[images])                                       # (n, F, OH, OW)

        run_blocks(forward_block, self._parts(x), backend.device_of(x))
        if bias is not None:
            y = add_bias(y, bias)
        self.saved = (x, u, bias is not None)          # x, not V: backward rebuilds V chunk by chunk
        return y

    def backward(self, dy):
        x, u, has_bias = self.saved
        xp = backend.array_module(dy)
        need_dx, need_dw = self.needs_input_grad[0], self.needs_input_grad[1]
        dx = scratch(x.shape, dy.dtype, dy) if need_dx else None
        u_t = xp.ascontiguousarray(u.transpose(0, 2, 1)) if need_dx else None       # (16, F, C), for dx
        input_transform, _, output_transform_adjoint, input_transform_adjoint = transforms_for(dy)

        def backward_chunk(images, du_sum):          # dx for these images, and dU's running sum of the part
            dm = output_transform_adjoint(dy[images])                                # (16, T, F)
            if need_dw:
                v = input_transform(x[images], self.padding, *self.out_size)          # (16, T, C), rebuilt
                product = xp.matmul(v.transpose(0, 2, 1), dm)        # (16, C, T) @ (16, T, F) -> (16, C, F)
                if du_sum is None:
                    du_sum = product
                else:
                    du_sum += product                        # in chunk order within the part
                del v                                                # its buffer can serve dv below
            if need_dx:
                dv = scratch((16, dm.shape[1], x.shape[1]), dy.dtype, dy)            # (16, T, C)
                xp.matmul(dm, u_t, out=dv)                           # (16, T, F) @ (16, F, C) -> (16, T, C)
                input_transform_adjoint(dv, self.padding, dx[images])                 # (n, C, H, W)
            return du_sum

        blocks = run_blocks(lambda block: fold_parts(block, backward_chunk), self._parts(x),
                            backend.device_of(dy))                               # a dU sum per part
        dw = None
        if need_dw:
            sums = [part for block in blocks for part in block] or [xp.zeros(u.shape, dy.dtype)]  # none: no images
            du = sum_in_order(sums)                                                  # in part order
            with one_blas_thread(backend.device_of(dy)):
                dw = weight_transform_adjoint(du)                                    # (F, C, 3, 3)
        db = dy.sum(axis=(0, 2, 3)) if has_bias and self.needs_input_grad[2] else None
        return dx, dw, db
