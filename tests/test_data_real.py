"""The real MNIST and CIFAR-10 files in shared/data (skipped where that folder is absent).

The folder is found next to the repository (../shared/data) or through
$MINIGRAD_SHARED_DATA. It holds the official MNIST files and the CIFAR-10
training batches only, without test_batch.
"""
import os
from pathlib import Path

import numpy
import pytest

from minigrad.data import CIFAR10, MNIST, DataLoader, DatasetNotFoundError, ToFloat, train_val_split
from minigrad.data import cifar10
from test_data_formats import globals_used, opcodes_used, py2_pickle, cifar_batch


def _shared_data():
    env = os.environ.get("MINIGRAD_SHARED_DATA")
    return Path(env) if env else Path(__file__).resolve().parents[1].parent / "shared" / "data"


SHARED = _shared_data()
needs_mnist = pytest.mark.skipif(not (SHARED / "mnist").is_dir(), reason=f"no MNIST in {SHARED}")
needs_cifar = pytest.mark.skipif(not (SHARED / cifar10.FOLDER).is_dir(), reason=f"no CIFAR-10 in {SHARED}")


@pytest.fixture(scope="module")
def mnist_train():
    return MNIST(SHARED, train=True)


@pytest.fixture(scope="module")
def cifar_train():
    return CIFAR10(SHARED, train=True)


@needs_mnist
def test_mnist_has_60000_train_and_10000_test_images(mnist_train):
    test = MNIST(SHARED, train=False)
    assert mnist_train.data.shape == (60000, 1, 28, 28) and len(test) == 10000
    assert numpy.bincount(mnist_train.targets).tolist()[:3] == [5923, 6742, 5958]


@needs_mnist
def test_mnist_pixel_statistics(mnist_train):
    pixels = mnist_train.data[:10000].astype(numpy.float32) / 255
    assert abs(pixels.mean() - 0.1307) < 0.01 and abs(pixels.std() - 0.3081) < 0.01


@needs_cifar
def test_cifar_has_50000_train_images_5000_per_class(cifar_train):
    assert cifar_train.data.shape == (50000, 3, 32, 32)
    assert numpy.bincount(cifar_train.targets, minlength=10).tolist() == [5000] * 10
    assert cifar_train.classes[:3] == ["airplane", "automobile", "bird"]


@needs_cifar
def test_cifar_channel_means_match_the_published_ones(cifar_train):
    means = cifar_train.data.reshape(50000, 3, 1024).mean(axis=(0, 2))   # (3,)
    numpy.testing.assert_allclose(means, [125.307, 122.950, 113.865], atol=0.001)


@needs_cifar
def test_cifar_test_split_without_test_batch_is_a_clear_error():
    if (SHARED / cifar10.FOLDER / "test_batch").exists():
        pytest.skip("this copy has test_batch")
    with pytest.raises(DatasetNotFoundError, match="test_batch"):
        CIFAR10(SHARED, train=False)


@needs_cifar
def test_cifar_validation_split_is_the_last_5000(cifar_train):
    train, val = train_val_split(cifar_train, 5000)
    images, labels = next(iter(DataLoader(val, batch_size=3, transform=ToFloat())))
    numpy.testing.assert_allclose(images.detach().numpy(), cifar_train.data[45000:45003] / 255, rtol=1e-6)
    assert len(train) == 45000


@needs_cifar
def test_fixture_pickles_use_the_same_opcodes_and_globals_as_the_real_file():
    real = (SHARED / cifar10.FOLDER / "data_batch_1").read_bytes()
    fake = py2_pickle(cifar_batch(3, seed=0))
    assert globals_used(fake) == globals_used(real)
    assert opcodes_used(fake) <= opcodes_used(real)
