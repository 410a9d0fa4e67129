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

The transforms below are the NumPy references of kernels/numba_cpu/winograd.py, and
docs/03_convolution_three_ways.md derives the algorithm. conv2d itself runs im2col;
the fast layer's Conv2d chooses this algorithm for the 3x3, stride-1 layers it suits
(minigrad/fast/winograd.py, chapter 10), in chunks of the batch, with the same results.
"""
import numpy

from minigrad import backend
from minigrad.function import Function
from minigrad.kernels.geometry import check_conv, output_size, pair
from minigrad.ops.registry import find_kernel

B_T = numpy.array([[1, 0, -1, 0], [0, 1, 1, 0], [0, -1, 1, 0], [0, 1, 0, -1]], dtype=numpy.float64)
G = numpy.array([[1, 0, 0], [0.5, 0.5, 0.5], [0.5, -0.5, 0.5], [0, 0, 1]], dtype=numpy.float64)
A_T = numpy.array([[1, 1, 1, 0], [0, 1, -1, -1]], dtype=numpy.float64)
G_KRON = numpy.kron(G, G)        # (16, 9): G[xi, i] G[nu, j] at (4*xi + nu, 3*i + j), see weight_transform

def tile_counts(out_h, out_w):
    """(TH, TW): 2x2 output blocks along each axis, the last one cut short when the size is odd."""
    return (out_h + 1) // 2, (out_w + 1) // 2


# ------------------------------------------------------------------ the weight transform (once a step)
def weight_transform(weight):
    """U[xi, nu, c, f] = (G g[f, c] G^T)[xi, nu]: (F, C, 3, 3) -> (16, C, F).

    Written as one matrix product: (G g G^T)[xi, nu] = sum_ij G[xi, i] G[nu, j] g[i, j], and
    G[xi, i] G[nu, j] is the Kronecker product G (x) G, a (16, 9) matrix.
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


TRANSFORMS = (("winograd_input_transform", input_transform_numpy),
               ("winograd_output_transform", output_transform_numpy),
               ("winograd_output_transform_adjoint", output_transform_adjoint_numpy),
               ("winograd_input_transform_adjoint", input_transform_adjoint_numpy))


def transforms_for(array):
    """(input, output, output adjoint, input adjoint) transforms for the device of `array`: the
    kernels registered in minigrad/ops/registry.py, else the NumPy references above."""
    return tuple(find_kernel(name, array, reference) for name, reference in TRANSFORMS)


# ------------------------------------------------------------------ the op
class Conv2dWinograd(Function):
    """y = conv2d(x, w, padding) + b for 3x3 w at stride 1, by F(2x2, 3x3) (module docstring)."""

    fresh_gradients = (0, 1, 2)      # dx, dW and db are new arrays (see Function)

    def __init__(self, padding=0):
        self.padding = pair(padding, "conv2d", "padding")
        if min(self.padding) < 0:
            raise ValueError(f"conv2d: need padding >= 0, got padding={self.padding}")

    def check(self, x, weight, bias):
        """Shapes and dtypes; the output size (OH, OW)."""
        check_conv("conv2d", x.shape, weight.shape, None if bias is None else bias.shape, self.padding, (1, 1), 1)
        if backend.array_module(x).result_type(x, weight).kind != "f":
            raise TypeError(f"conv2d (Winograd F(2x2, 3x3)): needs floating-point input and weight, got "
                            f"{x.dtype} and {weight.dtype} (the transforms multiply by 1/2)")
        if tuple(weight.shape[2:]) != (3, 3):
            raise ValueError(f"conv2d (Winograd F(2x2, 3x3)): needs a 3x3 kernel, got weight shape {weight.shape}")
        return (output_size(x.shape[2], 3, 1, self.padding[0], 1), output_size(x.shape[3], 3, 1, self.padding[1], 1))

    def forward(self, x, weight, bias=None):
        self.out_size = self.check(x, weight, bias)
        xp = backend.array_module(x)
        dtype = xp.result_type(x, weight)
        n, filters = x.shape[0], weight.shape[0]
        input_transform, output_transform, _, _ = transforms_for(x)
        u = weight_transform(weight.astype(dtype, copy=False))                       # (16, C, F)
        v = input_transform(x.astype(dtype, copy=False), self.padding, *self.out_size)  # (16, T, C)
        m = v @ u                                  # 16 GEMMs: (16, T, C) @ (16, C, F) -> (16, T, F)
        y = output_transform(m, xp.empty((n, filters) + self.out_size, dtype))       # (N, F, OH, OW)
        if bias is not None:
            y = y + bias.reshape(1, filters, 1, 1)
        self.saved = (x.shape, v, u, bias is not None)
        return y

    def backward(self, dy):
        x_shape, v, u, has_bias = self.saved
        xp = backend.array_module(dy)
        _, _, output_transform_adjoint, input_transform_adjoint = transforms_for(dy)
        dm = output_transform_adjoint(dy)                                            # (16, T, F)
        dw = weight_transform_adjoint(v.transpose(0, 2, 1) @ dm)   # (16, C, T) @ (16, T, F) -> (F, C, 3, 3)
        dv = dm @ u.transpose(0, 2, 1)                             # (16, T, F) @ (16, F, C) -> (16, T, C)
        dx = input_transform_adjoint(dv, self.padding, xp.empty(x_shape, dy.dtype))  # (N, C, H, W)
        db = dy.sum(axis=(0, 2, 3)) if has_bias else None                            # (F,)
        return dx, dw, db


def conv2d_winograd(x, weight, bias=None, padding=0):
    """conv2d for a 3x3 weight at stride 1 by Winograd's F(2x2, 3x3): the same numbers to float rounding."""
    return Conv2dWinograd(padding)(x, weight, bias)
