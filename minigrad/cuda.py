"""`minigrad.cuda.is_available()`, as in PyTorch."""
from minigrad import backend


def is_available():
    """True when CuPy is installed and a CUDA device answers."""
    return backend.gpu_available()
