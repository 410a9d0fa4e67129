"""3x3 convolution by Winograd's minimal filtering F(2x2, 3x3): 2.25x fewer multiplications.

Shapes:  N batch, C input channels, H x W input size, F filters, OH x OW output size,
         TH x TW tiles (TH = ceil(OH/2), TW = ceil(OW/2)), T = N*TH*TW tiles in all,
         16 = the 4x4 points of a tile in the transformed domain.

One dimension first. Two outputs of a 3-tap filter g over four inputs d,

    y0 = d0 g0 + d1 g1 + d2 g2
    y1 = d1 g0 + d2 g1 + d3 g2                      6 multiplications,

can be had with 4 (Winograd 1980; for convnets Lavin and Gray 2016):

    m0 = (d0 - d2) g0                 m1 = (d1 + d2) (g0 + g1 + g2) / 2
    m3 = (d1 - d3) g2                 m2 = (d2 - d1) (g0 - g1 + g2) / 2
    y0 = m0 + m1 + m2                 y1 = m1 - m2 - m3

The factors with g depend on the filter only and are computed once per step.
In matrices, y = A^T [(G g) * (B^T d)] with * elementwise and

    B^T = [[1, 0,-1, 0],       G = [[ 1,   0,   0 ],      A^T = [[1, 1, 1, 0],
           [0, 1, 1, 0],            [1/2, 1/2, 1/2],             [0, 1,-1,-1]]
           [0,-1, 1, 0],            [1/2,-1/2, 1/2],
           [0, 1, 0,-1]]            [ 0,   0,   1 ]]

Nested in both directions, a 2x2 block of outputs comes from a 4x4 tile d of the
(padded) input: Y = A^T [(G g G^T) * (B^T d B)] A, 16 multiplications instead of 36.
Tiles start every 2 pixels, so neighbouring tiles overlap by 2 rows or columns.

Over channels the elementwise product becomes a sum, and for each of the 16 points
(xi, nu) of the tile that sum is a MATRIX PRODUCT over the channels:

    U[xi,nu] = (G g G^T)[xi,nu]    for every (c, f)      (16, C, F)   weight transform
    V[xi,nu] = (B^T d B)[xi,nu]    for every (tile, c)   (16, T, C)   input transform
    M[xi,nu] = V[xi,nu] @ U[xi,nu]                        (16, T, F)   16 GEMMs
    y tile   = A^T M[:, :, tile, f] A                     (N, F, OH, OW) output transform

(V and M keep the channel last: it is the long, contiguous axis that the
transform kernels vectorise over, see kernels/numba_cpu/winograd.py.)

The GEMMs do 16*F*C*T multiply-adds where im2col's one GEMM does 9*F*C*4T
(4 outputs a tile): 2.25x less arithmetic, for the price of the transforms
(cheap additions, memory-bound) and products with a short inner size (C).

Backward is the same chain read backwards, each linear step replaced by its
adjoint (transpose), exactly as in im2col/col2im:

    dM = A dY A^T                  per tile (output transform's adjoint)   (16, T, F)
    dU = V^T @ dM                  16 GEMMs, summed over tiles             (16, C, F)
    dg = G^T dU G                  (weight transform's adjoint)            (F, C, 3, 3)
    dV = dM @ U^T                  16 GEMMs                                (16, T, C)
    dx = sum over tiles of B dV B^T, added back where each tile was read   (N, C, H, W)

so no second algorithm is needed for the gradients. Rounding: the transforms only
add, subtract and halve, so the results agree with the direct sum to float32
rounding (tests compare with im2col and PyTorch). When OH or OW is odd, the last
tiles read zeros past the padded input and their extra outputs are dropped.

Used by conv2d for 3x3 kernels at stride 1, dilation 1, groups 1 on the CPU, from
MIN_CHANNELS input channels on and for images of MIN_PIXELS pixels or more, when the
Numba kernels are there (`suits`); the transforms below are the NumPy
references of kernels/numba_cpu/winograd.py. docs/03_convolution_three_ways.md derives it.
"""
import numpy

from minigrad import backend
from minigrad.function import Function
from minigrad.ops.cpu_threads import chunks_for, one_blas_thread, run_blocks
from minigrad.ops.im2col import check_conv_shapes, conv_output_size, pair
from minigrad.ops.registry import find_kernel, register_available, scratch

