"""CIFAR-10: 60,000 colour images, 32 x 32, ten classes, from the official python version.

On disk (the official cifar-10-python.tar.gz, extracted)::

    root/cifar-10-batches-py/
        data_batch_1 ... data_batch_5     training set, 10,000 images each
        test_batch                        test set, 10,000 images
        batches.meta                      {'label_names': [b'airplane', ...], ...}

Each batch is a pickled dict: b'data' a (10000, 3072) uint8 array whose row
holds 1024 red, then 1024 green, then 1024 blue values of a 32 x 32 image in
row-major order, so ``data.reshape(N, 3, 32, 32)`` is already NCHW; b'labels'
a list of ints 0..9. The pickles are loaded with safe_pickle (never plain
pickle.load: a crafted pickle can run code).

If only the archive is in root it is extracted first; extraction writes only
the known member names, refuses links and any path that could escape the
folder ("../", absolute names).
"""
import tarfile
from pathlib import Path, PurePosixPath

import numpy

from minigrad.data.dataset import ArrayDataset
from minigrad.data.download import Resource, data_root, download_resource, local_mirror_urls
from minigrad.data.errors import DatasetFormatError, DatasetNotFoundError
from minigrad.data.safe_pickle import load_pickle

FOLDER = "cifar-10-batches-py"
TRAIN_FILES = [f"data_batch_{k}" for k in range(1, 6)]
TEST_FILES = ["test_batch"]
META_FILE = "batches.meta"
MEMBERS = TRAIN_FILES + TEST_FILES + [META_FILE, "readme.html"]

URLS = ["https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz"]
# SHA-256 (and MD5) of the official archive; see download.py for where they come from.
ARCHIVE = Resource("cifar-10-python.tar.gz",
                   "6d958be074577803d12ecdefd02955f39262c83c16fe9348329d7fe0b5c001ce",
                   170498071, "c58f30108f718f92721af3b95e74349a")

IMAGE_SHAPE = (3, 32, 32)


def _batch_folder(root):
    """root/cifar-10-batches-py, or root itself if it already is that folder."""
    if not (root / FOLDER).is_dir() and (root / "data_batch_1").is_file():
        return root
    return root / FOLDER


def _is_safe_member(member):
    """A plain file or folder whose name stays inside the extraction folder."""
    parts = PurePosixPath(member.name).parts
    inside = not member.name.startswith(("/", "\\")) and ".." not in parts
    return inside and (member.isfile() or member.isdir())


def extract_archive(archive, root, wanted):
    """Extract the members named in `wanted` from the CIFAR tar.gz into root/cifar-10-batches-py.

    Every member name is checked first: an absolute name, a '..' component,
    a link or a device makes the whole archive rejected (it is not the
    official one). Only regular files with the expected names are written,
    each through a temporary name and os.replace.
    """
    folder = Path(root) / FOLDER
    try:
        with tarfile.open(archive, "r:gz") as tar:
            members = tar.getmembers()
            for member in members:
                if not _is_safe_member(member):
                    raise DatasetFormatError(
                        f"{archive}: unsafe archive member {member.name!r} "
                        "(absolute path, '..', link or device); refusing to extract it"
                    )
            folder.mkdir(parents=True, exist_ok=True)
            for member in members:
                parts = PurePosixPath(member.name).parts
                wanted_file = len(parts) == 2 and parts[0] == FOLDER and parts[1] in wanted
                if not (member.isfile() and wanted_file):
                    continue
                part = folder / f".{parts[1]}.part"
                with tar.extractfile(member) as source, open(part, "wb") as out:
                    while chunk := source.read(1 << 20):
                        out.write(chunk)
                part.replace(folder / parts[1])
    except (tarfile.TarError, EOFError, OSError) as error:
        raise DatasetFormatError(
            f"{archive}: cannot extract into {folder} ({type(error).__name__}: {error}); "
            "if the archive is damaged, delete it and download it again"
        ) from None
    return folder


