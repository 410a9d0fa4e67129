"""Shape ops: reshape/view, transpose, permute, expand, squeeze, unsqueeze, pad, cat, stack;
plus the bookkeeping ops clone, cast (dtype) and to-device.

None of these change values, they only move them, so each backward moves dy
back the opposite way: reshape back, permute by the inverse permutation, sum
what expand copied, slice away what pad added, split what cat joined.
"""
import numpy

from minigrad import backend
from minigrad.function import Function
from minigrad.ops.elementwise import unbroadcast


class Reshape(Function):
    """y = x viewed with a new shape (same elements, same order);  dx = dy reshaped back."""

    def __init__(self, shape):
        self.shape = shape

    def forward(self, x):
        self.saved = (x.shape,)
        try:
            return x.reshape(self.shape)
        except ValueError:
            raise ValueError(
                f"reshape: cannot view a tensor of shape {tuple(x.shape)} ({x.size} elements) "
                f"as shape {tuple(self.shape)}"
            ) from None

    def backward(self, dy):
        (shape,) = self.saved
        return dy.reshape(shape)


class Permute(Function):
    """y = x with its axes reordered: y.shape[i] = x.shape[order[i]];  dx = dy permuted by the inverse."""

    def __init__(self, order):
        self.order = tuple(order)

    def forward(self, x):
        if sorted(a % max(x.ndim, 1) for a in self.order) != list(range(x.ndim)):
            raise ValueError(f"permute: {self.order} is not a permutation of the {x.ndim} axes of {tuple(x.shape)}")
        return x.transpose(self.order)

    def backward(self, dy):
        inverse = numpy.argsort([a % dy.ndim for a in self.order])
        return dy.transpose(tuple(inverse))


class Expand(Function):
    """y = x broadcast to `shape` (copies along size-1 axes);  dx = dy summed over the copies."""

    def __init__(self, shape):
        self.shape = tuple(shape)

    def forward(self, x):
        xp = backend.array_module(x)
        shape = tuple(x.shape[i - len(self.shape) + x.ndim] if s == -1 else s for i, s in enumerate(self.shape))
        self.saved = (x.shape,)
        try:
            return xp.broadcast_to(x, shape)
        except ValueError:
            raise ValueError(f"expand: cannot broadcast shape {tuple(x.shape)} to {shape}") from None

    def backward(self, dy):
        (shape,) = self.saved
        return unbroadcast(dy, shape)


