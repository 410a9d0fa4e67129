"""Devices and array modules: the one place in minigrad that knows about CuPy.

A minigrad Tensor keeps its numbers in a NumPy array (device "cpu") or a CuPy
array (device "gpu", alias "cuda"). Every op is written once against an
"array module" ``xp``::

    xp = backend.array_module(x)     # numpy for CPU arrays, cupy for GPU arrays
    y = xp.exp(x)                    # same code on both devices

CuPy is imported lazily, on first use of the GPU, so the CPU path never
imports it and minigrad works where CuPy is not installed.

Host transfers. The GPU runs asynchronously: the host queues kernels and moves
on. Reading a GPU value on the host (``loss.item()``, ``float(t)``, ``if t:``,
``t.numpy()``) makes the host wait until the GPU has finished everything queued
before it, so a training step should do it rarely. Every such conversion in
minigrad goes through ``to_numpy`` below, which counts it::

    with backend.counting_host_transfers() as transfers:
        train_one_epoch(...)
    print(transfers.count)                  # GPU -> host conversions inside the block

``counting_host_transfers(count_cpu=True)`` counts NumPy arrays at the same
places too, so a test on a machine without a GPU can prove that a loop makes
no conversion (see tests/test_host_transfers.py).
"""
import contextlib

import numpy

CPU = "cpu"
GPU = "gpu"
_DEVICE_ALIASES = {"cpu": CPU, "gpu": GPU, "cuda": GPU, "cuda:0": GPU, "gpu:0": GPU}

GPU_INSTALL_HINT = (
    "install the GPU extra that matches the driver's CUDA version (the top right of `nvidia-smi`): "
    "`pip install -e \".[gpu-cuda12]\"` or `pip install -e \".[gpu-cuda13]\"` (CuPy with its CUDA libraries, and "
    "numba-cuda), on a machine with an NVIDIA GPU and driver; `python -m minigrad.doctor` shows what is there"
)

# What the GPU must do before minigrad uses it (probe_gpu), and what to do when it cannot.
_PROBE_HINTS = {
    "elementwise": "the driver is older than the CUDA that this CuPy was built for: compare `nvidia-smi` with "
                   "the CuPy package (cupy-cuda12x or cupy-cuda13x) and install the matching one",
    "matmul": "cuBLAS is missing or broken: install CuPy with its CUDA libraries, "
              "`pip install \"cupy-cuda12x[ctk]\"` (or cupy-cuda13x[ctk]), or the CUDA toolkit",
    "kernel": "CuPy cannot compile CUDA C (NVRTC is missing or does not match the driver): "
              "`pip install \"cupy-cuda12x[ctk]\"` (or cupy-cuda13x[ctk]) brings NVRTC",
}
_PROBE_KERNEL = r"""
extern "C" __global__ void minigrad_probe(const float* x, float* y, int n) {
    int i = blockDim.x * blockIdx.x + threadIdx.x;
    if (i < n) y[i] = 2.0f * x[i] + 1.0f;
}
"""


def probe_gpu(cupy):
    """None if `cupy` runs an elementwise op, a float32 matmul (cuBLAS) and a CUDA C kernel compiled here
    (NVRTC) with the right answers; else a sentence saying what failed and how to fix it. (Its reads
    of GPU values are not counted in host_transfers: they happen once, before the GPU is used.)"""
    def elementwise():
        return float((cupy.arange(4, dtype=cupy.float32) * 2).sum()) == 12.0

    def matmul():
        a = cupy.arange(6, dtype=cupy.float32).reshape(2, 3)
        return cupy.asnumpy(a @ a.T).tolist() == [[5.0, 14.0], [14.0, 50.0]]

    def kernel():
        function = cupy.RawKernel(_PROBE_KERNEL, "minigrad_probe")
        x = cupy.arange(5, dtype=cupy.float32)
        y = cupy.empty_like(x)
        function((1,), (32,), (x, y, numpy.int32(5)))
        return cupy.asnumpy(y).tolist() == [1.0, 3.0, 5.0, 7.0, 9.0]

    checks = (("elementwise", "an elementwise operation", elementwise),
              ("matmul", "a float32 matrix product", matmul),
              ("kernel", "compiling and launching a CUDA C kernel", kernel))
    for key, what, check in checks:
        try:
            correct = check()
        except Exception as error:
            return f"CuPy finds a GPU but {what} failed ({type(error).__name__}: {error}); {_PROBE_HINTS[key]}"
        if not correct:
            return f"CuPy finds a GPU but {what} gave a wrong answer; {_PROBE_HINTS[key]}"
    return None

_cupy = None          # the cupy module, once imported
_cupy_error = None    # why importing or using cupy failed, once known


class DeviceError(RuntimeError):
    """Raised when a device is unknown, unavailable, or two devices are mixed."""


class device:
    """torch.device: device("cuda"), device("cpu"), device("cuda", 0). Wherever minigrad takes a device
    (Tensor.to, Module.to, tensor(device=...)), a `device` works as its name does. `.type` is "cuda" or
    "cpu", as in PyTorch; minigrad's own name for the GPU is "gpu"."""

    def __init__(self, type, index=None):
        name = str(type) if index is None else f"{type}:{index}"
        self.kind = normalize_device(name)                       # checks the name: "cpu" or "gpu"
        self.type = "cuda" if self.kind == GPU else "cpu"
        self.index = None if index is None and ":" not in str(type) else int(str(name).rsplit(":", 1)[1])

    def __str__(self):
        return self.type if self.index is None else f"{self.type}:{self.index}"

    def __repr__(self):
        return f"device(type={self.type!r}" + ("" if self.index is None else f", index={self.index}") + ")"

    def __eq__(self, other):
        try:
            return normalize_device(other) == self.kind
        except DeviceError:
            return False

    def __hash__(self):
        return hash(self.kind)


