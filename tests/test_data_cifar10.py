"""CIFAR-10 reader on tiny batches in the official pickle/tar.gz format, safe extraction, errors, download."""
import hashlib
import os
import pickle
import tarfile

import numpy
import pytest

from minigrad.data import (
    CIFAR10, DatasetFormatError, DatasetNotFoundError, DownloadError, UnsafePickleError, cifar10,
)
from minigrad.data.download import Resource
from test_data_formats import CLASSES, cifar_archive_bytes, cifar_batch, py2_pickle, write_cifar


pytestmark = pytest.mark.usefixtures("no_network")   # tests/conftest.py


def test_reads_five_training_batches_in_order(tmp_path):
    batches = write_cifar(tmp_path, n_per_batch=4)
    ds = CIFAR10(tmp_path, train=True)
    assert ds.data.shape == (20, 3, 32, 32) and ds.data.dtype == numpy.uint8
    assert ds.targets.dtype == numpy.int64
    expected = sum((batches[name][b"labels"] for name in cifar10.TRAIN_FILES), [])
    numpy.testing.assert_array_equal(ds.targets, expected)
    assert ds.classes == [c.decode() for c in CLASSES]


def test_rows_are_red_then_green_then_blue_planes(tmp_path):
    batches = write_cifar(tmp_path)
    row = batches["data_batch_2"][b"data"][1]                  # image 1 of batch 2 = index 5
    image = CIFAR10(tmp_path).data[5]
    for channel in range(3):
        plane = row[channel * 1024:(channel + 1) * 1024].reshape(32, 32)
        numpy.testing.assert_array_equal(image[channel], plane, err_msg=f"channel {channel}")


def test_test_split_reads_test_batch(tmp_path):
    batches = write_cifar(tmp_path)
    ds = CIFAR10(tmp_path, train=False)
    numpy.testing.assert_array_equal(ds.targets, batches["test_batch"][b"labels"])


def test_root_may_be_the_batch_folder_itself(tmp_path):
    write_cifar(tmp_path)
    assert len(CIFAR10(tmp_path / cifar10.FOLDER)) == 20


def test_missing_test_batch_is_a_clear_error_for_test_split_only(tmp_path):
    write_cifar(tmp_path, test=False)
    assert len(CIFAR10(tmp_path, train=True)) == 20
    with pytest.raises(DatasetNotFoundError) as info:
        CIFAR10(tmp_path, train=False)
    message = str(info.value)
    assert "test_batch" in message and str(tmp_path / cifar10.FOLDER) in message
    assert "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz" in message
    assert "download=True" in message and "train_val_split" in message


def test_archive_in_root_is_extracted_and_read(tmp_path):
    (tmp_path / "cifar-10-python.tar.gz").write_bytes(cifar_archive_bytes(n_per_batch=3))
    ds = CIFAR10(tmp_path, train=True)
    assert len(ds) == 15
    assert sorted(os.listdir(tmp_path / cifar10.FOLDER)) == sorted(cifar10.TRAIN_FILES + ["batches.meta"])


def test_archive_without_the_wanted_file_says_so(tmp_path):
    write_cifar(tmp_path, test=False)
    (tmp_path / "cifar-10-python.tar.gz").write_bytes(cifar_archive_bytes(with_test=False))
    with pytest.raises(DatasetNotFoundError, match="cifar-10-python.tar.gz does not contain them"):
        CIFAR10(tmp_path, train=False)


def _member(name, payload=b"x", kind=tarfile.REGTYPE, link=""):
    info = tarfile.TarInfo(name)
    info.type, info.linkname = kind, link
    info.size = len(payload) if kind == tarfile.REGTYPE else 0
    return info, payload if kind == tarfile.REGTYPE else None


@pytest.mark.parametrize("member", [
    _member("../evil.txt"),
    _member("cifar-10-batches-py/../../evil.txt"),
    _member("/tmp/evil.txt"),
    _member("cifar-10-batches-py/data_batch_1", kind=tarfile.SYMTYPE, link="/etc/passwd"),
], ids=["parent", "nested-parent", "absolute", "symlink"])
def test_unsafe_archive_member_is_refused_and_nothing_escapes(tmp_path, member):
    root = tmp_path / "root"
    root.mkdir()
    (root / "cifar-10-python.tar.gz").write_bytes(cifar_archive_bytes(extra_members=[member]))
    with pytest.raises(DatasetFormatError, match="unsafe archive member"):
        CIFAR10(root)
    assert not (tmp_path / "evil.txt").exists()
    assert not (root / cifar10.FOLDER).exists(), "extraction started before the archive was checked"


def test_malicious_batch_pickle_is_refused_naming_the_file(tmp_path):
    write_cifar(tmp_path)
    marker = tmp_path / "pwned"

    class RunsShell:
        def __reduce__(self):
            return os.system, (f"touch {marker}",)

    evil = tmp_path / cifar10.FOLDER / "data_batch_3"
    evil.write_bytes(pickle.dumps({b"data": RunsShell()}, protocol=2))
    with pytest.raises(UnsafePickleError, match="data_batch_3"):
        CIFAR10(tmp_path)
    assert not marker.exists()


def test_wrong_data_shape_is_a_clear_error(tmp_path):
    write_cifar(tmp_path)
    batch = cifar_batch(2, seed=0)
    batch[b"data"] = batch[b"data"][:, :1000]
    (tmp_path / cifar10.FOLDER / "data_batch_1").write_bytes(py2_pickle(batch))
    with pytest.raises(DatasetFormatError, match=r"data_batch_1: 'data' is uint8 \(2, 1000\)"):
        CIFAR10(tmp_path)


def _serve_archive(tmp_path, monkeypatch, payload):
    served = tmp_path / "served"
    served.mkdir()
    (served / "cifar-10-python.tar.gz").write_bytes(payload)
    good = cifar_archive_bytes()
    monkeypatch.setattr(cifar10, "ARCHIVE", Resource(
        "cifar-10-python.tar.gz", hashlib.sha256(good).hexdigest(), None, None))
    monkeypatch.setattr(cifar10, "URLS", [(served / "cifar-10-python.tar.gz").as_uri()])
    monkeypatch.delenv("MINIGRAD_DATA_MIRROR", raising=False)          # the official URL list, patched above


def test_download_fetches_verifies_and_extracts(tmp_path, monkeypatch):
    _serve_archive(tmp_path, monkeypatch, cifar_archive_bytes())
    ds = CIFAR10(tmp_path / "cache", train=False, download=True)
    assert len(ds) == 4
    assert (tmp_path / "cache" / "cifar-10-python.tar.gz").is_file()


def test_download_of_corrupt_archive_is_refused_and_deleted(tmp_path, monkeypatch):
    _serve_archive(tmp_path, monkeypatch, b"\x1f\x8b not the archive")
    with pytest.raises(DownloadError, match="cifar-10-python.tar.gz.*checksum mismatch"):
        CIFAR10(tmp_path / "cache", download=True)
    assert os.listdir(tmp_path / "cache") == []
