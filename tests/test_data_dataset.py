"""Dataset, TensorDataset, Subset, random_split and the fixed train_val_split."""
import numpy
import pytest

import minigrad
from minigrad.data import Dataset, Subset, TensorDataset, fetch_batch, random_split, train_val_split


class _ListDataset(Dataset):
    """A generic dataset with no fast path: only __len__ and __getitem__."""

    def __init__(self, n):
        self.n = n

    def __len__(self):
        return self.n

    def __getitem__(self, i):
        return numpy.full((1, 2, 2), i, dtype=numpy.uint8), i % 3


def _images_labels(n=10):
    images = numpy.arange(n * 4, dtype=numpy.uint8).reshape(n, 1, 2, 2)
    return images, numpy.arange(n) % 3


def test_tensor_dataset_get_batch_gathers_rows_in_order():
    images, labels = _images_labels()
    x, y = TensorDataset(images, labels).get_batch([7, 2, 2])
    numpy.testing.assert_array_equal(x, images[[7, 2, 2]])
    numpy.testing.assert_array_equal(y, labels[[7, 2, 2]])


def test_tensor_dataset_accepts_minigrad_tensors():
    ds = TensorDataset(minigrad.tensor([[1.0, 2.0], [3.0, 4.0]]), minigrad.tensor([0, 1]))
    assert len(ds) == 2
    numpy.testing.assert_array_equal(ds[1][0], [3.0, 4.0])


def test_tensor_dataset_rejects_mismatched_lengths():
    with pytest.raises(ValueError, match=r"first dimension.*\(3, 2\).*\(4,\)"):
        TensorDataset(numpy.zeros((3, 2)), numpy.zeros(4))


def test_generic_dataset_falls_back_to_stacking_items():
    x, y = fetch_batch(_ListDataset(5), [4, 0])
    assert x.shape == (2, 1, 2, 2) and x[0, 0, 0, 0] == 4
    numpy.testing.assert_array_equal(y, [1, 0])


def test_subset_maps_indices_to_parent():
    images, labels = _images_labels()
    sub = Subset(TensorDataset(images, labels), [9, 5, 1])
    x, _ = sub.get_batch([2, 0])
    numpy.testing.assert_array_equal(x, images[[1, 9]])
    assert len(sub) == 3 and sub[1][0][0, 0, 0] == images[5, 0, 0, 0]


def test_subset_of_subset_composes_indices():
    images, labels = _images_labels()
    inner = Subset(TensorDataset(images, labels), numpy.arange(2, 10))
    outer = Subset(inner, [0, 3])
    numpy.testing.assert_array_equal(outer.get_batch([1])[0], images[[5]])


def test_subset_rejects_out_of_range_indices():
    with pytest.raises(IndexError, match="length 10"):
        Subset(TensorDataset(*_images_labels()), [10])


def test_random_split_is_a_partition():
    parts = random_split(TensorDataset(*_images_labels(10)), [6, 4], seed=0)
    together = numpy.concatenate([p.indices for p in parts])
    assert [len(p) for p in parts] == [6, 4]
    numpy.testing.assert_array_equal(numpy.sort(together), numpy.arange(10))


def test_random_split_same_seed_same_split():
    ds = TensorDataset(*_images_labels(10))
    a = random_split(ds, [5, 5], seed=3)
    b = random_split(ds, [5, 5], generator=numpy.random.default_rng(3))
    numpy.testing.assert_array_equal(a[0].indices, b[0].indices)


def test_random_split_accepts_fractions():
    parts = random_split(TensorDataset(*_images_labels(11)), [0.5, 0.5], seed=0)
    assert sorted(len(p) for p in parts) == [5, 6]


def test_random_split_rejects_wrong_total():
    with pytest.raises(ValueError, match="sum to the dataset length 10"):
        random_split(TensorDataset(*_images_labels(10)), [3, 3])


def test_train_val_split_holds_out_the_last_items():
    train, val = train_val_split(TensorDataset(*_images_labels(10)), 3)
    numpy.testing.assert_array_equal(train.indices, numpy.arange(7))
    numpy.testing.assert_array_equal(val.indices, [7, 8, 9])


def test_train_val_split_accepts_a_fraction():
    train, val = train_val_split(TensorDataset(*_images_labels(10)), 0.2)
    assert (len(train), len(val)) == (8, 2)


def test_train_val_split_rejects_too_large_val_size():
    with pytest.raises(ValueError, match="val_size"):
        train_val_split(TensorDataset(*_images_labels(10)), 11)
