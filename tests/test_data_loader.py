"""DataLoader: batching, shuffling, dtypes, devices, prefetch, and reproducible/resumable RNG."""
import numpy
import pytest

import minigrad
from minigrad import backend
from minigrad.data import (
    Compose, DataLoader, Dataset, RandomCrop, RandomHorizontalFlip, TensorDataset, ToFloat,
)


def _dataset(n=10):
    images = numpy.arange(n * 16, dtype=numpy.uint8).reshape(n, 1, 4, 4)
    labels = (numpy.arange(n) % 3).astype(numpy.uint8)
    return TensorDataset(images, labels)


def _first_pixels(loader):
    """Every batch's images reduced to one id per image (its first pixel, unique per image)."""
    return [batch[0].detach().numpy()[:, 0, 0, 0].tolist() for batch in loader]


class _CountingDataset(Dataset):
    """A generic dataset that records how items were fetched."""

    def __init__(self, n):
        self.n, self.calls = n, 0

    def __len__(self):
        return self.n

    def __getitem__(self, i):
        self.calls += 1
        return numpy.full((2,), i, numpy.float64), i


def test_batches_cover_dataset_in_order_without_shuffle():
    ids = _first_pixels(DataLoader(_dataset(10), batch_size=4))
    assert ids == [[0, 16, 32, 48], [64, 80, 96, 112], [128, 144]]


@pytest.mark.parametrize("n, batch_size, drop_last, expected", [
    (10, 4, False, 3), (10, 4, True, 2), (8, 4, True, 2), (8, 4, False, 2), (3, 5, True, 0), (0, 2, False, 0),
])
def test_len_counts_batches(n, batch_size, drop_last, expected):
    loader = DataLoader(_dataset(n), batch_size=batch_size, drop_last=drop_last)
    assert len(loader) == expected
    assert sum(1 for _ in loader) == expected


def test_shuffle_is_a_permutation_each_epoch():
    loader = DataLoader(_dataset(10), batch_size=3, shuffle=True, seed=0)
    first, second = sum(_first_pixels(loader), []), sum(_first_pixels(loader), [])
    assert sorted(first) == sorted(second) == list(range(0, 160, 16))
    assert first != second, "two epochs drew the same order"


def test_same_seed_same_batches():
    a = _first_pixels(DataLoader(_dataset(), batch_size=4, shuffle=True, seed=7))
    rng = numpy.random.default_rng(7)
    b = _first_pixels(DataLoader(_dataset(), batch_size=4, shuffle=True, generator=rng))
    assert a == b


def test_no_seed_follows_minigrad_manual_seed():
    minigrad.manual_seed(11)
    a = _first_pixels(DataLoader(_dataset(), batch_size=4, shuffle=True))
    minigrad.manual_seed(11)
    b = _first_pixels(DataLoader(_dataset(), batch_size=4, shuffle=True))
    assert a == b


def test_outputs_are_tensors_with_float32_images_and_int64_labels():
    loader = DataLoader(_dataset(), batch_size=4, transform=ToFloat())
    images, labels = next(iter(loader))
    assert isinstance(images, minigrad.Tensor) and isinstance(labels, minigrad.Tensor)
    assert images.dtype == numpy.float32 and images.shape == (4, 1, 4, 4)
    assert labels.dtype == numpy.int64 and labels.shape == (4,)
    assert images.device == "cpu"
    numpy.testing.assert_allclose(images.detach().numpy()[1, 0, 0, 0], 16 / 255, rtol=1e-6)


def test_generic_dataset_goes_through_the_stacking_fallback():
    ds = _CountingDataset(5)
    images, labels = next(iter(DataLoader(ds, batch_size=5)))
    assert ds.calls == 5
    assert images.dtype == numpy.float32 and labels.dtype == numpy.int64


def test_random_transforms_reproducible_from_seed():
    t = Compose([ToFloat(), RandomCrop(4, padding=2), RandomHorizontalFlip()])

    def run():
        loader = DataLoader(_dataset(), batch_size=5, shuffle=True, seed=3, transform=t)
        return [b[0].detach().numpy() for _ in range(2) for b in loader]

    for a, b in zip(run(), run()):
        numpy.testing.assert_array_equal(a, b)


def test_prefetch_gives_the_same_batches_as_no_prefetch():
    t = Compose([ToFloat(), RandomCrop(4, padding=1)])
    plain = DataLoader(_dataset(23), batch_size=4, shuffle=True, seed=5, transform=t)
    ahead = DataLoader(_dataset(23), batch_size=4, shuffle=True, seed=5, transform=t, prefetch=True)
    for epoch in range(2):
        for (xa, ya), (xb, yb) in zip(plain, ahead):
            numpy.testing.assert_array_equal(xa.detach().numpy(), xb.detach().numpy(), err_msg=f"epoch {epoch}")
            numpy.testing.assert_array_equal(ya.detach().numpy(), yb.detach().numpy())