def _read_batch(path):
    """(images uint8 (N, 3, 32, 32), labels int64 (N,)) from one batch pickle."""
    batch = _load_dict(path)
    if "data" not in batch or "labels" not in batch:
        raise DatasetFormatError(
            f"{path}: a CIFAR-10 batch needs keys 'data' and 'labels', got {sorted(batch)}"
        )
    data = numpy.asarray(batch["data"])
    labels = numpy.asarray(batch["labels"], dtype=numpy.int64)
    if data.dtype != numpy.uint8 or data.ndim != 2 or data.shape[1] != 3 * 32 * 32:
        raise DatasetFormatError(f"{path}: 'data' is {data.dtype} {data.shape}, expected uint8 (N, 3072)")
    if labels.shape != (len(data),) or (labels.size and (labels.min() < 0 or labels.max() > 9)):
        raise DatasetFormatError(f"{path}: 'labels' must be {len(data)} ints in 0..9")
    return data.reshape(-1, *IMAGE_SHAPE), labels             # (N, 3072) -> (N, 3, 32, 32)


def _text(value):
    return value.decode("latin1") if isinstance(value, bytes) else value


def _load_dict(path):
    """A pickled dict with its keys as str (Python 2 pickles give bytes keys)."""
    obj = load_pickle(path)
    if not isinstance(obj, dict):
        raise DatasetFormatError(f"{path}: expected a pickled dict, got {type(obj).__name__}")
    return {_text(k): v for k, v in obj.items()}


def _read_classes(path):
    meta = _load_dict(path)
    if "label_names" not in meta:
        raise DatasetFormatError(f"{path}: no 'label_names' in batches.meta")
    return [_text(name) for name in meta["label_names"]]


class CIFAR10(ArrayDataset):
    """CIFAR-10: `data` uint8 (N, 3, 32, 32), `targets` int64 (N,), `classes` ten names.

    >>> train = CIFAR10("../shared/data", train=True)     # 50,000 images
    >>> train, val = train_val_split(train, 5000)          # fixed held-out last 5,000

    root: folder holding cifar-10-batches-py/ (or the archive
    cifar-10-python.tar.gz); None means $MINIGRAD_DATA or ~/.cache/minigrad.
    download=True fetches the archive into root when files are missing.
    transform and target_transform work as in torchvision (see ArrayDataset).
    """

    def __init__(self, root=None, train=True, transform=None, target_transform=None, download=False):
        self.root = data_root(root)
        self.train = bool(train)
        names = (TRAIN_FILES if self.train else TEST_FILES) + [META_FILE]
        folder = _batch_folder(self.root)
        missing = [name for name in names if not (folder / name).is_file()]
        archive = self.root / ARCHIVE.filename
        if missing and not archive.is_file() and download:
            download_resource(ARCHIVE, local_mirror_urls(ARCHIVE.filename) or URLS, self.root)
        if missing and archive.is_file():
            folder = extract_archive(archive, self.root, set(missing))
            missing = [name for name in names if not (folder / name).is_file()]
        if missing:
            raise DatasetNotFoundError(
                _missing_message(missing, folder, self.root, self.train, archive.is_file()))
        parts = [_read_batch(folder / name) for name in names[:-1]]
        images = numpy.concatenate([p[0] for p in parts]) if len(parts) > 1 else parts[0][0]
        labels = numpy.concatenate([p[1] for p in parts]) if len(parts) > 1 else parts[0][1]
        super().__init__(images, labels, _read_classes(folder / META_FILE),
                         transform=transform, target_transform=target_transform)
        self.folder = folder


def _missing_message(missing, folder, root, train, archive_present):
    split = "training" if train else "test"
    archive = (f"{root / ARCHIVE.filename} does not contain them" if archive_present
               else f"no {ARCHIVE.filename} in {root}")
    text = (
        f"CIFAR-10 {split} split: missing file(s) {', '.join(missing)} in {folder} ({archive}).\n"
        f"Pass download=True (the examples download unless --no-download) to fetch {ARCHIVE.filename} "
        f"from {URLS[0]} (SHA-256 {ARCHIVE.sha256}), "
        f"or download it by hand, place it in {root} (it is extracted on first use) "
        f"or extract it there so that {root / FOLDER} holds the files."
    )
    if not train:
        text += ("\nSome copies hold only the training set; then hold out a validation split "
                 "with minigrad.data.train_val_split(CIFAR10(root, train=True), 5000) and report "
                 "it as validation accuracy, not test accuracy.")
    return text
