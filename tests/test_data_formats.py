"""Writers for tiny files in the exact official MNIST and CIFAR-10 formats, used by the data tests.

- IDX: big-endian magic (2051 images / 2049 labels), dimensions, raw uint8 bytes, gzip.
- CIFAR-10 batches: the Python 2 cPickle protocol-2 byte stream the official
  files contain (same opcodes, same numpy globals), emitted opcode by opcode
  so that the fixtures do not depend on how this Python/NumPy would pickle.
- The tar.gz with the cifar-10-batches-py/ folder.

The tests at the bottom check the writers against the readers and pickletools.
"""
import gzip
import io
import pickletools
import struct
import tarfile

import numpy

from minigrad.data import cifar10, mnist
from minigrad.data.safe_pickle import load_pickle

CLASSES = [b"airplane", b"automobile", b"bird", b"cat", b"deer",
           b"dog", b"frog", b"horse", b"ship", b"truck"]


# ---------------------------------------------------------------------- IDX
def idx_bytes(array, magic):
    """The IDX encoding of a uint8 array: magic, dims (big-endian uint32), data."""
    array = numpy.ascontiguousarray(array, dtype=numpy.uint8)
    header = struct.pack(">I", magic) + b"".join(struct.pack(">I", d) for d in array.shape)
    return header + array.tobytes()


def write_mnist(folder, n_train=20, n_test=10, compress=True, seed=0):
    """Write the four MNIST files into folder; return {name: array} of what was written."""
    rng = numpy.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    written = {}
    for prefix, n in (("train", n_train), ("t10k", n_test)):
        images = rng.integers(0, 256, size=(n, 28, 28), dtype=numpy.uint8)
        labels = rng.integers(0, 10, size=n, dtype=numpy.uint8)
        for name, array, magic in ((f"{prefix}-images-idx3-ubyte", images, mnist.IMAGES_MAGIC),
                                   (f"{prefix}-labels-idx1-ubyte", labels, mnist.LABELS_MAGIC)):
            raw = idx_bytes(array, magic)
            if compress:
                (folder / f"{name}.gz").write_bytes(gzip.compress(raw))
            else:
                (folder / name).write_bytes(raw)
            written[name] = array
    return written


# ---------------------------------------------------------------------- Python 2 pickles
def _py2_int(value):
    if 0 <= value < 256:
        return b"K" + bytes([value])                                   # BININT1
    if 0 <= value < 65536:
        return b"M" + struct.pack("<H", value)                         # BININT2
    return b"J" + struct.pack("<i", value)                             # BININT


def _py2_str(value):
    if len(value) < 256:
        return b"U" + bytes([len(value)]) + value                      # SHORT_BINSTRING
    return b"T" + struct.pack("<I", len(value)) + value                # BINSTRING


def _py2_array(array):
    """numpy.core.multiarray._reconstruct(ndarray, (0,), 'b') then BUILD with the state tuple."""
    out = b"cnumpy.core.multiarray\n_reconstruct\n" + b"cnumpy\nndarray\n"
    out += _py2_int(0) + b"\x85" + _py2_str(b"b") + b"\x87R"          # TUPLE1, TUPLE3, REDUCE
    shape = b"(" + b"".join(_py2_int(d) for d in array.shape) + b"t"  # MARK ... TUPLE
    dtype = (b"cnumpy\ndtype\n" + _py2_str(array.dtype.str[1:].encode()) + _py2_int(0) + _py2_int(1)
             + b"\x87R" + b"(" + _py2_int(3) + _py2_str(b"|") + b"NNN"
             + b"J\xff\xff\xff\xff" + b"J\xff\xff\xff\xff" + _py2_int(0) + b"tb")
    state = b"(" + _py2_int(1) + shape + dtype + b"\x89" + _py2_str(array.tobytes()) + b"t"
    return out + state + b"b"                                          # BUILD


def _py2_value(value):
    if isinstance(value, numpy.ndarray):
        return _py2_array(value)
    if isinstance(value, bytes):
        return _py2_str(value)
    if isinstance(value, int):
        return _py2_int(value)
    if isinstance(value, list):
        return b"](" + b"".join(_py2_value(v) for v in value) + b"e"  # EMPTY_LIST MARK ... APPENDS
    if isinstance(value, dict):
        items = b"".join(_py2_value(k) + _py2_value(v) for k, v in value.items())
        return b"}(" + items + b"u"                                    # EMPTY_DICT MARK ... SETITEMS
    raise TypeError(f"no Python 2 pickle encoding for {type(value).__name__}")


