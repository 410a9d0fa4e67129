"""Datasets: indexable collections of examples, and ways to split them.

A dataset answers two questions: how many examples (``len(ds)``) and what is
example ``i`` (``ds[i]``, usually an ``(image, label)`` pair). That is all a
generic dataset needs. Datasets that keep everything in arrays (MNIST,
CIFAR-10, TensorDataset) also answer ``ds.get_batch(indices)`` with one NumPy
fancy-indexing call per array::

    images[indices]        # (B, C, H, W) gathered in C, no Python loop

which is what makes the DataLoader fast. A dataset without that fast path still
works: ``fetch_batch`` falls back to ``ds[i]`` for each index and stacks.

Splits are views, not copies: ``Subset(ds, indices)`` keeps the parent and an
index array, and its ``get_batch`` maps the indices and asks the parent.
"""
import inspect

import numpy

from minigrad.data.errors import DatasetFormatError
from minigrad.data.transforms import apply_to_batch


def _to_numpy(value):
    """A NumPy array from an array, a minigrad Tensor, a list or a number."""
    if isinstance(value, numpy.ndarray):
        return value
    if hasattr(value, "numpy") and callable(value.numpy):  # minigrad / torch tensors
        return numpy.asarray(value.detach().numpy())
    return numpy.asarray(value)


def _plain(value):
    """A number or array from a transform's output (which may be a Tensor)."""
    return _to_numpy(value) if hasattr(value, "detach") else value


class Dataset:
    """Base class: subclasses define __len__ and __getitem__(i)."""

    def __len__(self):
        raise NotImplementedError(f"{type(self).__name__} must define __len__")

    def __getitem__(self, index):
        raise NotImplementedError(f"{type(self).__name__} must define __getitem__")

    def get_batch(self, indices, rng=None):
        """The examples at `indices` as a tuple of stacked arrays (slow generic path: ds[i] for each)."""
        return stack_examples([self[int(i)] for i in indices])


def stack_examples(examples):
    """[(x0, y0), (x1, y1), ...] -> (stack([x0, x1, ...]), stack([y0, y1, ...]))."""
    if len(examples) == 0:
        raise ValueError("cannot build a batch from zero examples")
    if not isinstance(examples[0], (tuple, list)):  # a dataset of bare arrays
        return (numpy.stack([_to_numpy(x) for x in examples]),)
    fields = zip(*examples)                                 # one tuple per field
    return tuple(numpy.stack([_to_numpy(x) for x in field]) for field in fields)


def _takes_rng(get_batch):
    """Whether a get_batch method accepts rng= (a user's own may be get_batch(indices) only)."""
    try:
        parameters = inspect.signature(get_batch).parameters.values()
    except (TypeError, ValueError):
        return False
    return any(p.name == "rng" or p.kind is p.VAR_KEYWORD for p in parameters)


def fetch_batch(dataset, indices, rng=None):
    """A batch as a tuple of arrays: the fast get_batch path when the dataset has one.

    `rng` drives the random transforms of a dataset built with transform= (the DataLoader passes
    one per batch, so a run is reproducible).
    """
    indices = numpy.asarray(indices, dtype=numpy.int64)
    if hasattr(dataset, "get_batch"):
        if _takes_rng(dataset.get_batch):
            return tuple(dataset.get_batch(indices, rng=rng))
        return tuple(dataset.get_batch(indices))
    return stack_examples([dataset[int(i)] for i in indices])


class TensorDataset(Dataset):
    """Examples made of rows of arrays: example i is (arrays[0][i], arrays[1][i], ...).

    >>> ds = TensorDataset(images, labels)     # images (N, C, H, W), labels (N,)
    >>> x, y = ds.get_batch([3, 1, 4])          # (3, C, H, W), (3,)

    Arrays may be NumPy arrays, minigrad Tensors or nested lists; they are kept
    as NumPy arrays (the loader moves each batch to the device, not the whole set).
    """

    def __init__(self, *arrays):
        if len(arrays) == 0:
            raise ValueError("TensorDataset needs at least one array")
        self.arrays = tuple(_to_numpy(a) for a in arrays)
        lengths = [len(a) if a.ndim > 0 else None for a in self.arrays]
        if None in lengths or len(set(lengths)) != 1:
            shapes = ", ".join(str(a.shape) for a in self.arrays)
            raise ValueError(
                f"TensorDataset arrays must share their first dimension, got shapes {shapes}"
            )

    def __len__(self):
        return len(self.arrays[0])

    def __getitem__(self, index):
        return tuple(array[index] for array in self.arrays)

    def get_batch(self, indices, rng=None):
        indices = numpy.asarray(indices, dtype=numpy.int64)
        return tuple(array[indices] for array in self.arrays)  # fancy indexing: one copy each


