"""download.py: mirrors, SHA-256 checks, atomic writes and clear failures, all without a network.

Files are served from tmp_path through file:// URLs, or through a replaced
opener; an autouse fixture makes any real socket connection fail the test.
"""
import hashlib
import io
import urllib.error

import pytest

from minigrad.data import DownloadError, data_root, download
from minigrad.data.download import Resource, download_resource


pytestmark = pytest.mark.usefixtures("no_network")   # tests/conftest.py


PAYLOAD = b"official archive bytes " * 100


def _resource(payload=PAYLOAD, size=None):
    return Resource("archive.tar.gz", hashlib.sha256(payload).hexdigest(), size, None)


def _serve(folder, name, payload):
    """Put payload at folder/name; return the file:// base URL of folder."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / name).write_bytes(payload)
    return folder.as_uri() + "/"


def _leftovers(folder):
    return sorted(p.name for p in folder.iterdir() if p.name.endswith(".part"))


def test_good_archive_is_downloaded_and_verified(tmp_path):
    base = _serve(tmp_path / "mirror", "archive.tar.gz", PAYLOAD)
    target = download_resource(_resource(), [base + "archive.tar.gz"], tmp_path / "cache", progress=False)
    assert target == tmp_path / "cache" / "archive.tar.gz"
    assert target.read_bytes() == PAYLOAD
    assert _leftovers(tmp_path / "cache") == []


def test_corrupt_first_mirror_falls_back_to_the_next(tmp_path):
    bad = _serve(tmp_path / "bad", "archive.tar.gz", PAYLOAD[:-1] + b"X")
    good = _serve(tmp_path / "good", "archive.tar.gz", PAYLOAD)
    urls = [bad + "archive.tar.gz", good + "archive.tar.gz"]
    target = download_resource(_resource(), urls, tmp_path / "cache", progress=False)
    assert target.read_bytes() == PAYLOAD


def test_corrupt_download_is_deleted_and_reported(tmp_path):
    bad = _serve(tmp_path / "bad", "archive.tar.gz", b"not the archive")
    cache = tmp_path / "cache"
    with pytest.raises(DownloadError) as info:
        download_resource(_resource(), [bad + "archive.tar.gz"], cache, progress=False)
    message = str(info.value)
    assert "archive.tar.gz" in message and str(cache) in message
    assert "checksum mismatch" in message and bad + "archive.tar.gz" in message
    assert "by hand" in message
    assert list(cache.iterdir()) == [], "a corrupt or partial download was left behind"


def test_all_mirrors_failing_lists_every_url(tmp_path):
    urls = [(tmp_path / "nowhere1").as_uri() + "/archive.tar.gz",
            (tmp_path / "nowhere2").as_uri() + "/archive.tar.gz"]
    with pytest.raises(DownloadError) as info:
        download_resource(_resource(), urls, tmp_path / "cache", progress=False)
    for url in urls:
        assert url in str(info.value)
    assert not (tmp_path / "cache" / "archive.tar.gz").exists()


class _FakeResponse(io.BytesIO):
    headers = {}


def test_replaced_opener_serves_local_bytes(tmp_path, monkeypatch):
    monkeypatch.setattr(download, "_open_url", lambda url, timeout: _FakeResponse(PAYLOAD))
    target = download_resource(_resource(), ["https://mirror.invalid/a"], tmp_path, progress=False)
    assert target.read_bytes() == PAYLOAD


def test_offline_error_from_opener_is_reported(tmp_path, monkeypatch):
    def offline(url, timeout):
        raise urllib.error.URLError("Name or service not known")

    monkeypatch.setattr(download, "_open_url", offline)
    with pytest.raises(DownloadError, match=r"https://mirror.invalid/a: URLError.*not known"):
        download_resource(_resource(), ["https://mirror.invalid/a"], tmp_path, progress=False)
    assert list(tmp_path.iterdir()) == []


def test_oversized_response_is_cut_off(tmp_path, monkeypatch):
    monkeypatch.setattr(download, "_open_url", lambda url, timeout: _FakeResponse(PAYLOAD * 50))
    with pytest.raises(DownloadError, match="more than the expected"):
        download_resource(_resource(size=len(PAYLOAD)), ["https://mirror.invalid/a"], tmp_path,
                          progress=False)
    assert list(tmp_path.iterdir()) == []


def test_progress_bar_runs(tmp_path, capsys):
    base = _serve(tmp_path / "mirror", "archive.tar.gz", PAYLOAD)
    download_resource(_resource(), [base + "archive.tar.gz"], tmp_path / "cache", progress=True)
    assert (tmp_path / "cache" / "archive.tar.gz").is_file()


def test_data_root_prefers_argument_then_env_then_home(tmp_path, monkeypatch):
    monkeypatch.setenv("MINIGRAD_DATA", str(tmp_path / "env"))
    assert data_root(tmp_path / "arg") == tmp_path / "arg"
    assert data_root() == tmp_path / "env"
    monkeypatch.delenv("MINIGRAD_DATA")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert data_root() == tmp_path / "home" / ".cache" / "minigrad"


def test_mnist_downloads_from_a_mirror_checks_and_loads(tmp_path, monkeypatch):
    """download=True end to end, with no network: $MINIGRAD_DATA_MIRROR points at a folder of .gz files
    (written here; their SHA-256 stand in for the official ones) and MNIST fetches, verifies and reads them."""
    import gzip

    import numpy

    from minigrad.data import MNIST, mnist
    from minigrad.data.download import sha256_of

    mirror = tmp_path / "mirror"
    mirror.mkdir()
    rng = numpy.random.default_rng(0)
    for prefix, n in (("train", 6), ("t10k", 4)):
        for kind, magic, body in (("images-idx3", 2051, rng.integers(0, 256, (n, 28, 28), dtype=numpy.uint8)),
                                  ("labels-idx1", 2049, rng.integers(0, 10, n, dtype=numpy.uint8))):
            header = magic.to_bytes(4, "big") + b"".join(d.to_bytes(4, "big") for d in body.shape)
            (mirror / f"{prefix}-{kind}-ubyte.gz").write_bytes(gzip.compress(header + body.tobytes()))
    resources = {name: resource._replace(sha256=sha256_of(mirror / name), size=(mirror / name).stat().st_size)
                 for name, resource in mnist.RESOURCES.items()}
    monkeypatch.setattr(mnist, "RESOURCES", resources)
    monkeypatch.setenv("MINIGRAD_DATA_MIRROR", mirror.as_uri())
    train = MNIST(tmp_path / "data", train=True, download=True)
    assert len(train) == 6 and (tmp_path / "data" / "mnist" / "train-images-idx3-ubyte.gz").is_file()
    assert mnist.mirror_urls(mnist.MIRRORS, "x.gz") == [mirror.as_uri() + "/x.gz"]   # the mirror alone