B_T = numpy.array([[1, 0, -1, 0], [0, 1, 1, 0], [0, -1, 1, 0], [0, 1, 0, -1]], dtype=numpy.float64)
G = numpy.array([[1, 0, 0], [0.5, 0.5, 0.5], [0.5, -0.5, 0.5], [0, 0, 1]], dtype=numpy.float64)
A_T = numpy.array([[1, 1, 1, 0], [0, 1, -1, -1]], dtype=numpy.float64)
G_KRON = numpy.kron(G, G)        # (16, 9): G[xi, i] G[nu, j] at (4*xi + nu, 3*i + j), see weight_transform

# Images per chunk, as a bound on the bytes of one chunk's V (the transformed input) so that
# V and M ((16, T, F), as large again when F = C) stay in the core's L2 cache between the
# transforms and the GEMMs (see conv.py). Measured in round 4 by short scripts (not kept), fwd+bwd at
# batch 128, 1 thread / 2 threads, 1 MiB -> 512 KiB:
# 32 channels 16x16 18.2 -> 16.8 / 10.6 -> 10.3 ms, 64 channels 8x8 13.6 -> 11.4 / 14.6 -> 12.1 ms;
# 256 KiB was no faster at 1 thread and slower at 2 (13.3 ms for 32 channels).
CHUNK_BYTES = {"cpu": 1 << 19, "gpu": None}
# ... but at least this many tiles (the GEMMs' rows) per chunk, for wide layers where 512 KiB holds
# only a few: ResNet-18's 256 channels 8x8 at batch 32, fwd+bwd, 41.6 ms with 2 MiB chunks (128 tiles)
# against 55.9 ms with 512 KiB (32 tiles); 128 channels 16x16: 36.9 against 44.2 ms (a short script,
# not kept; bench_conv before and after, 256 then 128 channels: 66.6 -> 45.5 and 49.1 -> 43.9 ms,
# benchmarks/raw/round4/a_conv_t1_a.txt and b_conv_t1_c_resnet18.txt).
MIN_TILES = 128

# ... and only for images of at least this many pixels (H*W): on 4x4 images (ResNet-18's last stage,
# 512 channels, batch 32) im2col's one long product (K = 4608) was faster, 73 against 89 ms fwd+bwd
# (round 4, a short script not kept; im2col now takes 48-52 ms there:
# benchmarks/raw/round6/adhoc/later_changes_ab_t1.txt).
MIN_PIXELS = 64

# conv2d takes this path only from this many input channels on: the 16 GEMMs have C as their
# inner size, and with fewer channels they run too far below the BLAS's peak to pay for the
# transforms. Measured (round 4, a short script not kept) fwd+bwd, batch 128, 32x32, 16 filters,
# 1 thread, two runs each,
# Winograd / im2col: 3 channels 21.9-24.8 / 11.1-14.1 ms, 8 channels 21.5-25.8 / 20.2-29.6 ms,
# 16 channels 35.0-39.4 / 37.9-47.5 ms.
MIN_CHANNELS = 16

ENABLED = True     # False: every convolution takes the im2col path (for comparisons)


def suits(x, weight, stride, dilation, groups):
    """True when conv2d should use Winograd for arrays x and weight (see the module docstring)."""
    return (ENABLED and backend.device_of(x) == "cpu" and x.ndim == 4 and weight.ndim == 4
            and numpy.result_type(x, weight).kind == "f"               # G holds 1/2: floats only
            and tuple(weight.shape[2:]) == (3, 3) and tuple(stride) == (1, 1) and tuple(dilation) == (1, 1)
            and groups == 1 and weight.shape[1] == x.shape[1] >= MIN_CHANNELS
            and x.shape[2] * x.shape[3] >= MIN_PIXELS
            and find_kernel("winograd_input_transform", x) is not None)


def tile_counts(out_h, out_w):
    """(TH, TW): 2x2 output blocks along each axis, the last one cut short when the size is odd."""
    return (out_h + 1) // 2, (out_w + 1) // 2


