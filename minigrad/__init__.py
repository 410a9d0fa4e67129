"""minigrad: a deep learning engine written from scratch on NumPy (CPU) and CuPy (GPU).

Reading order = import order: backend -> tensor -> function -> ops -> nn -> optim -> data -> utils.
The fast layer (minigrad/fast/, optional reading) plugs faster paths into the ops at the end.
"""
import importlib
import importlib.util
import sys
from pathlib import Path

import numpy


def _kernels_from_the_checkout():
    """`pip install` puts the repository's kernels/ folder inside minigrad, as minigrad.kernels. In a
    checkout run without installing (the examples add the repository to sys.path), load that folder
    under the same name, so that the same imports work."""
    if importlib.util.find_spec("minigrad.kernels") is not None:
        return
    folder = Path(__file__).resolve().parent.parent / "kernels"
    if not (folder / "__init__.py").is_file():
        return                                       # an install without kernels: the ops' imports will say so
    spec = importlib.util.spec_from_file_location("minigrad.kernels", folder / "__init__.py",
                                                  submodule_search_locations=[str(folder)])
    module = importlib.util.module_from_spec(spec)
    sys.modules["minigrad.kernels"] = module
    spec.loader.exec_module(module)


_kernels_from_the_checkout()

from minigrad import accelerator, backend, backends, cuda
from minigrad.backend import device
from minigrad.creation import (
    arange, empty, empty_like, eye, full, full_like, linspace, ones, ones_like, rand, rand_like,
    randint, randint_like, randn, randn_like, zeros, zeros_like,
)
from minigrad.grad_mode import enable_grad, is_grad_enabled, no_grad, set_grad_enabled
from minigrad.ops.activation import gelu, leaky_relu, log_softmax, relu, sigmoid, softmax, tanh
from minigrad.ops.elementwise import (
    abs, add, clamp, clip, div, exp, log, maximum, minimum, mul, neg, pow, sqrt, sub, where,
)
from minigrad.ops.matmul import matmul
from minigrad.ops.reduce import amax, amin, argmax, argmin, logsumexp, max, mean, min, std, sum, var
from minigrad.ops.shape import (
    broadcast_to, cat, chunk, concatenate, expand, flatten, pad, permute, reshape, split, squeeze,
    stack, transpose, unsqueeze,
)
from minigrad.random import get_rng_state, manual_seed, set_rng_state
from minigrad.tensor import Tensor, is_tensor, tensor
from minigrad import tensor_methods  # noqa: F401  (attaches operators to Tensor)
from minigrad.utils.gradcheck import gradcheck
from minigrad.utils.serialization import load, save
from minigrad import fast

fast.install()      # the ops' faster paths (minigrad/fast/): the same numbers; nothing compiles yet

float16, float32, float64 = numpy.float16, numpy.float32, numpy.float64
int32, int64, uint8, bool_ = numpy.int32, numpy.int64, numpy.uint8, numpy.bool_
float, double, long = float32, float64, int64

__version__ = "0.1.0"

_LAZY_SUBMODULES = {"nn", "optim", "data", "models", "utils", "vision"}


def __getattr__(name):
    """Import the bigger subpackages (nn, optim, data, models, utils, vision) on first use."""
    if name in _LAZY_SUBMODULES:
        return importlib.import_module(f"minigrad.{name}")
    raise AttributeError(f"module 'minigrad' has no attribute {name!r}")