def test_prefetch_break_early_then_iterate_again():
    loader = DataLoader(_dataset(40), batch_size=2, prefetch=True)
    for _ in loader:
        break
    assert len(list(loader)) == 20


def test_prefetch_reraises_worker_errors():
    def broken(x):
        raise RuntimeError("transform failed")

    with pytest.raises(RuntimeError, match="transform failed"):
        list(DataLoader(_dataset(), batch_size=2, transform=broken, prefetch=True))


def test_state_dict_resumes_the_next_epoch_exactly():
    t = Compose([ToFloat(), RandomHorizontalFlip()])
    original = DataLoader(_dataset(), batch_size=3, shuffle=True, seed=9, transform=t)
    list(original)                                            # epoch 1
    state = original.state_dict()
    expected = [b[0].detach().numpy() for b in original]               # epoch 2

    resumed = DataLoader(_dataset(), batch_size=3, shuffle=True, seed=0, transform=t)
    resumed.load_state_dict(state)
    assert resumed.epoch == 1
    for a, b in zip(expected, [b[0].detach().numpy() for b in resumed]):
        numpy.testing.assert_array_equal(a, b)


def test_a_new_epoch_after_a_partial_one_is_the_next_epoch_all_the_same():
    a = DataLoader(_dataset(), batch_size=2, shuffle=True, seed=1)
    b = DataLoader(_dataset(), batch_size=2, shuffle=True, seed=1)
    next(iter(a))                                    # an epoch abandoned after one batch
    list(b)
    assert _first_pixels(a) == _first_pixels(b)      # both draw the second epoch's plan


@pytest.mark.parametrize("prefetch", [False, True])
@pytest.mark.parametrize("stop_after", [0, 1, 3, 5])
def test_a_state_saved_mid_epoch_resumes_that_epoch_at_the_next_batch(prefetch, stop_after):
    """Batches (with their augmentation) from a loader restored in the middle of epoch 2 equal the rest of
    epoch 2 and then epoch 3 of a loader that was never interrupted."""
    def loader():
        return DataLoader(_dataset(11), batch_size=2, shuffle=True, seed=3, prefetch=prefetch,
                          transform=Compose([RandomCrop(4, padding=1), ToFloat()]))

    def pixels(batches):
        return [batch[0].detach().numpy().tolist() for batch in batches]

    straight = loader()
    epochs = [pixels(straight) for _ in range(3)]
    interrupted = loader()
    list(interrupted)                                # epoch 1
    iterator = iter(interrupted)                     # epoch 2 ...
    for _ in range(stop_after):
        next(iterator)
    if stop_after:
        assert interrupted.state_dict()["position"] == stop_after - 1   # the last batch is not finished yet
    state = interrupted.state_dict()
    resumed = loader()
    resumed.load_state_dict(state)
    finished = max(stop_after - 1, 0)
    assert pixels(resumed) == epochs[1][finished:]
    assert pixels(resumed) == epochs[2]
    assert resumed.state_dict()["position"] == 0


def test_a_loader_state_with_a_position_past_the_epoch_is_refused():
    loader = DataLoader(_dataset(), batch_size=2, shuffle=True, seed=1)
    state = dict(loader.state_dict(), position=99)
    with pytest.raises(ValueError, match="position 99 is outside an epoch of 5 batches"):
        loader.load_state_dict(state)


def test_bad_batch_size_is_clear():
    with pytest.raises(ValueError, match="batch_size"):
        DataLoader(_dataset(), batch_size=0)


def test_unknown_device_is_clear():
    with pytest.raises(backend.DeviceError, match="unknown device"):
        DataLoader(_dataset(), device="tpu")


@pytest.mark.gpu
def test_batches_land_on_the_gpu():
    loader = DataLoader(_dataset(), batch_size=4, transform=ToFloat(), device="gpu", prefetch=True)
    images, labels = next(iter(loader))
    assert images.device == "gpu" and labels.device == "gpu"
    assert backend.is_gpu_array(images.array) and labels.dtype == numpy.int64
    numpy.testing.assert_allclose(images.detach().numpy()[1, 0, 0, 0], 16 / 255, rtol=1e-6)


def test_pytorchs_worker_arguments_are_accepted_and_workers_mean_prefetch():
    plain = DataLoader(_dataset(), batch_size=3, shuffle=True, seed=4)
    workers = DataLoader(_dataset(), batch_size=3, shuffle=True, seed=4, num_workers=2, pin_memory=True,
                         persistent_workers=True, prefetch_factor=2)
    assert workers.prefetch and not plain.prefetch
    assert _first_pixels(workers) == _first_pixels(plain)           # the same batches, built ahead
    with pytest.raises(ValueError, match="num_workers must be an integer >= 0, got -1"):
        DataLoader(_dataset(), num_workers=-1)
