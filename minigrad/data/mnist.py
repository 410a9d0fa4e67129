"""MNIST: 70,000 handwritten digits, 28 x 28 grey pixels, read from the official IDX files.

The IDX format (from the MNIST page) is a big-endian header then raw bytes::

    bytes 0-1   0x0000
    byte  2     element type: 0x08 = unsigned byte
    byte  3     number of dimensions d
    4 * d bytes each dimension as a big-endian uint32
    rest        the elements, row-major, prod(dimensions) of them

Read as one big-endian int32, bytes 0-3 are the "magic number":
2051 = 0x0803 for images (ubyte, 3 dims: N, 28, 28) and
2049 = 0x0801 for labels (ubyte, 1 dim: N).

Files: train-images-idx3-ubyte, train-labels-idx1-ubyte (60,000),
t10k-images-idx3-ubyte, t10k-labels-idx1-ubyte (10,000), each gzip-compressed
(.gz, as distributed) or already uncompressed. They are looked for in
`root`, `root/mnist` and `root/MNIST/raw`; downloads go to `root/mnist`.
The images are a read-only view of the decompressed file bytes (no copy);
batches taken from them are ordinary writable arrays.
"""
import gzip
import zlib
from pathlib import Path

import numpy

from minigrad.data.dataset import ArrayDataset
from minigrad.data.download import Resource, data_root, download_resource, local_mirror_urls, mirror_urls
from minigrad.data.errors import DatasetFormatError, DatasetNotFoundError

IMAGES_MAGIC = 2051
LABELS_MAGIC = 2049
UBYTE = 0x08

MIRRORS = [
    "https://ossci-datasets.s3.amazonaws.com/mnist/",
    "http://yann.lecun.com/exdb/mnist/",
]

# SHA-256 (and MD5) of the official .gz archives; see download.py for where they come from.
RESOURCES = {
    "train-images-idx3-ubyte.gz": Resource(
        "train-images-idx3-ubyte.gz",
        "440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609",
        9912422, "f68b3c2dcbeaaa9fbdd348bbdeb94873"),
    "train-labels-idx1-ubyte.gz": Resource(
        "train-labels-idx1-ubyte.gz",
        "3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c",
        28881, "d53e105ee54ea40749a09fcbcd1e9432"),
    "t10k-images-idx3-ubyte.gz": Resource(
        "t10k-images-idx3-ubyte.gz",
        "8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6",
        1648877, "9fb629c4189551a2d022fa330f9573f3"),
    "t10k-labels-idx1-ubyte.gz": Resource(
        "t10k-labels-idx1-ubyte.gz",
        "f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6",
        4542, "ec29112dd5afa0611ce80d1b7f02629c"),
}

SPLITS = {
    True: ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    False: ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}


def parse_idx(raw, expected_magic, source="<bytes>"):
    """Decode IDX bytes into a uint8 array, checking magic, header and length."""
    if len(raw) < 4:
        raise DatasetFormatError(f"{source}: only {len(raw)} bytes, too short for an IDX header")
    magic = int.from_bytes(raw[:4], "big")
    if magic != expected_magic:
        raise DatasetFormatError(
            f"{source}: magic number {magic}, expected {expected_magic} "
            f"({'images' if expected_magic == IMAGES_MAGIC else 'labels'} IDX file); "
            "wrong file, or the file is corrupt"
        )
    ndim = raw[3]
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise DatasetFormatError(f"{source}: truncated header ({len(raw)} bytes)")
    dims = tuple(int.from_bytes(raw[4 + 4 * k: 8 + 4 * k], "big") for k in range(ndim))
    expected = header + int(numpy.prod(dims, dtype=numpy.int64))
    if len(raw) != expected:
        raise DatasetFormatError(
            f"{source}: header says dimensions {dims}, i.e. {expected} bytes in all, "
            f"but the file holds {len(raw)} bytes (truncated or corrupt)"
        )
    return numpy.frombuffer(raw, dtype=numpy.uint8, offset=header).reshape(dims)