def normalize_device(device):
    """Map 'cpu', 'gpu', 'cuda', 'cuda:0' (or a Tensor's .device) to 'cpu' or 'gpu'."""
    if device is None:
        return CPU
    name = str(device).lower()
    if name not in _DEVICE_ALIASES:
        raise DeviceError(
            f"unknown device {device!r}: expected one of 'cpu', 'gpu', 'cuda'"
        )
    return _DEVICE_ALIASES[name]


def _try_import_cupy():
    """Import CuPy and check that a CUDA device answers; remember any failure."""
    global _cupy, _cupy_error
    if _cupy is not None or _cupy_error is not None:
        return _cupy
    try:
        import cupy
    except Exception as error:  # ImportError, or a broken CUDA library
        _cupy_error = f"CuPy is not installed ({type(error).__name__}: {error})"
        return None
    try:
        if cupy.cuda.runtime.getDeviceCount() < 1:
            _cupy_error = "CuPy is installed but no CUDA device was found"
            return None
    except Exception as error:
        _cupy_error = f"CuPy is installed but CUDA is unusable ({type(error).__name__}: {error})"
        return None
    failure = probe_gpu(cupy)             # once per process: the answer is kept
    if failure is not None:
        _cupy_error = failure
        return None
    _cupy = cupy
    return _cupy


def gpu_available():
    """True when CuPy imports, a CUDA device answers, and it runs an elementwise op, a float32 matmul
    and a freshly compiled kernel (probe_gpu; checked once, on first use of the GPU)."""
    return _try_import_cupy() is not None


def cupy_module():
    """Return the cupy module, or raise one clear DeviceError saying what is missing."""
    cupy = _try_import_cupy()
    if cupy is None:
        raise DeviceError(f"the GPU was requested but {_cupy_error}; {GPU_INSTALL_HINT}")
    return cupy


def is_gpu_array(array):
    """True for a CuPy array, checked without importing CuPy."""
    return type(array).__module__.split(".")[0] == "cupy"


def array_module(array):
    """numpy for NumPy arrays and scalars, cupy for CuPy arrays."""
    return _cupy if is_gpu_array(array) else numpy


def device_of(array):
    """'gpu' for a CuPy array, else 'cpu'."""
    return GPU if is_gpu_array(array) else CPU


def module_for(device):
    """The array module that holds arrays of `device`."""
    return cupy_module() if normalize_device(device) == GPU else numpy


def to_device(array, device):
    """Return `array` on `device`, copying between host and GPU only when needed."""
    device = normalize_device(device)
    if device == GPU:
        cupy = cupy_module()
        return array if is_gpu_array(array) else cupy.asarray(array)
    if is_gpu_array(array):
        return to_numpy(array)
    return numpy.asarray(array)


# ------------------------------------------------------------------ device -> host, counted
host_transfers = 0   # GPU arrays converted to the host so far, by to_numpy (NumPy arrays too while count_cpu)
_count_cpu = 0       # > 0 inside counting_host_transfers(count_cpu=True)


def to_numpy(array):
    """A NumPy copy (or view) of a NumPy or CuPy array.

    Every device -> host conversion in minigrad comes here (Tensor.item, .numpy(), .tolist(),
    float(t), bool(t), ...), so it is counted in `host_transfers`: one for each GPU array, and,
    for tests, one for each NumPy array while counting_host_transfers(count_cpu=True) is active.
    """
    global host_transfers
    if is_gpu_array(array):
        host_transfers += 1
        return array.get()                  # waits for the GPU's queued work
    if _count_cpu and isinstance(array, (numpy.ndarray, numpy.generic)):
        host_transfers += 1                 # where a GPU array would have been copied
    return numpy.asarray(array)


def to_python(array):
    """A Python number from a one-element NumPy or CuPy array (one counted host transfer)."""
    return to_numpy(array).reshape(()).item()


class HostTransferCount:
    """What counting_host_transfers() yields: `.count` is the number of conversions since the block
    began (read it inside the block for a running count); it stops counting when the block ends."""

    def __init__(self):
        self.start, self.end = host_transfers, None

    @property
    def count(self):
        return (host_transfers if self.end is None else self.end) - self.start


@contextlib.contextmanager
def counting_host_transfers(count_cpu=False):
    """Count the device -> host conversions made inside the block (`with ... as transfers:
    transfers.count`). count_cpu=True also counts NumPy arrays at the same places, a hook for tests
    on a machine without a GPU: there every call of to_numpy with a NumPy array counts, including
    host data that would never have been on the GPU, so use it around code whose data are arrays.
    (to_device(array, "cpu") of a NumPy array, e.g. a Tensor made from host data, never counts.)"""
    global _count_cpu
    counter = HostTransferCount()
    _count_cpu += bool(count_cpu)
    try:
        yield counter
    finally:
        _count_cpu -= bool(count_cpu)
        counter.end = host_transfers


def scatter_add(target, index, values):
    """target[index] += values, where repeated indices ADD up (numpy.add.at / cupyx.scatter_add)."""
    if is_gpu_array(target):
        import cupyx

        cupyx.scatter_add(target, index, values)
    else:
        numpy.add.at(target, index, values)


def erf(x):
    """The error function elementwise, on NumPy (via math.erf) or CuPy (cupyx.scipy.special)."""
    if is_gpu_array(x):
        import cupyx.scipy.special

        return cupyx.scipy.special.erf(x)
    import math

    return numpy.vectorize(math.erf, otypes=[x.dtype])(x) if x.size else x.copy()
