"""Helpers around the engine: gradient checking, checkpoints, metrics, plots, and `minigrad.utils.data`.

Submodules load on first use, so `torch.utils.data.DataLoader` written as `minigrad.utils.data.DataLoader`
works after a plain `import minigrad`, as it does in PyTorch.
"""
import importlib

_SUBMODULES = {"atomic", "checkpoint", "cli", "data", "early_stopping", "gradcheck", "history", "metrics",
               "plots", "progress", "serialization", "torch_import", "training"}


def __getattr__(name):
    if name in _SUBMODULES:
        return importlib.import_module(f"minigrad.utils.{name}")
    raise AttributeError(f"module 'minigrad.utils' has no attribute {name!r}")