# ------------------------------------------------------------------ the weight transform (once a step)
def weight_transform(weight):
    """U[xi, nu, c, f] = (G g[f, c] G^T)[xi, nu]: (F, C, 3, 3) -> (16, C, F).

    Written as one matrix product: (G g G^T)[xi, nu] = sum_ij G[xi, i] G[nu, j] g[i, j], and
    G[xi, i] G[nu, j] is the Kronecker product G (x) G, a (16, 9) matrix. (An einsum of the
    same sum took 0.5 ms for a 64x64 layer, this 0.02 ms, timed once in round 5, not kept.)
    """
    xp = backend.array_module(weight)
    filters, channels = weight.shape[:2]
    g_kron = xp.asarray(G_KRON, dtype=weight.dtype)                               # (16, 9)
    u = g_kron @ weight.reshape(filters * channels, 9).T                           # (16, 9) @ (9, F*C)
    return xp.ascontiguousarray(u.reshape(16, filters, channels).transpose(0, 2, 1))   # (16, F, C) -> (16, C, F)


def weight_transform_adjoint(du):
    """dg[f, c] = G^T dU[:, :, c, f] G, the adjoint: (16, C, F) -> (F, C, 3, 3)."""
    xp = backend.array_module(du)
    _, channels, filters = du.shape
    g_kron = xp.asarray(G_KRON, dtype=du.dtype)                                   # (16, 9)
    dg = du.transpose(2, 1, 0).reshape(filters * channels, 16) @ g_kron           # (F*C, 16) @ (16, 9)
    return dg.reshape(filters, channels, 3, 3)                                     # (F, C, 3, 3)


# ------------------------------------------------------------------ the tile transforms: NumPy references
def _tile_reads(x, padding, tiles):
    """The 4x4 reads of every tile: d[i][j] = x_padded[:, :, 2*th + i, 2*tw + j], each (N, C, TH, TW).

    x_padded has `padding` zeros on top/left and enough on the bottom/right for the last tiles.
    """
    xp = backend.array_module(x)
    (pad_h, pad_w), (tiles_h, tiles_w) = padding, tiles
    _, _, height, width = x.shape
    x_padded = xp.pad(x, ((0, 0), (0, 0), (pad_h, 2 * tiles_h + 2 - height - pad_h),
                          (pad_w, 2 * tiles_w + 2 - width - pad_w)))                # (N, C, 2TH+2, 2TW+2)
    return xp.stack([xp.stack([x_padded[:, :, i:i + 2 * tiles_h:2, j:j + 2 * tiles_w:2] for j in range(4)])
                     for i in range(4)])                                           # (4, 4, N, C, TH, TW)


def input_transform_numpy(x, padding, out_h, out_w):
    """V[xi, nu, (n, th, tw), c] = (B^T d B)[xi, nu] for the tile d at (th, tw): -> (16, T, C)."""
    xp = backend.array_module(x)
    n, c, _, _ = x.shape
    tiles = tile_counts(out_h, out_w)
    d = _tile_reads(x, padding, tiles)                                              # (4, 4, N, C, TH, TW)
    b_t = xp.asarray(B_T, dtype=x.dtype)
    v = xp.einsum("ai,ijncyx,bj->abnyxc", b_t, d, b_t)                              # (4, 4, N, TH, TW, C)
    return xp.ascontiguousarray(v.reshape(16, n * tiles[0] * tiles[1], c))        # (16, T, C)


def output_transform_numpy(m, out):
    """out[n, f] (N, F, OH, OW) <- A^T M A tile by tile, from M (16, T, F). Returns out."""
    xp = backend.array_module(m)
    n, filters, out_h, out_w = out.shape
    tiles_h, tiles_w = tile_counts(out_h, out_w)
    a_t = xp.asarray(A_T, dtype=m.dtype)
    blocks = xp.einsum("ai,ijnyxf,bj->nfyaxb", a_t, m.reshape(4, 4, n, tiles_h, tiles_w, filters), a_t)
    # blocks: (N, F, TH, 2, TW, 2), each tile's 2x2 outputs; row 2*th + a, column 2*tw + b
    out[...] = blocks.reshape(n, filters, 2 * tiles_h, 2 * tiles_w)[:, :, :out_h, :out_w]  # drop the odd edge
    return out


