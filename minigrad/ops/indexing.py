"""Indexing: x[index] with basic (ints, slices, None, ...) and advanced (integer arrays, boolean masks) indices.

Forward picks elements; backward sends each picked element's gradient back to
where it came from. With advanced indexing one element can be picked several
times (x[[0, 0, 1]]), and then its gradient is the SUM of those picks: a plain
`dx[index] = dy` would keep only the last one, so we scatter-ADD instead.
"""
from minigrad import backend
from minigrad.function import Function


def _is_advanced(index):
    parts = index if isinstance(index, tuple) else (index,)
    return any(hasattr(p, "shape") or isinstance(p, (list, bool)) for p in parts)


class GetItem(Function):
    """y = x[index];  dx = zeros like x, with dy scatter-added at `index`."""

    def __init__(self, index):
        self.index = index

    def forward(self, x):
        self.saved = (x.shape, x.dtype)
        try:
            return x[self.index]
        except IndexError as error:
            raise IndexError(
                f"getitem: index {self.index!r} is invalid for a tensor of shape {tuple(x.shape)}: {error}"
            ) from None

    def backward(self, dy):
        shape, dtype = self.saved
        xp = backend.array_module(dy)
        dx = xp.zeros(shape, dtype=dy.dtype)
        if _is_advanced(self.index):
            backend.scatter_add(dx, self.index, dy)
        else:
            dx[self.index] = dy  # basic indexing never picks an element twice
        return dx


def _raw_index(index, xp):
    """Replace Tensors and lists inside an index by raw arrays of the right device."""
    from minigrad.tensor import Tensor

    def convert(part):
        if isinstance(part, Tensor):
            return part.array
        if isinstance(part, list):
            return xp.asarray(part)
        return part

    if isinstance(index, tuple):
        return tuple(convert(p) for p in index)
    return convert(index)


def getitem(x, index):
    return GetItem(_raw_index(index, backend.array_module(x.array)))(x)
