"""python -m minigrad.doctor, and the GPU probe that decides whether the GPU is usable."""
import subprocess
import sys
import types

import numpy

from minigrad import backend


def test_the_doctor_reports_this_machine_and_says_what_to_install():
    result = subprocess.run([sys.executable, "-m", "minigrad.doctor"], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert f"numpy {numpy.__version__}" in out and "numba" in out and ("mpi4py" in out or "MPI:" in out)
    if not backend.gpu_available():
        assert "GPU:" in out or "probe" in out
        assert "pip install" in out


def fake_cupy(matmul_error=None, kernel_error=None, wrong_kernel=False):
    """A stand-in for cupy made of NumPy, whose matmul or kernel compile can be made to fail."""
    module = types.SimpleNamespace(float32=numpy.float32, arange=numpy.arange, empty_like=numpy.empty_like,
                                   asnumpy=numpy.asarray)

    class Array(numpy.ndarray):
        def __matmul__(self, other):
            if matmul_error:
                raise matmul_error
            return numpy.asarray(self) @ numpy.asarray(other)

    module.arange = lambda *a, **k: numpy.arange(*a, **k).view(Array)

    class RawKernel:
        def __init__(self, code, name):
            if kernel_error:
                raise kernel_error

        def __call__(self, grid, block, args):
            x, y, n = args
            y[:n] = 2 * x[:n] + (0 if wrong_kernel else 1)

    module.RawKernel = RawKernel
    return module


def test_the_probe_passes_a_working_gpu_and_names_what_fails():
    assert backend.probe_gpu(fake_cupy()) is None
    message = backend.probe_gpu(fake_cupy(matmul_error=RuntimeError("CUBLAS_STATUS_NOT_INITIALIZED")))
    assert "float32 matrix product failed" in message and "cuBLAS" in message and "[ctk]" in message
    message = backend.probe_gpu(fake_cupy(kernel_error=OSError("libnvrtc.so.12: cannot open shared object file")))
    assert "compiling and launching a CUDA C kernel failed" in message and "NVRTC" in message
    message = backend.probe_gpu(fake_cupy(wrong_kernel=True))
    assert "gave a wrong answer" in message
