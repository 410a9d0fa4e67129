"""One seed for everything minigrad draws from: Python's `random`, NumPy, and CuPy if in use."""
import random as _python_random

import numpy

from minigrad import backend


def manual_seed(seed):
    """Seed Python, NumPy's global generator and (if the GPU is in use) CuPy."""
    seed = int(seed)
    _python_random.seed(seed)
    numpy.random.seed(seed % 2**32)
    if backend._cupy is not None:
        backend._cupy.random.seed(seed)
    return seed


def get_rng_state():
    """All random states, for a checkpoint: restore with set_rng_state for an exact resume."""
    state = {"python": _python_random.getstate(), "numpy": numpy.random.get_state()}
    if backend._cupy is not None:
        state["cupy"] = None  # CuPy's generator state cannot be exported; resumed GPU runs reseed
    return state


def set_rng_state(state):
    _python_random.setstate(state["python"])
    numpy.random.set_state(state["numpy"])
