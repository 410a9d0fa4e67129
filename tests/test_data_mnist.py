"""MNIST reader on tiny IDX files in the official format (gzip or not), errors and download."""
import gzip
import hashlib

import numpy
import pytest

from minigrad.data import MNIST, DatasetFormatError, DatasetNotFoundError, DownloadError, mnist
from minigrad.data.download import Resource
from test_data_formats import idx_bytes, write_mnist


pytestmark = pytest.mark.usefixtures("no_network")   # tests/conftest.py


def test_reads_gzip_files_as_uint8_nchw_and_int64(tmp_path):
    written = write_mnist(tmp_path, n_train=20)
    ds = MNIST(tmp_path, train=True)
    assert ds.data.shape == (20, 1, 28, 28) and ds.data.dtype == numpy.uint8
    assert ds.targets.dtype == numpy.int64 and len(ds) == 20
    numpy.testing.assert_array_equal(ds.data[:, 0], written["train-images-idx3-ubyte"])
    numpy.testing.assert_array_equal(ds.targets, written["train-labels-idx1-ubyte"])


def test_test_split_reads_t10k_files(tmp_path):
    written = write_mnist(tmp_path, n_test=7)
    ds = MNIST(tmp_path, train=False)
    assert len(ds) == 7
    numpy.testing.assert_array_equal(ds.targets, written["t10k-labels-idx1-ubyte"])


def test_reads_uncompressed_files(tmp_path):
    written = write_mnist(tmp_path, compress=False)
    numpy.testing.assert_array_equal(MNIST(tmp_path).data[:, 0], written["train-images-idx3-ubyte"])


def test_finds_files_in_mnist_subfolder(tmp_path):
    write_mnist(tmp_path / "mnist")
    assert len(MNIST(tmp_path)) == 20


def test_finds_files_in_torchvision_layout(tmp_path):
    write_mnist(tmp_path / "MNIST" / "raw")
    assert len(MNIST(tmp_path)) == 20


def test_root_defaults_to_minigrad_data_env(tmp_path, monkeypatch):
    write_mnist(tmp_path / "mnist")
    monkeypatch.setenv("MINIGRAD_DATA", str(tmp_path))
    assert len(MNIST()) == 20


def test_getitem_returns_image_and_int_label(tmp_path):
    written = write_mnist(tmp_path)
    image, label = MNIST(tmp_path)[3]
    assert image.shape == (1, 28, 28) and label == int(written["train-labels-idx1-ubyte"][3])


def test_wrong_magic_is_a_clear_error(tmp_path):
    write_mnist(tmp_path)
    labels = numpy.zeros(20, numpy.uint8)
    (tmp_path / "train-labels-idx1-ubyte.gz").write_bytes(gzip.compress(idx_bytes(labels, 2051)))
    expected = r"train-labels-idx1-ubyte.gz: magic number 2051, expected 2049"
    with pytest.raises(DatasetFormatError, match=expected):
        MNIST(tmp_path)


def test_size_not_matching_header_is_a_clear_error(tmp_path):
    write_mnist(tmp_path)
    raw = idx_bytes(numpy.zeros((20, 28, 28), numpy.uint8), 2051)[:-5]
    (tmp_path / "train-images-idx3-ubyte.gz").write_bytes(gzip.compress(raw))
    with pytest.raises(DatasetFormatError, match=r"dimensions \(20, 28, 28\).*truncated"):
        MNIST(tmp_path)


def test_corrupt_gzip_is_a_clear_error(tmp_path):
    write_mnist(tmp_path)
    (tmp_path / "train-images-idx3-ubyte.gz").write_bytes(b"\x1f\x8b\x08garbage")
    with pytest.raises(DatasetFormatError, match="train-images-idx3-ubyte.gz: cannot read"):
        MNIST(tmp_path)


def test_image_and_label_counts_must_agree(tmp_path):
    write_mnist(tmp_path)
    labels = numpy.zeros(19, numpy.uint8)
    (tmp_path / "train-labels-idx1-ubyte.gz").write_bytes(gzip.compress(idx_bytes(labels, 2049)))
    with pytest.raises(DatasetFormatError, match="for 20 images"):
        MNIST(tmp_path)


def test_missing_file_says_what_where_and_how(tmp_path):
    write_mnist(tmp_path)
    (tmp_path / "train-labels-idx1-ubyte.gz").unlink()
    with pytest.raises(DatasetNotFoundError) as info:
        MNIST(tmp_path)
    message = str(info.value)
    assert "train-labels-idx1-ubyte.gz" in message
    assert str(tmp_path) in message and str(tmp_path / "mnist") in message
    assert "https://ossci-datasets.s3.amazonaws.com/mnist/train-labels-idx1-ubyte.gz" in message
    assert "download=True" in message and "by hand" in message


def _local_mirror(tmp_path, monkeypatch):
    """Serve tiny MNIST .gz files through file:// and point MNIST's mirrors and checksums at them."""
    served = tmp_path / "served"
    write_mnist(served)
    resources = {p.name: Resource(p.name, hashlib.sha256(p.read_bytes()).hexdigest(), None, None)
                 for p in served.iterdir()}
    monkeypatch.setattr(mnist, "RESOURCES", resources)
    monkeypatch.setattr(mnist, "MIRRORS", [(tmp_path / "dead").as_uri() + "/", served.as_uri() + "/"])
    monkeypatch.delenv("MINIGRAD_DATA_MIRROR", raising=False)          # the official mirror list, patched above
    return served


def test_download_fetches_missing_files_into_root_mnist(tmp_path, monkeypatch):
    _local_mirror(tmp_path, monkeypatch)
    ds = MNIST(tmp_path / "cache", train=True, download=True)
    assert len(ds) == 20
    assert sorted(p.name for p in (tmp_path / "cache" / "mnist").iterdir()) == [
        "train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz"]


def test_download_with_corrupt_mirror_leaves_nothing(tmp_path, monkeypatch):
    served = _local_mirror(tmp_path, monkeypatch)
    (served / "train-images-idx3-ubyte.gz").write_bytes(b"tampered")
    with pytest.raises(DownloadError, match="train-images-idx3-ubyte.gz.*checksum mismatch"):
        MNIST(tmp_path / "cache", download=True)
    assert not (tmp_path / "cache" / "mnist" / "train-images-idx3-ubyte.gz").exists()
    assert not any(p.name.endswith(".part") for p in (tmp_path / "cache" / "mnist").iterdir())
