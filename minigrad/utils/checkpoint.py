"""Checkpoints: everything needed to stop a training run and continue it exactly.

    save_checkpoint("runs/cifar/last.ckpt", model, optimizer, scheduler,
                    epoch=epoch, best_metric=best_val_acc, loaders={"train": train_loader},
                    extra={"history": history.rows})
    ...
    meta = load_checkpoint("runs/cifar/last.ckpt", model, optimizer, scheduler,
                           loaders={"train": train_loader})
    start_epoch = meta["epoch"] + 1

What one file holds (a pickled dict of plain Python data and NumPy arrays)::

    format, version      "minigrad-checkpoint", 1
    model                model.state_dict()       name -> array
    optimizer            optimizer.state_dict()   moments, step counts, hyperparameters
    scheduler            scheduler.state_dict()   the schedule's position
    rng                  minigrad.get_rng_state() Python's and NumPy's global generators
    loaders              {name: loader.state_dict()}  each DataLoader's shuffling generator
    epoch, best_metric, extra

Resuming exactly means restoring all of it: the weights, the optimizer's
memory, the learning rate's place in its schedule, and every random generator,
so the next epoch shuffles, augments and drops out exactly as it would have.
Arrays are saved on the host (GPU arrays are copied to NumPy) and each
load_state_dict puts them back on its own device.

Safe to load. A pickle can name any Python callable and call it, so loading an
untrusted pickle can run code. load_checkpoint uses an Unpickler that accepts
plain containers, numbers, strings and numeric NumPy arrays and refuses every
other global (see "Restricting Globals" in the pickle documentation). It is
written with pickle protocol 4, whose arrays need only the globals allowed
below.

Safe to save. The file is written to a temporary file in the same folder,
flushed and fsync'ed to disk, then renamed over the old checkpoint with
os.replace, which is atomic: a run killed mid-save (Ctrl-C, out of memory,
power cut) leaves either the old checkpoint or the new one, never half a file.
"""
import pickle
from pathlib import Path

import numpy

from minigrad import backend
from minigrad.random import get_rng_state, set_rng_state
from minigrad.tensor import Tensor
from minigrad.utils.atomic import write_atomically

FORMAT = "minigrad-checkpoint"
VERSION = 1
PROTOCOL = 4  # protocol 5 would pickle arrays through numpy's _frombuffer; 4 keeps the allow-list short


class CheckpointError(ValueError):
    """A checkpoint file exists but cannot be used: corrupt, truncated, unsafe or mismatched."""


