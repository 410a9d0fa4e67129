"""Download data set archives safely: mirrors, checksums, atomic writes.

For each file::

    for url in mirrors:
        stream url -> <dir>/.<name>.<random>.part     (hashing while writing)
        if sha256(part) == expected: os.replace(part, <dir>/<name>); done
        else: delete part, try the next mirror
    all failed -> DownloadError naming the file, the folder and every URL tried

- Atomic: the final name only ever appears with verified content. An
  interrupted or corrupt download leaves no half-file that a later run could
  mistake for the real one (os.replace is atomic within one filesystem, which
  is why the temporary file lives in the destination folder).
- Checksums: SHA-256 of the archive exactly as the publisher serves it (values
  below). They are the widely published digests of the official archives, the
  same ones Keras, TensorFlow Datasets and torchvision's dataset definitions
  use; the well-known MD5s of the same archives are kept alongside for
  reference. A re-compressed copy (same pixels, other gzip bytes) has another
  digest: such copies are read happily when placed by hand (the loaders
  validate headers and sizes), only downloads are checked against these.
- Where: the `root` argument, else $MINIGRAD_DATA, else ~/.cache/minigrad.
"""
import hashlib
import os
import tempfile
import urllib.request
from collections import namedtuple
from pathlib import Path

from minigrad.data.errors import DownloadError

Resource = namedtuple("Resource", "filename sha256 size md5")

DEFAULT_TIMEOUT_S = 30
READ_CHUNK_BYTES = 1 << 20


def data_root(root=None):
    """The data folder: `root`, else $MINIGRAD_DATA, else ~/.cache/minigrad."""
    if root is not None:
        return Path(root).expanduser()
    env = os.environ.get("MINIGRAD_DATA")
    if env:
        return Path(env).expanduser()
    return Path.home() / ".cache" / "minigrad"


def default_data_dir():
    """Where the examples look for data: $MINIGRAD_DATA, else a `shared/data` folder beside this
    checkout (the project's own machines keep the real data sets there), else ~/.cache/minigrad."""
    if os.environ.get("MINIGRAD_DATA"):
        return Path(os.environ["MINIGRAD_DATA"]).expanduser()
    shared = Path(__file__).resolve().parents[2].parent / "shared" / "data"
    return shared if shared.is_dir() else data_root()


def sha256_of(path):
    """Hex SHA-256 of a file, read in chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as file:
        for chunk in iter(lambda: file.read(READ_CHUNK_BYTES), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _open_url(url, timeout):
    """Open a URL for reading; tests replace this to serve local bytes."""
    return urllib.request.urlopen(url, timeout=timeout)


class _NoProgress:
    """Stands in for a tqdm bar when tqdm is missing or progress is off."""

    def update(self, n):
        pass

    def close(self):
        pass


def _progress_bar(total, description, enabled):
    """A tqdm progress bar in bytes when enabled and tqdm is installed, else _NoProgress."""
    if enabled:
        try:
            from tqdm import tqdm
        except ImportError:
            return _NoProgress()
        return tqdm(total=total, unit="B", unit_scale=True, unit_divisor=1024,
                    desc=description, leave=False)
    return _NoProgress()


def _fetch_to(url, part_path, resource, timeout, progress):
    """Stream one URL into part_path; return its SHA-256. Raises OSError on failure."""
    digest = hashlib.sha256()
    written = 0
    with _open_url(url, timeout) as response, open(part_path, "wb") as out:
        length = response.headers.get("Content-Length") if hasattr(response, "headers") else None
        bar = _progress_bar(int(length) if length else resource.size, resource.filename, progress)
        try:
            for chunk in iter(lambda: response.read(READ_CHUNK_BYTES), b""):
                written += len(chunk)
                if resource.size is not None and written > resource.size:
                    raise OSError(f"server sent more than the expected {resource.size} bytes")
                digest.update(chunk)
                out.write(chunk)
                bar.update(len(chunk))
        finally:
            bar.close()
    return digest.hexdigest()


def download_resource(resource, urls, folder, timeout=DEFAULT_TIMEOUT_S, progress=True):
    """Download `resource` into `folder` from the first mirror that serves verified bytes.

    `urls` are full URLs of the same file, tried in order. Returns the final
    Path. Raises DownloadError when every URL fails or serves bad bytes; the
    message lists each URL with its failure and how to place the file by hand.
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / resource.filename
    failures = []
    for url in urls:
        handle, part_name = tempfile.mkstemp(dir=folder, prefix=f".{resource.filename}.", suffix=".part")
        os.close(handle)
        part_path = Path(part_name)
        try:
            got = _fetch_to(url, part_path, resource, timeout, progress)
            if resource.sha256 is not None and got != resource.sha256:
                failures.append(f"{url}: checksum mismatch (SHA-256 {got}, expected {resource.sha256});"
                                " the corrupt download was deleted")
                continue
            os.replace(part_path, target)
            return target
        except (OSError, ValueError) as error:  # URLError, timeouts, HTTP errors are OSErrors
            failures.append(f"{url}: {type(error).__name__}: {error}")
        finally:
            part_path.unlink(missing_ok=True)
    tried = "\n".join(f"  - {line}" for line in failures) or "  (no URLs given)"
    raise DownloadError(
        f"could not download {resource.filename} into {folder}.\nTried:\n{tried}\n"
        f"To install it by hand, fetch {resource.filename} from one of the URLs above on a machine "
        f"with internet access and copy it to {target}"
        + (f" (SHA-256 {resource.sha256})." if resource.sha256 else ".")
    )


def local_mirror_urls(filename):
    """URLs of `filename` on the mirrors named by $MINIGRAD_DATA_MIRROR (base URLs separated by commas,
    e.g. a file:// folder or a proxy's), or [] when it is not set."""
    bases = [base.strip() for base in os.environ.get("MINIGRAD_DATA_MIRROR", "").split(",") if base.strip()]
    return [base + ("" if base.endswith("/") else "/") + filename for base in bases]


def mirror_urls(mirrors, filename):
    """Full URLs of `filename`: on the mirrors of $MINIGRAD_DATA_MIRROR when it is set (and only there: for
    machines that reach the internet through one, and for tests that must not reach it at all), else on
    each official mirror base URL (each ends with '/'). The SHA-256 checks are the same either way."""
    return local_mirror_urls(filename) or [base + filename for base in mirrors]