class ArrayDataset(TensorDataset):
    """An image data set held as two arrays, `data` (N, C, H, W) and `targets` (N,).

    The base of MNIST and CIFAR10; `data` and `targets` name the two arrays.
    `transform` (of an image) and `target_transform` (of a label) work as in
    torchvision: ds[i] is (transform(data[i]), target_transform(targets[i])).
    A batch (get_batch, the DataLoader's path) runs a minigrad transform once
    on the whole batch, with the loader's rng, and any other function image
    by image.
    """

    def __init__(self, data, targets, classes=None, transform=None, target_transform=None):
        if len(data) != len(targets):
            raise DatasetFormatError(
                f"{type(self).__name__}: {len(data)} images but {len(targets)} labels"
            )
        for name, function in (("transform", transform), ("target_transform", target_transform)):
            if function is not None and not callable(function):
                raise TypeError(f"{type(self).__name__}: {name} must be callable (a transform or a "
                                f"function), got {type(function).__name__}")
        super().__init__(data, targets)
        self.classes = list(classes) if classes is not None else None
        self.transform, self.target_transform = transform, target_transform

    @property
    def class_to_idx(self):
        return {name: i for i, name in enumerate(self.classes or [])}

    @property
    def data(self):
        return self.arrays[0]

    @property
    def targets(self):
        return self.arrays[1]

    def __getitem__(self, index):
        image, target = self.arrays[0][index], int(self.arrays[1][index])
        if self.transform is not None:
            image = self.transform(image)
        if self.target_transform is not None:
            target = self.target_transform(target)
        return image, target

    def get_batch(self, indices, rng=None):
        images, targets = super().get_batch(indices)
        if self.transform is not None:
            images = apply_to_batch(self.transform, images, rng)
        if self.target_transform is not None:
            targets = numpy.asarray([_plain(self.target_transform(int(t))) for t in targets])
        return images, targets

    def __repr__(self):
        return (f"{type(self).__name__}(n={len(self)}, image shape={tuple(self.data.shape[1:])}, "
                f"dtype={self.data.dtype})")


class Subset(Dataset):
    """The examples of `dataset` at `indices`, in that order (a view, no copy of the data)."""

    def __init__(self, dataset, indices):
        self.dataset = dataset
        self.indices = numpy.asarray(indices, dtype=numpy.int64).reshape(-1)
        n = len(dataset)
        if self.indices.size and (self.indices.min() < -n or self.indices.max() >= n):
            raise IndexError(f"Subset indices must lie in [0, {n}) for a dataset of length {n}")

    def __len__(self):
        return len(self.indices)

    def __getitem__(self, index):
        return self.dataset[int(self.indices[index])]

    def get_batch(self, indices, rng=None):
        return fetch_batch(self.dataset, self.indices[numpy.asarray(indices, dtype=numpy.int64)], rng=rng)


def _split_lengths(total, lengths):
    """Integer lengths summing to `total`; fractions are floored, leftovers go one by one."""
    if all(isinstance(x, (int, numpy.integer)) for x in lengths):
        lengths = [int(x) for x in lengths]
        if any(x < 0 for x in lengths) or sum(lengths) != total:
            raise ValueError(f"split lengths {lengths} must be >= 0 and sum to the dataset length {total}")
        return lengths
    fractions = [float(x) for x in lengths]
    if any(f < 0 for f in fractions) or abs(sum(fractions) - 1.0) > 1e-6:
        raise ValueError(f"split fractions {fractions} must be >= 0 and sum to 1")
    counts = [int(numpy.floor(total * f)) for f in fractions]
    for i in range(total - sum(counts)):  # round-robin the remainder
        counts[i % len(counts)] += 1
    return counts


def random_split(dataset, lengths, seed=None, generator=None):
    """Split `dataset` into non-overlapping random Subsets of the given lengths.

    `lengths` are counts summing to len(dataset), or fractions summing to 1.
    The permutation comes from `generator` (a numpy.random.Generator) or from
    numpy.random.default_rng(seed), so the same seed gives the same split.
    """
    counts = _split_lengths(len(dataset), lengths)
    rng = generator if generator is not None else numpy.random.default_rng(seed)
    order = rng.permutation(len(dataset))
    ends = numpy.cumsum(counts)
    return [Subset(dataset, order[end - count:end]) for count, end in zip(counts, ends)]


def train_val_split(dataset, val_size):
    """(train, val): a FIXED split where validation is the LAST `val_size` examples.

    No randomness, so every run and every script holds out the same images
    (e.g. the last 5,000 CIFAR-10 training images). `val_size` is a count or
    a fraction in (0, 1).
    """
    n = len(dataset)
    if isinstance(val_size, float) and 0 < val_size < 1:
        val_size = int(round(n * val_size))
    if not isinstance(val_size, (int, numpy.integer)) or not 0 <= val_size <= n:
        raise ValueError(f"val_size must be a count in [0, {n}] or a fraction in (0, 1), got {val_size!r}")
    cut = n - int(val_size)
    return Subset(dataset, numpy.arange(cut)), Subset(dataset, numpy.arange(cut, n))
