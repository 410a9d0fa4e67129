"""`torch.accelerator`: the one accelerator a script may use, if any (for minigrad, a CUDA GPU through CuPy).

    device = minigrad.accelerator.current_accelerator() if minigrad.accelerator.is_available() else "cpu"
"""
from minigrad import backend


def is_available():
    """True when a CUDA device answers (CuPy installed)."""
    return backend.gpu_available()


def current_accelerator():
    """device("cuda") when one is available, else None (as PyTorch returns)."""
    return backend.device("cuda") if is_available() else None
