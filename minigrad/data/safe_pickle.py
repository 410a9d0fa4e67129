"""Load the CIFAR-10 python pickles without letting a pickle run code.

Why this file exists
--------------------
A pickle is a small program for a stack machine. Its GLOBAL opcode names any
importable object (``os.system``, ``builtins.eval``) and REDUCE calls it with
arguments from the stack, so ``pickle.load`` on a crafted file runs arbitrary
code. A data set downloaded from the internet must not be trusted that far.

The standard defence (see the "Restricting Globals" section of the pickle
docs) is a ``pickle.Unpickler`` whose ``find_class`` decides which globals the
file may use. The official CIFAR-10 batches were written by Python 2 cPickle;
``pickletools.dis`` on ``data_batch_1`` shows exactly three globals::

    numpy.core.multiarray._reconstruct   # make an empty array of a subtype
    numpy.ndarray                        # the subtype passed to it
    numpy.dtype                          # the element type, here 'u1'

(``batches.meta`` uses none.) NumPy 2 renamed ``numpy.core`` to
``numpy._core``, so a file written by NumPy 2 names that path; both map to the
same guarded function. A batch pickled again by Python 3 with protocol 2 names
one more, ``_codecs.encode``: protocol 2 has no opcode for bytes, so each bytes
object (the images' raw bytes, too) is rebuilt as encode(text, "latin1"). That
global is allowed for exactly that call and nothing else. Everything else is
refused with UnsafePickleError.

The three allowed globals are wrapped, not handed out raw:
- ``_reconstruct`` only builds a plain ``numpy.ndarray``;
- ``dtype`` only builds numeric types (no ``object`` dtype, whose arrays
  could hold arbitrary Python objects).
After loading, every array in the result is checked again to hold plain numbers.
"""
import pickle

import numpy

from minigrad.data.errors import DatasetFormatError, UnsafePickleError

# Numeric dtype codes a data file may use: unsigned/signed ints, floats, bool.
_ALLOWED_DTYPES = {
    "u1", "u2", "u4", "u8", "i1", "i2", "i4", "i8",
    "f2", "f4", "f8", "b1", "b", "B", "h", "H", "i", "I", "l", "L", "q", "Q",
    "f", "d", "e", "?",
}


def _as_text(value):
    """Python 2 strings arrive as bytes when loading with encoding='bytes'."""
    return value.decode("latin1") if isinstance(value, bytes) else value


def _safe_dtype(spec, align=False, copy=True):
    """numpy.dtype(spec) for numeric specs only."""
    text = _as_text(spec)
    if not isinstance(text, str) or text.lstrip("<>|=") not in _ALLOWED_DTYPES:
        raise UnsafePickleError(f"refusing dtype {spec!r}: only plain numeric dtypes are allowed")
    return numpy.dtype(text, align=bool(align), copy=bool(copy))


def _safe_reconstruct(subtype, shape, typecode):
    """An empty ndarray of `shape`; BUILD then fills in dtype, shape and bytes."""
    if subtype is not numpy.ndarray:
        raise UnsafePickleError(f"refusing to build array subtype {subtype!r}")
    return numpy.ndarray(shape, dtype=_safe_dtype(typecode))


def _safe_encode(text, encoding="utf-8"):
    """bytes from latin-1 text: how protocol 2 rebuilds a Python 3 bytes object, and all it may do."""
    if not isinstance(text, str) or encoding not in ("latin1", "latin-1"):
        raise UnsafePickleError(f"refusing _codecs.encode({type(text).__name__}, {encoding!r}): only "
                                "encode(text, 'latin1'), which rebuilds bytes, is allowed")
    return text.encode("latin1")


_ALLOWED_GLOBALS = {
    ("_codecs", "encode"): _safe_encode,
    ("numpy.core.multiarray", "_reconstruct"): _safe_reconstruct,
    ("numpy._core.multiarray", "_reconstruct"): _safe_reconstruct,
    ("numpy", "ndarray"): numpy.ndarray,
    ("numpy", "dtype"): _safe_dtype,
}


class RestrictedUnpickler(pickle.Unpickler):
    """An Unpickler that resolves only the globals in _ALLOWED_GLOBALS."""

    def find_class(self, module, name):
        try:
            return _ALLOWED_GLOBALS[(module, name)]
        except KeyError:
            raise UnsafePickleError(f"refusing to load global '{module}.{name}'") from None

    def persistent_load(self, pid):
        raise UnsafePickleError("refusing persistent ids")


def _check_plain(obj, depth=0):
    """Walk the loaded object: only dict/list/tuple/str/bytes/numbers/None and numeric arrays."""
    if depth > 20:
        raise UnsafePickleError("object nests too deeply")
    if isinstance(obj, numpy.ndarray):
        if obj.dtype.hasobject or obj.dtype.kind not in "uifb":
            raise UnsafePickleError(f"refusing array of dtype {obj.dtype}")
    elif isinstance(obj, dict):
        for key, value in obj.items():
            _check_plain(key, depth + 1)
            _check_plain(value, depth + 1)
    elif isinstance(obj, (list, tuple)):
        for item in obj:
            _check_plain(item, depth + 1)
    elif not isinstance(obj, (str, bytes, int, float, bool, type(None))):
        raise UnsafePickleError(f"refusing object of type {type(obj).__name__}")


def load_pickle(path):
    """Load a pickle file with RestrictedUnpickler; errors name the file.

    Python 2 `str` values come back as `bytes` (encoding='bytes'), which is
    what the raw array bytes inside need. Raises UnsafePickleError if the file
    asks for anything beyond plain data and numeric NumPy arrays, and
    DatasetFormatError if it is not a readable pickle at all.
    """
    try:
        with open(path, "rb") as file:
            obj = RestrictedUnpickler(file, encoding="bytes").load()
        _check_plain(obj)
    except UnsafePickleError as error:
        raise UnsafePickleError(
            f"{path}: {error}. This file is not a plain data pickle and was not loaded "
            "(nothing in it was executed); delete it and get the official file again."
        ) from None
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, IndexError, KeyError) as error:
        raise DatasetFormatError(
            f"{path}: not a readable data pickle ({type(error).__name__}: {error}); "
            "the file may be truncated or corrupt: delete it and get the official file again."
        ) from None
    return obj