def py2_pickle(value):
    """Protocol-2 pickle bytes as Python 2 cPickle wrote the CIFAR-10 files."""
    return b"\x80\x02" + _py2_value(value) + b"."


def cifar_batch(n, seed, name=b"training batch 1 of 5"):
    """A dict shaped like a CIFAR-10 batch: data (n, 3072) uint8, labels, batch_label, filenames."""
    rng = numpy.random.default_rng(seed)
    data = rng.integers(0, 256, size=(n, 3072), dtype=numpy.uint8)
    labels = [int(v) for v in rng.integers(0, 10, size=n)]
    filenames = [b"image_%05d.png" % i for i in range(n)]
    return {b"data": data, b"labels": labels, b"batch_label": name, b"filenames": filenames}


def meta_dict():
    return {b"num_cases_per_batch": 10000, b"label_names": list(CLASSES), b"num_vis": 3072}


def write_cifar(root, n_per_batch=4, test=True):
    """Write root/cifar-10-batches-py/ with five training batches (and test_batch); return the dicts."""
    folder = root / cifar10.FOLDER
    folder.mkdir(parents=True, exist_ok=True)
    batches = {}
    names = cifar10.TRAIN_FILES + (cifar10.TEST_FILES if test else [])
    for k, name in enumerate(names):
        batches[name] = cifar_batch(n_per_batch, seed=k, name=name.encode())
        (folder / name).write_bytes(py2_pickle(batches[name]))
    (folder / cifar10.META_FILE).write_bytes(py2_pickle(meta_dict()))
    return batches


def cifar_archive_bytes(n_per_batch=4, extra_members=(), with_test=True):
    """The bytes of a cifar-10-python.tar.gz holding tiny batches (plus any extra TarInfo, bytes)."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        folder = tarfile.TarInfo(cifar10.FOLDER)
        folder.type = tarfile.DIRTYPE
        tar.addfile(folder)
        contents = {name: py2_pickle(cifar_batch(n_per_batch, seed=k))
                    for k, name in enumerate(cifar10.TRAIN_FILES + (cifar10.TEST_FILES if with_test else []))}
        contents[cifar10.META_FILE] = py2_pickle(meta_dict())
        contents["readme.html"] = b"<html></html>"
        for name, data in contents.items():
            info = tarfile.TarInfo(f"{cifar10.FOLDER}/{name}")
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
        for info, data in extra_members:
            tar.addfile(info, io.BytesIO(data) if data is not None else None)
    return buffer.getvalue()


def globals_used(pickle_bytes):
    """The 'module name' strings of every GLOBAL opcode in a pickle."""
    return {arg for op, arg, _ in pickletools.genops(pickle_bytes) if op.name == "GLOBAL"}


def opcodes_used(pickle_bytes):
    return {op.name for op, _, _ in pickletools.genops(pickle_bytes)}


# ---------------------------------------------------------------------- tests of the writers
def test_idx_header_is_big_endian_magic_then_dims():
    raw = idx_bytes(numpy.zeros((2, 28, 28), numpy.uint8), 2051)
    assert raw[:4] == b"\x00\x00\x08\x03"
    assert struct.unpack(">III", raw[4:16]) == (2, 28, 28)
    assert len(raw) == 16 + 2 * 28 * 28


def test_py2_pickle_uses_only_the_official_globals():
    raw = py2_pickle(cifar_batch(3, seed=0))
    assert globals_used(raw) == {"numpy.core.multiarray _reconstruct", "numpy ndarray", "numpy dtype"}
    assert "BINUNICODE" not in opcodes_used(raw)  # Python 2 str only, like the real files


def test_py2_pickle_round_trips_through_the_safe_loader(tmp_path):
    batch = cifar_batch(3, seed=1)
    path = tmp_path / "data_batch_1"
    path.write_bytes(py2_pickle(batch))
    loaded = load_pickle(path)
    numpy.testing.assert_array_equal(loaded[b"data"], batch[b"data"])
    assert loaded[b"labels"] == batch[b"labels"]
    assert loaded[b"filenames"][2] == b"image_00002.png"
