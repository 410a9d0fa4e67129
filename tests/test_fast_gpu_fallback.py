"""Where CuPy cannot compile CUDA C, the GPU dispatchers run the Numba CUDA twins (kernels/numba_cuda/).

No GPU here: the twins run under Numba's CUDA simulator in a child process (NUMBA_ENABLE_CUDASIM=1
must be set before numba is imported), with NumPy standing in for CuPy and a compile that fails.
"""
import os
import subprocess
import sys

import pytest

CHILD = r'''
import numpy
from minigrad import backend
from minigrad.fast import gpu
from minigrad.ops.im2col import col2im_numpy, im2col_numpy
from minigrad.ops.pool import max_pool2d_backward_numpy, max_pool2d_forward_numpy

backend.cupy_module = lambda: numpy                       # NumPy arrays stand in for CuPy's

def refuse(source_name, kernel_name):
    raise gpu.KernelCompileError("no NVRTC here")
gpu.kernel_function = refuse

rng = numpy.random.default_rng(0)
x = rng.standard_normal((2, 3, 5, 4)).astype(numpy.float32)
args = (3, 2, (1, 2), (1, 0), (1, 1))
run = {name: gpu.with_numba_cuda_twin(name, function) for name, function in gpu.KERNELS.items()}
cols = run["im2col"](x, *args)
numpy.testing.assert_array_equal(cols, im2col_numpy(x, *args))
out = numpy.full(x.shape, numpy.nan, numpy.float32)
dx = run["col2im"](cols, x.shape, *args, out=out)
assert dx is out
numpy.testing.assert_allclose(dx, col2im_numpy(cols, x.shape, *args), rtol=1e-6, atol=1e-6)
y, index = run["max_pool2d_forward"](x, 2, 2, (2, 2), (1, 1))
y_ref, index_ref = max_pool2d_forward_numpy(x, 2, 2, (2, 2), (1, 1))
numpy.testing.assert_array_equal(y, y_ref)
numpy.testing.assert_array_equal(index, index_ref)
dy = rng.standard_normal(y.shape).astype(numpy.float32)
numpy.testing.assert_allclose(run["max_pool2d_backward"](dy, index, x.shape, 2, 2, (2, 2), (1, 1)),
                              max_pool2d_backward_numpy(dy, index_ref, x.shape, 2, 2, (2, 2), (1, 1)), rtol=1e-6)
print("twins ok")
'''


def test_numba_cuda_twins_stand_in_when_cuda_c_cannot_be_compiled():
    pytest.importorskip("numba")
    environment = dict(os.environ, NUMBA_ENABLE_CUDASIM="1")
    done = subprocess.run([sys.executable, "-c", CHILD], capture_output=True, text=True, timeout=300, env=environment)
    assert done.returncode == 0 and "twins ok" in done.stdout, done.stdout + done.stderr


def test_without_the_twins_the_compile_error_says_what_to_install(monkeypatch):
    import numpy

    from minigrad.fast import gpu

    def refuse(source_name, kernel_name):
        raise gpu.KernelCompileError("CuPy could not compile the CUDA C kernel im2col_f32: no NVRTC")

    monkeypatch.setattr(gpu, "kernel_function", refuse)
    monkeypatch.setattr(gpu, "numba_cuda_twin", lambda name: None)
    monkeypatch.setattr(gpu.backend, "cupy_module", lambda: numpy)
    monkeypatch.setattr(gpu, "_no_cuda_c", {})
    run = gpu.with_numba_cuda_twin("im2col", gpu.im2col)
    with pytest.raises(gpu.KernelCompileError, match="im2col_f32.*no NVRTC.*numba-cuda"):
        run(numpy.zeros((1, 1, 3, 3), numpy.float32), 3, 3, (1, 1), (1, 1), (1, 1))