# ---------------------------------------------------------------------- saving
def to_plain(value, tensor=None, who="save_checkpoint", where="obj"):
    """A copy of `value` made only of dict/list/tuple/str/bytes/numbers/None and NumPy arrays.

    Tensors become what tensor(t) returns, by default a NumPy array; CuPy arrays are copied to the
    host and NumPy arrays copied, so that the file is a snapshot. who and where name the caller and
    the place of a value that cannot be saved (where: its path inside `value`, e.g. obj['net']).
    """
    if isinstance(value, Tensor):
        return tensor(value) if tensor is not None else backend.to_numpy(value.array).copy()
    if backend.is_gpu_array(value):
        return backend.to_numpy(value)
    if isinstance(value, numpy.ndarray):
        if value.dtype.hasobject:
            raise TypeError(f"{who}: {where} is an array of Python objects; only numeric arrays can be saved")
        return value.copy()
    if isinstance(value, numpy.generic):
        return value
    if isinstance(value, dict):                       # OrderedDict too: saved as a plain dict
        return {key: to_plain(item, tensor, who, f"{where}[{key!r}]") for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(to_plain(item, tensor, who, f"{where}[{index}]") for index, item in enumerate(value))
    if value is None or isinstance(value, (str, bytes, bool, int, float)):
        return value
    raise TypeError(
        f"{who}: cannot save a {type(value).__name__} at {where} ({value!r:.80}); save plain data: tensors, "
        "arrays, numbers, strings and dicts/lists/tuples of them (for a model or an optimizer, its state_dict())"
    )


def _named_loaders(loaders):
    """{name: loader} from None, one loader, or a dict."""
    if loaders is None:
        return {}
    if isinstance(loaders, dict):
        return loaders
    return {"train": loaders}


def _write_payload(file, payload):
    """Serialise the checkpoint dict into an open binary file."""
    pickle.dump(payload, file, protocol=PROTOCOL)


def save_checkpoint(path, model, optimizer=None, scheduler=None, epoch=None, best_metric=None,
                    extra=None, loaders=None):
    """Write a checkpoint to `path` atomically; returns the path.

    model, optimizer, scheduler: objects with state_dict() (None to skip).
    loaders: a DataLoader or {name: DataLoader} whose shuffling state to keep.
    extra: any dict of plain data (a metric history, an early-stopping state, the config).
    """
    path = Path(path)
    payload = {
        "format": FORMAT,
        "version": VERSION,
        "model": to_plain(model.state_dict()) if model is not None else None,
        "optimizer": to_plain(optimizer.state_dict()) if optimizer is not None else None,
        "scheduler": to_plain(scheduler.state_dict()) if scheduler is not None else None,
        "rng": to_plain(get_rng_state()),
        "loaders": {name: to_plain(loader.state_dict())
                    for name, loader in _named_loaders(loaders).items()},
        "epoch": epoch,
        "best_metric": to_plain(best_metric),
        "extra": to_plain(extra) if extra is not None else {},
    }
    return write_atomically(path, lambda file: _write_payload(file, payload))


# ---------------------------------------------------------------------- loading
_NUMERIC_KINDS = "biufc"


def _safe_dtype(spec, align=False, copy=True):
    """numpy.dtype for numeric types only (an object dtype could smuggle in Python objects)."""
    dtype = numpy.dtype(spec, align=bool(align), copy=bool(copy))
    if dtype.kind not in _NUMERIC_KINDS or dtype.hasobject:
        raise CheckpointError(f"refusing dtype {spec!r}: only numeric dtypes are allowed")
    return dtype


def _safe_reconstruct(subtype, shape, typecode):
    """An empty plain ndarray; the pickle's BUILD step fills in its dtype, shape and bytes."""
    if subtype is not numpy.ndarray:
        raise CheckpointError(f"refusing array subtype {subtype!r}")
    return numpy.ndarray.__new__(numpy.ndarray, shape, dtype=numpy.dtype(typecode))


def _safe_scalar(dtype, raw=None):
    """A NumPy scalar (numpy.float32(0.9), numpy.int64(3)) of a numeric dtype."""
    if not isinstance(dtype, numpy.dtype) or dtype.kind not in _NUMERIC_KINDS or dtype.hasobject:
        raise CheckpointError(f"refusing scalar of dtype {dtype!r}")
    return numpy.frombuffer(raw, dtype=dtype, count=1)[0]


_ALLOWED_GLOBALS = {
    ("numpy._core.multiarray", "_reconstruct"): _safe_reconstruct,
    ("numpy.core.multiarray", "_reconstruct"): _safe_reconstruct,   # files written by NumPy 1.x
    ("numpy._core.multiarray", "scalar"): _safe_scalar,
    ("numpy.core.multiarray", "scalar"): _safe_scalar,
    ("numpy", "ndarray"): numpy.ndarray,
    ("numpy", "dtype"): _safe_dtype,
}


class _RestrictedUnpickler(pickle.Unpickler):
    def find_class(self, module, name):
        try:
            return _ALLOWED_GLOBALS[(module, name)]
        except KeyError:
            raise CheckpointError(f"refusing to load global {module}.{name}") from None

    def persistent_load(self, pid):
        raise CheckpointError("refusing persistent ids")


def _check_array_dtypes(value):
    """After loading, every array must hold numbers (BUILD could have set any dtype)."""
    if isinstance(value, numpy.ndarray):
        if value.dtype.kind not in _NUMERIC_KINDS or value.dtype.hasobject:
            raise CheckpointError(f"refusing array of dtype {value.dtype}")
    elif isinstance(value, dict):
        for item in value.values():
            _check_array_dtypes(item)
    elif isinstance(value, (list, tuple)):
        for item in value:
            _check_array_dtypes(item)


def safe_unpickle(file, what):
    """Unpickle plain data and numeric arrays from an open binary file; anything else is refused
    (CheckpointError naming `what`) and nothing in the file is run."""
    try:
        payload = _RestrictedUnpickler(file).load()
        _check_array_dtypes(payload)
    except CheckpointError as error:
        raise CheckpointError(f"{what} is unsafe or corrupt: {error}; nothing in it was run") from None
    except Exception as error:  # truncated or garbage bytes raise many kinds of error
        raise CheckpointError(f"{what} is corrupt or truncated ({type(error).__name__}: {error})") from None
    return payload


def read_checkpoint(path):
    """The checkpoint dict stored at `path`, loaded safely; nothing is restored."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(
            f"checkpoint {path} not found"
            + (" (it is a folder)" if path.is_dir() else "")
            + "; check the path, or start without --resume"
        )
    with open(path, "rb") as file:
        payload = safe_unpickle(file, f"checkpoint {path}")
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise CheckpointError(f"{path} is not a minigrad checkpoint (no '{FORMAT}' header)")
    if payload.get("version") != VERSION:
        raise CheckpointError(
            f"checkpoint {path} has format version {payload.get('version')}, this minigrad reads {VERSION}"
        )
    return payload


def load_checkpoint(path, model=None, optimizer=None, scheduler=None, loaders=None, restore_rng=True):
    """Restore what was saved at `path` into the given objects; returns the metadata.

    Every object passed must have been saved: asking to restore an optimizer
    into a run whose checkpoint has none is an error, not a silent fresh start.
    Returns {"epoch", "best_metric", "extra"}.
    """
    payload = read_checkpoint(path)
    targets = [("model", model), ("optimizer", optimizer), ("scheduler", scheduler)]
    for name, target in targets:
        if target is None:
            continue
        if payload[name] is None:
            raise CheckpointError(f"checkpoint {path} holds no {name} state, but a {name} was given to restore")
        try:
            target.load_state_dict(payload[name])
        except (KeyError, ValueError, TypeError, RuntimeError) as error:
            raise CheckpointError(f"checkpoint {path}: cannot restore the {name}: {error}") from error
    for name, loader in _named_loaders(loaders).items():
        if name not in payload["loaders"]:
            raise CheckpointError(
                f"checkpoint {path} holds no state for loader {name!r} (it has {sorted(payload['loaders'])})"
            )
        loader.load_state_dict(payload["loaders"][name])
    if restore_rng:
        set_rng_state(payload["rng"])
    return {"epoch": payload["epoch"], "best_metric": payload["best_metric"], "extra": payload["extra"]}