def output_transform_adjoint_numpy(dy):
    """dM[xi, nu, (n, th, tw), f] = (A dY A^T)[xi, nu] for the 2x2 block of dy at (th, tw): -> (16, T, F)."""
    xp = backend.array_module(dy)
    n, filters, out_h, out_w = dy.shape
    tiles_h, tiles_w = tile_counts(out_h, out_w)
    dy_even = xp.pad(dy, ((0, 0), (0, 0), (0, 2 * tiles_h - out_h), (0, 2 * tiles_w - out_w)))
    blocks = dy_even.reshape(n, filters, tiles_h, 2, tiles_w, 2)                   # (N, F, TH, 2, TW, 2)
    a_t = xp.asarray(A_T, dtype=dy.dtype)
    dm = xp.einsum("ia,nfyixj,jb->abnyxf", a_t, blocks, a_t)                        # (4, 4, N, TH, TW, F)
    return xp.ascontiguousarray(dm.reshape(16, n * tiles_h * tiles_w, filters))   # (16, T, F)


def input_transform_adjoint_numpy(dv, padding, out):
    """out (N, C, H, W) <- every tile's B dV B^T added back where the tile was read. Returns out.

    The adjoint of input_transform: tiles overlap, so a pixel read by several tiles
    gets the sum of their contributions, and what lands on the padding is dropped.
    """
    xp = backend.array_module(dv)
    n, c, height, width = out.shape
    (pad_h, pad_w) = padding
    out_h, out_w = height + 2 * pad_h - 2, width + 2 * pad_w - 2
    tiles_h, tiles_w = tile_counts(out_h, out_w)
    b_t = xp.asarray(B_T, dtype=dv.dtype)
    dv_tiles = dv.reshape(4, 4, n, tiles_h, tiles_w, c)                             # (4, 4, N, TH, TW, C)
    dd = xp.einsum("ai,abnyxc,bj->ijncyx", b_t, dv_tiles, b_t)                       # (4, 4, N, C, TH, TW)
    dx_padded = xp.zeros((n, c, 2 * tiles_h + 2, 2 * tiles_w + 2), dtype=dv.dtype)
    for i in range(4):
        for j in range(4):         # within one (i, j) no pixel is hit twice, so += on the slice is exact
            dx_padded[:, :, i:i + 2 * tiles_h:2, j:j + 2 * tiles_w:2] += dd[i, j]
    out[...] = dx_padded[:, :, pad_h:pad_h + height, pad_w:pad_w + width]
    return out


_TRANSFORMS = (("winograd_input_transform", input_transform_numpy),
               ("winograd_output_transform", output_transform_numpy),
               ("winograd_output_transform_adjoint", output_transform_adjoint_numpy),
               ("winograd_input_transform_adjoint", input_transform_adjoint_numpy))


def transforms_for(array):
    """(input, output, output adjoint, input adjoint) transforms for the device of `array`: the
    kernels registered in minigrad/ops/registry.py, else the NumPy references above. Looked up
    once per convolution, not once per chunk."""
    return tuple(find_kernel(name, array, reference) for name, reference in _TRANSFORMS)