class Pad(Function):
    """Constant padding. `pad` lists (before, after) pairs starting from the LAST axis, as in
    torch.nn.functional.pad: (left, right, top, bottom, ...).  dx = dy with the padding sliced off."""

    def __init__(self, pad, value=0.0):
        if len(pad) % 2:
            raise ValueError(f"pad: needs an even number of values (before, after pairs), got {pad}")
        self.pad, self.value = tuple(pad), value

    def forward(self, x):
        pairs = [(0, 0)] * x.ndim
        for i in range(len(self.pad) // 2):
            pairs[x.ndim - 1 - i] = (self.pad[2 * i], self.pad[2 * i + 1])
        if any(b < 0 or a < 0 for b, a in pairs):
            raise ValueError(f"pad: negative padding {self.pad} is not supported")
        self.slices = tuple(slice(b, b + n) for (b, _), n in zip(pairs, x.shape))
        return backend.array_module(x).pad(x, pairs, mode="constant", constant_values=self.value)

    def backward(self, dy):
        return dy[self.slices]


class Cat(Function):
    """y = inputs joined along `axis`;  each dx_i = the slice of dy that came from input i."""

    def __init__(self, axis=0):
        self.axis = axis

    def forward(self, *xs):
        if not xs:
            raise ValueError("cat: needs at least one tensor")
        ndim = xs[0].ndim
        axis = self.axis % max(ndim, 1)
        for i, x in enumerate(xs):
            other = [s for a, s in enumerate(x.shape) if a != axis]
            first = [s for a, s in enumerate(xs[0].shape) if a != axis]
            if x.ndim != ndim or other != first:
                raise ValueError(
                    f"cat: tensor {i} has shape {tuple(x.shape)} but tensor 0 has shape "
                    f"{tuple(xs[0].shape)}; all sizes except along dim {self.axis} must match"
                )
        self.saved = ([x.shape[axis] for x in xs], axis)
        return backend.array_module(xs[0]).concatenate(xs, axis=axis)

    def backward(self, dy):
        sizes, axis = self.saved
        bounds = numpy.cumsum(sizes)[:-1]
        return tuple(backend.array_module(dy).split(dy, bounds, axis=axis))


class Clone(Function):
    """y = a copy of x;  dx = dy."""

    def forward(self, x):
        return x.copy()

    def backward(self, dy):
        return dy


class Cast(Function):
    """y = x converted to `dtype`;  dx = dy converted back to x's dtype."""

    def __init__(self, dtype):
        self.dtype = numpy.dtype(dtype)

    def forward(self, x):
        self.saved = (x.dtype,)
        return x.astype(self.dtype)

    def backward(self, dy):
        (dtype,) = self.saved
        return dy.astype(dtype)


class ToDevice(Function):
    """y = x copied to another device;  dx = dy copied back to x's device."""

    def __init__(self, device):
        self.device = device

    def forward(self, x):
        self.saved = (backend.device_of(x),)
        return backend.to_device(x, self.device)

    def backward(self, dy):
        (source,) = self.saved
        return backend.to_device(dy, source)

    def __call__(self, x):
        out = super().__call__(x)
        out.device = self.device
        return out


# ---------------------------------------------------------------- user-facing wrappers
def _shape_args(shape):
    """Accept reshape(2, 3) and reshape((2, 3)) alike."""
    return tuple(shape[0]) if len(shape) == 1 and isinstance(shape[0], (tuple, list)) else tuple(shape)


def reshape(x, *shape):
    return Reshape(_shape_args(shape))(x)


def permute(x, *order):
    return Permute(_shape_args(order))(x)


def transpose(x, dim0=-2, dim1=-1):
    """Swap two axes (default: the last two)."""
    order = list(range(x.ndim))
    order[dim0], order[dim1] = order[dim1], order[dim0]
    return Permute(order)(x)


def expand(x, *shape):
    return Expand(_shape_args(shape))(x)


broadcast_to = expand


def flatten(x, start_dim=0, end_dim=-1):
    """Merge axes start_dim..end_dim into one."""
    if x.ndim == 0:
        return reshape(x, 1)
    start, end = start_dim % x.ndim, end_dim % x.ndim
    merged = 1
    for s in x.shape[start:end + 1]:
        merged *= s
    return reshape(x, x.shape[:start] + (merged,) + x.shape[end + 1:])


def squeeze(x, dim=None):
    """Remove size-1 axes (all of them, or only `dim` if it has size 1, like PyTorch)."""
    if dim is None:
        shape = tuple(s for s in x.shape if s != 1)
    else:
        dims = {d % max(x.ndim, 1) for d in ((dim,) if isinstance(dim, int) else dim)}
        shape = tuple(s for a, s in enumerate(x.shape) if not (a in dims and s == 1))
    return reshape(x, shape)


def unsqueeze(x, dim):
    """Insert a size-1 axis at position `dim` (negative counts from the end of the result)."""
    dim = dim % (x.ndim + 1)
    return reshape(x, x.shape[:dim] + (1,) + x.shape[dim:])


def pad(x, pad, mode="constant", value=0.0):
    if mode != "constant":
        raise NotImplementedError(f"pad: mode {mode!r} is not implemented; only 'constant'")
    return Pad(pad, value)(x)


def cat(tensors, dim=0, *, axis=None):
    """Join tensors along the existing axis `dim` (`axis=`, NumPy's name, is accepted too, as by PyTorch)."""
    return Cat(dim if axis is None else axis)(*tensors)


concatenate = cat


def stack(tensors, dim=0, *, axis=None):
    """Join tensors of equal shape along a new axis `dim` (or `axis=`, NumPy's name, as PyTorch accepts)."""
    dim = dim if axis is None else axis
    tensors = list(tensors)
    if not tensors:
        raise ValueError("stack: needs at least one tensor")
    for i, t in enumerate(tensors):
        if t.shape != tensors[0].shape:
            raise ValueError(f"stack: tensor {i} has shape {t.shape} but tensor 0 has shape {tensors[0].shape}")
    return cat([unsqueeze(t, dim) for t in tensors], dim=dim % (tensors[0].ndim + 1))


def split(x, split_size_or_sections, dim=0):
    """Split into pieces of `split_size` along dim (the last may be smaller), or of the listed sizes."""
    length = x.shape[dim]
    if isinstance(split_size_or_sections, int):
        if split_size_or_sections <= 0:
            raise ValueError(f"split: split_size must be positive, got {split_size_or_sections}")
        sizes = [split_size_or_sections] * (length // split_size_or_sections)
        if length % split_size_or_sections:
            sizes.append(length % split_size_or_sections)
    else:
        sizes = list(split_size_or_sections)
        if sum(sizes) != length:
            raise ValueError(f"split: sizes {sizes} add up to {sum(sizes)}, but dim {dim} has size {length}")
    pieces, start = [], 0
    index_prefix = (slice(None),) * (dim % x.ndim)
    for size in sizes:
        pieces.append(x[index_prefix + (slice(start, start + size),)])
        start += size
    return tuple(pieces)


def chunk(x, chunks, dim=0):
    """Split into `chunks` pieces of size ceil(length / chunks) (the last may be smaller)."""
    length = x.shape[dim]
    return split(x, -(-length // chunks), dim)
