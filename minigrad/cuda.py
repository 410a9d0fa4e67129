"""`minigrad.cuda.is_available()`, as in PyTorch."""
from minigrad import backend


def is_available():
    """True when CuPy is installed and a CUDA device answers."""
    return backend.gpu_available()


def device_count():
    """How many CUDA devices minigrad can use (one: it runs on the current device), 0 without a GPU."""
    return 1 if is_available() else 0
