"""minigrad.save and minigrad.load: torch.save and torch.load for what training scripts save, safely.

    minigrad.save({"net": net.state_dict(), "acc": acc, "epoch": epoch}, "ckpt.pth")
    checkpoint = minigrad.load("ckpt.pth")
    net.load_state_dict(checkpoint["net"])

What can be saved: Tensors (they come back as Tensors, with requires_grad, on `map_location`
or the CPU), NumPy arrays of numbers, numbers, strings, bytes, None, and dicts, lists and tuples
of these: state dicts of models, optimizers and schedulers, and the dicts scripts build around
them. Anything else (a whole model object, a lambda, a custom class) is refused when saving,
with a message that says to save its state_dict() instead.

Why not pickle everything, as torch.save does? Loading a pickle can run any code the file
names. minigrad.load reads with the restricted unpickler of minigrad/utils/checkpoint.py, which
builds plain data and numeric arrays and refuses everything else: loading a file from someone
else cannot run code (torch.load's weights_only=True makes the same promise). The file is
written atomically (minigrad/utils/atomic.py).
"""
import os
import pickle

from minigrad import backend
from minigrad.tensor import Tensor
from minigrad.utils.atomic import write_atomically
from minigrad.utils.checkpoint import PROTOCOL, CheckpointError, safe_unpickle, to_plain

FORMAT = "minigrad-save"
VERSION = 1
TENSOR = "__minigrad_tensor__"        # a saved Tensor: {TENSOR: array, "requires_grad": bool}


def _tagged(tensor):
    """A Tensor as saved: its values and whether it requires grad, so that load builds it again."""
    return {TENSOR: backend.to_numpy(tensor.array).copy(), "requires_grad": bool(tensor.requires_grad)}


def _decode(value, device):
    if isinstance(value, dict):
        if TENSOR in value:
            return Tensor(backend.to_device(value[TENSOR], device), requires_grad=value["requires_grad"],
                          device=device)
        return {key: _decode(item, device) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(_decode(item, device) for item in value)
    return value


def save(obj, f):
    """torch.save: write `obj` (see the module docstring for what it may hold) to the path or open binary file f."""
    payload = {"format": FORMAT, "version": VERSION, "object": to_plain(obj, _tagged, "minigrad.save")}
    if hasattr(f, "write"):
        pickle.dump(payload, f, protocol=PROTOCOL)
        return
    write_atomically(os.fspath(f), lambda file: pickle.dump(payload, file, protocol=PROTOCOL))


def load(f, map_location=None, weights_only=True):
    """torch.load: what `save` wrote, with its Tensors on `map_location` (a device, its name, or None for
    the CPU). Only plain data is ever loaded, so weights_only=False is refused rather than honoured."""
    if weights_only is False:
        raise ValueError("minigrad.load: weights_only=False would allow a file to run code; minigrad loads plain "
                         "data only (tensors, arrays, numbers, strings, dicts and lists), which is all save writes")
    device = backend.normalize_device(map_location)
    if hasattr(f, "read"):
        payload = safe_unpickle(f, "the file given to minigrad.load")
    else:
        if not os.path.isfile(f):
            raise FileNotFoundError(f"minigrad.load: no file {os.fspath(f)!r}")
        with open(f, "rb") as file:
            payload = safe_unpickle(file, f"minigrad.load({os.fspath(f)!r})")
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise CheckpointError(f"minigrad.load: {f} was not written by minigrad.save")
    return _decode(payload["object"], device)
