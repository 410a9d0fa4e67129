"""Import weights saved by PyTorch: a `state_dict` becomes a dict of NumPy arrays.

    from minigrad.models import torchvision_resnet18
    from minigrad.utils.torch_import import load_torch_state_dict

    model = torchvision_resnet18()
    model.load_state_dict(load_torch_state_dict("resnet18-f37072fd.pth"))

A PyTorch `state_dict` is an ordered mapping from dotted names
(``layer1.0.conv1.weight``) to tensors. minigrad's Module uses the same
dotted names for the same structure, and the same memory layouts (conv
weights (F, C, KH, KW), linear weights (out, in)), so importing is only
"tensor -> NumPy array" for every entry; no transposes.

Accepted inputs:

    a .npz file        numpy.load, no PyTorch needed (also what Module.save writes)
    a .pt/.pth file    torch.load(path, map_location="cpu", weights_only=True); needs torch.
                       weights_only=True makes torch refuse pickled code, so loading a
                       downloaded file cannot run anything.
    a dict             values may be torch tensors, minigrad Tensors or arrays

Two common wrappings are undone: a training checkpoint that stores the weights
under "state_dict" or "model", and the "module." prefix that
torch.nn.DataParallel adds to every name.

minigrad never imports torch at module level: torch is optional, and only
reading a .pt/.pth file needs it. Without torch, convert once on a machine
that has it (the error message below prints these three lines).
"""
import os
from collections import OrderedDict
from collections.abc import Mapping

import numpy

CONVERT_SNIPPET = (
    "    import numpy, torch\n"
    "    state = torch.load(\"{path}\", map_location=\"cpu\", weights_only=True)\n"
    "    numpy.savez(\"{npz}\", **{{name: t.numpy() for name, t in state.items()}})"
)
WRAPPER_KEYS = ("state_dict", "model")
DATA_PARALLEL_PREFIX = "module."


def _to_numpy(name, value):
    """One state_dict entry as a NumPy array (a copy owned by the caller)."""
    if isinstance(value, numpy.ndarray):
        return value
    if hasattr(value, "detach") and hasattr(value, "cpu"):          # a torch tensor
        value = value.detach().cpu()
        try:
            return value.numpy().copy()
        except TypeError:               # bfloat16 and friends have no NumPy dtype
            return value.float().numpy().copy()
    if hasattr(value, "numpy") and callable(value.numpy):          # a minigrad Tensor
        return numpy.array(value.numpy())
    if isinstance(value, (int, float, bool, numpy.generic, list, tuple)):
        return numpy.asarray(value)
    raise TypeError(
        f"load_torch_state_dict: entry {name!r} is a {type(value).__name__}, expected a tensor or an array"
    )


def _unwrap(state, source):
    """The weights mapping inside a checkpoint dict, with DataParallel's prefix removed."""
    for key in WRAPPER_KEYS:
        if key in state and isinstance(state[key], Mapping):
            state = state[key]
            break
    if not isinstance(state, Mapping):
        raise TypeError(f"load_torch_state_dict: {source} holds a {type(state).__name__}, expected a state_dict (a dict)")
    names = list(state)
    if names and all(isinstance(n, str) and n.startswith(DATA_PARALLEL_PREFIX) for n in names):
        state = OrderedDict((n[len(DATA_PARALLEL_PREFIX):], state[n]) for n in names)
    return state


def _read_torch_file(path):
    try:
        import torch
    except ImportError:
        npz = os.path.splitext(path)[0] + ".npz"
        raise ImportError(
            f"load_torch_state_dict: reading {path} needs PyTorch (pip install torch). Without it, "
            f"convert the file to .npz once on a machine that has PyTorch:\n"
            + CONVERT_SNIPPET.format(path=path, npz=npz)
            + f"\nthen load {npz} instead."
        ) from None
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # torch raises UnpicklingError, RuntimeError, ... for bad files
        raise ValueError(
            f"load_torch_state_dict: torch.load could not read {path} with weights_only=True "
            f"({type(error).__name__}: {str(error).splitlines()[0] if str(error) else ''})"
        ) from None


def load_torch_state_dict(path_or_dict):
    """An OrderedDict name -> numpy.ndarray from a .pt/.pth/.npz file or a state_dict.

    The result goes straight into Module.load_state_dict. Raises
    FileNotFoundError for a missing file, ImportError (with the conversion
    recipe) for a .pt/.pth file when torch is not installed.
    """
    if isinstance(path_or_dict, Mapping):
        source, state = "the given dict", path_or_dict
    else:
        path = os.fspath(path_or_dict)
        if not os.path.isfile(path):
            raise FileNotFoundError(f"load_torch_state_dict: no file {path}")
        source = path
        if path.endswith(".npz"):
            with numpy.load(path, allow_pickle=False) as archive:
                state = OrderedDict((name, archive[name]) for name in archive.files)
        else:
            state = _read_torch_file(path)
    state = _unwrap(state, source)
    return OrderedDict((str(name), _to_numpy(name, value)) for name, value in state.items())