def read_idx(path, expected_magic):
    """Read an IDX file, gzip-compressed if its name ends in .gz."""
    path = Path(path)
    try:
        raw = gzip.decompress(path.read_bytes()) if path.suffix == ".gz" else path.read_bytes()
    except (OSError, EOFError, zlib.error) as error:
        raise DatasetFormatError(
            f"{path}: cannot read ({type(error).__name__}: {error}); delete it and get it again"
        ) from None
    return parse_idx(raw, expected_magic, source=str(path))


def _search_folders(root):
    """root itself, root/mnist (where downloads go), and torchvision's root/MNIST/raw."""
    return [root, root / "mnist", root / "MNIST" / "raw"]


def _find(name, folders):
    """The first existing `name.gz` or `name` in folders, else None."""
    for folder in folders:
        for candidate in (folder / f"{name}.gz", folder / name):
            if candidate.is_file():
                return candidate
    return None


class MNIST(ArrayDataset):
    """The MNIST digits: `data` uint8 (N, 1, 28, 28), `targets` int64 (N,) in 0..9.

    >>> train = MNIST("../shared/data", train=True)     # 60,000 images
    >>> test = MNIST("../shared/data", train=False)     # 10,000 images

    root: folder holding the four files (or a folder `mnist` inside it);
    None means $MINIGRAD_DATA or ~/.cache/minigrad. download=True fetches
    missing files into root/mnist, checking their SHA-256. transform and
    target_transform work as in torchvision (see ArrayDataset).
    """

    classes = [str(digit) for digit in range(10)]

    def __init__(self, root=None, train=True, transform=None, target_transform=None, download=False):
        self.root = data_root(root)
        self.train = bool(train)
        names = SPLITS[self.train]
        folders = _search_folders(self.root)
        paths = [_find(name, folders) for name in names]
        if None in paths:
            missing = [name for name, path in zip(names, paths) if path is None]
            if not download:
                raise DatasetNotFoundError(_missing_message(missing, folders, self.root))
            _download(missing, self.root / "mnist")
            paths = [_find(name, folders) for name in names]
        images = read_idx(paths[0], IMAGES_MAGIC)
        labels = read_idx(paths[1], LABELS_MAGIC)
        _check_pair(images, labels, paths)
        super().__init__(images[:, None, :, :], labels.astype(numpy.int64), self.classes,
                         transform=transform, target_transform=target_transform)
        self.paths = paths


def _check_pair(images, labels, paths):
    if images.ndim != 3 or images.shape[1:] != (28, 28):
        raise DatasetFormatError(f"{paths[0]}: images have shape {images.shape}, expected (N, 28, 28)")
    if labels.ndim != 1 or len(labels) != len(images):
        raise DatasetFormatError(
            f"{paths[1]}: {labels.shape} labels for {len(images)} images in {paths[0]}"
        )
    if labels.size and labels.max() > 9:
        raise DatasetFormatError(f"{paths[1]}: label {labels.max()} is not a digit 0..9")


def _missing_message(missing, folders, root):
    lines = [f"MNIST file {name}.gz (or uncompressed {name}) not found." for name in missing]
    looked = ", ".join(str(f) for f in folders)
    urls = "\n".join(f"  {url}" for name in missing       # your mirror ($MINIGRAD_DATA_MIRROR), then the official
                     for url in local_mirror_urls(f"{name}.gz") + [base + f"{name}.gz" for base in MIRRORS])
    return (
        "\n".join(lines) + f"\nLooked in: {looked}\n"
        f"Pass download=True (the examples download unless --no-download) to fetch it into {root / 'mnist'}, "
        f"or download it by hand from\n{urls}\n"
        f"and place it in {root / 'mnist'} (or point root / $MINIGRAD_DATA at the folder holding it)."
    )


def _download(missing, folder):
    for name in missing:
        resource = RESOURCES[f"{name}.gz"]
        download_resource(resource, mirror_urls(MIRRORS, resource.filename), folder)