# ------------------------------------------------------------------ the op
class Conv2dWinograd(Function):
    """y = conv2d(x, w, padding) + b for 3x3 w at stride 1, by F(2x2, 3x3) (module docstring)."""

    fresh_gradients = (0, 1, 2)      # dx, dW and db are new arrays (see Function)

    def __init__(self, padding=0):
        self.padding = pair(padding, "padding", "conv2d")
        if min(self.padding) < 0:
            raise ValueError(f"conv2d: need padding >= 0, got padding={self.padding}")

    def _chunks(self, x):
        tiles_h, tiles_w = tile_counts(*self.out_size)
        bytes_per_tile = 16 * x.shape[1] * x.dtype.itemsize                          # one tile's V
        budget = CHUNK_BYTES.get(backend.device_of(x))
        if budget is not None:          # wide layers: enough tiles for the GEMMs, even past the cache
            budget = max(budget, MIN_TILES * bytes_per_tile)
        bytes_per_image = bytes_per_tile * tiles_h * tiles_w
        return chunks_for(x.shape[0], bytes_per_image, budget, backend.device_of(x))

    def forward(self, x, weight, bias=None):
        check_conv_shapes(x, weight, bias, self.padding, (1, 1), 1)
        if backend.array_module(x).result_type(x, weight).kind != "f":
            raise TypeError(f"conv2d (Winograd F(2x2, 3x3)): needs floating-point input and weight, got "
                            f"{x.dtype} and {weight.dtype} (the transforms multiply by 1/2)")
        if tuple(weight.shape[2:]) != (3, 3):
            raise ValueError(f"conv2d (Winograd F(2x2, 3x3)): needs a 3x3 kernel, got weight shape {weight.shape}")
        xp = backend.array_module(x)
        n, c, height, width = x.shape
        filters = weight.shape[0]
        self.out_size = (conv_output_size(height, 3, 1, self.padding[0], 1),
                         conv_output_size(width, 3, 1, self.padding[1], 1))
        dtype = xp.result_type(x, weight)
        x = x.astype(dtype, copy=False)
        with one_blas_thread(backend.device_of(x)):      # a small product: no spinning BLAS worker
            u = weight_transform(weight.astype(dtype, copy=False))                   # (16, C, F)
        y = scratch((n, filters) + self.out_size, dtype, x)                         # (N, F, OH, OW)
        input_transform, output_transform, _, _ = transforms_for(x)

        def forward_block(block):
            for images in block:
                v = input_transform(x[images], self.padding, *self.out_size)          # (16, T, C)
                m = scratch((16, v.shape[1], filters), dtype, x)                     # (16, T, F)
                xp.matmul(v, u, out=m)          # 16 GEMMs in one call: (16, T, C) @ (16, C, F) -> (16, T, F)
                output_transform(m, y[images])                                       # (n, F, OH, OW)

        run_blocks(forward_block, self._chunks(x), backend.device_of(x))
        if bias is not None:
            y += bias.reshape(1, filters, 1, 1)
        self.saved = (x, u, bias is not None)
        return y

    def backward(self, dy):
        x, u, has_bias = self.saved
        xp = backend.array_module(dy)
        need_dx, need_dw = self.needs_input_grad[0], self.needs_input_grad[1]
        dx = scratch(x.shape, dy.dtype, dy) if need_dx else None
        u_t = xp.ascontiguousarray(u.transpose(0, 2, 1)) if need_dx else None       # (16, F, C), for dx
        input_transform, _, output_transform_adjoint, input_transform_adjoint = transforms_for(dy)

        def backward_block(block):
            du = xp.zeros(u.shape, dtype=dy.dtype) if need_dw else None              # (16, C, F), this block's
            for images in block:
                dm = output_transform_adjoint(dy[images])                            # (16, T, F)
                if need_dw:
                    v = input_transform(x[images], self.padding, *self.out_size)      # (16, T, C), rebuilt
                    # A stacked matmul with a transposed operand, which conv.py's _gemm avoids for
                    # im2col's shapes: on these (16, 32, 256) @ (16, 256, 32) products, with torch imported
                    # and 2 BLAS threads, it took 45 us (median) against 63 us for 16 separate 2-D
                    # products (benchmarks/raw/round4/adhoc/stacked_transposed_matmul.txt).
                    du += xp.matmul(v.transpose(0, 2, 1), dm)    # (16, C, T) @ (16, T, F) -> (16, C, F)
                    del v                                        # its buffer can serve dv below
                if need_dx:
                    dv = scratch((16, dm.shape[1], x.shape[1]), dy.dtype, dy)        # (16, T, C)
                    xp.matmul(dm, u_t, out=dv)                   # (16, T, F) @ (16, F, C) -> (16, T, C)
                    input_transform_adjoint(dv, self.padding, dx[images])             # (n, C, H, W)
            return du

        du_parts = run_blocks(backward_block, self._chunks(x), backend.device_of(dy))
        dw = None
        if need_dw:
            du = sum(du_parts[1:], du_parts[0])                                      # in block order
            with one_blas_thread(backend.device_of(dy)):
                dw = weight_transform_adjoint(du)                                    # (F, C, 3, 3)
        db = dy.sum(axis=(0, 2, 3)) if has_bias and self.needs_input_grad[2] else None
        return dx, dw, db


# ------------------------------------------------------------------ kernels (Numba, CPU)
register_available(dict(_TRANSFORMS))
