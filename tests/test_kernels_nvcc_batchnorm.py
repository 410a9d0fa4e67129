"""kernels/cuda/batchnorm_forward.cu and batchnorm_backward.cu, checked without a GPU: nvcc compiles them,
and their CPU references (each block played on the host by the kernels' own per-thread functions,
called through ctypes) equal batch_norm_train_forward_numpy and batch_norm_backward_numpy in
minigrad/ops/norm.py, the fused ReLU included; then minigrad/fast/gpu_batchnorm.py and the op around
it run on those references in place of the GPU.

Skipped where nvcc is not on PATH. Each source is compiled twice, once: to PTX for sm_80 (the
device code) and to a host shared library (the CPU references). The kernels sum in float64 and in
another order than NumPy, so results are compared at float rounding, as the Numba kernels' are.
"""
import ctypes
import re
import subprocess
import sys

import numpy
import pytest
from hypothesis import given, strategies as st

from minigrad.fast import gpu, gpu_batchnorm
from minigrad.ops.norm import batch_norm_backward_numpy, batch_norm_train_forward_numpy

from test_kernels_nvcc import ARCH, NVCC, _library, build_sources          # the same nvcc builds

pytestmark = pytest.mark.skipif(NVCC is None, reason="nvcc is not on PATH")

SOURCES = {"batch_norm_forward": "batchnorm_forward.cu", "batch_norm_backward": "batchnorm_backward.cu"}
DTYPES = [numpy.float32, numpy.float64]
SUFFIX = {numpy.float32: "f32", numpy.float64: "f64"}
EPS = 1e-5
THREADS = gpu_batchnorm.THREADS_PER_CHANNEL

# (N, C, P): odd sizes; P = 1 (BatchNorm1d); P and M = N P under, over, and not a multiple of the block's threads
SHAPES = [(1, 1, 2), (3, 2, 5), (2, 3, 49), (5, 4, 1), (600, 2, 1), (2, 1, 300), (7, 2, 37), (1, 3, 256)]


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    return build_sources(tmp_path_factory.mktemp("nvcc_batchnorm"), SOURCES.values())


def _call(library, name, *arrays):
    """Call the extern "C" CPU reference `name` with C-contiguous NumPy arrays (pointers)."""
    assert all(a.flags.c_contiguous for a in arrays), f"{name}: non-contiguous argument"
    function = getattr(library, name)
    function.restype = None
    function.argtypes = [ctypes.c_void_p] * len(arrays)
    function(*(a.ctypes.data_as(ctypes.c_void_p) for a in arrays))


def _inputs(shape, dtype, seed=0, offset=0.0):
    """x3 (N, C, P) with a per-channel offset (a large one tests the two-pass variance), dy3, gamma, beta."""
    rng = numpy.random.default_rng(seed)
    n, c, p = shape
    x3 = (rng.standard_normal(shape) + offset * rng.standard_normal((1, c, 1))).astype(dtype)
    dy3 = rng.standard_normal(shape).astype(dtype)
    gamma, beta = (rng.standard_normal(c).astype(dtype) for _ in range(2))
    return x3, dy3, gamma, beta


def _c_forward(built, x3, gamma, beta, eps=EPS, relu=False):
    """(y3, mean, var, inv_std) from the forward kernel's CPU reference."""
    channels = x3.shape[1]
    y3 = numpy.full(x3.shape, numpy.nan, x3.dtype)                       # every value must be written
    mean, var, inv_std = (numpy.full(channels, numpy.nan) for _ in range(3))
    _call(_library(built, "batchnorm_forward.cu"), f"batch_norm_forward_cpu_{SUFFIX[x3.dtype.type]}",
          x3, y3, gamma, beta, mean, var, inv_std, gpu_batchnorm._shape(x3, eps, relu))
    return y3, mean, var, inv_std


def _c_backward(built, x3, dy3, mean, inv_std, gamma, relu_out3=None):
    """(dx3, dgamma, dbeta) from the backward kernel's CPU reference."""
    channels = x3.shape[1]
    dx3 = numpy.full(x3.shape, numpy.nan, x3.dtype)
    dgamma, dbeta = numpy.full(channels, numpy.nan), numpy.full(channels, numpy.nan)
    _call(_library(built, "batchnorm_backward.cu"), f"batch_norm_backward_cpu_{SUFFIX[x3.dtype.type]}",
          x3, dy3, dx3, numpy.asarray(mean, numpy.float64), numpy.asarray(inv_std, numpy.float64), gamma,
          dgamma, dbeta, dy3 if relu_out3 is None else relu_out3, gpu_batchnorm._shape(x3, 0.0, relu_out3 is not None))
    return dx3, dgamma, dbeta


def _close(dtype):
    return dict(rtol=2e-4, atol=2e-4) if dtype == numpy.float32 else dict(rtol=1e-9, atol=1e-9)


def _assert_forward_close(ours, reference, dtype):
    assert ours[0].dtype == dtype and ours[0].shape == reference[0].shape
    for name, a, b in zip(["y", "mean", "var", "inv_std"], ours, reference):
        numpy.testing.assert_allclose(a, b, err_msg=name, **_close(dtype))


def _assert_backward_close(ours, reference, dtype, count):
    """dgamma and dbeta add `count` terms per channel: their tolerance grows with it, as in the Numba tests."""
    assert ours[0].dtype == dtype and ours[0].shape == reference[0].shape
    tolerance = _close(dtype)
    for name, a, b in zip(["dx", "dgamma", "dbeta"], ours, reference):
        atol = tolerance["atol"] * (1.0 + numpy.abs(b).max()) * (1 if name == "dx" else count)
        numpy.testing.assert_allclose(a, b, rtol=tolerance["rtol"], atol=atol, err_msg=name)


# ------------------------------------------------------------------ the sources and their compilation
@pytest.mark.parametrize("stem, source", SOURCES.items())
def test_source_compiles_to_ptx_with_float32_and_float64_entry_points(built, stem, source):
    returncode, output, ptx = built[source][0]
    assert returncode == 0, f"nvcc --ptx -arch={ARCH} {source} failed:\n{output}"
    entries = set(re.findall(r"\.entry\s+(\w+)", ptx.read_text()))
    assert entries == {f"{stem}_f32", f"{stem}_f64"}, f"{source}: entry points {sorted(entries)}"


def test_the_wrapper_launches_as_many_threads_as_the_kernels_tree_sum_assumes():
    header = gpu.source_path("batchnorm.cuh").read_text()
    threads = int(re.search(r"#define BN_THREADS (\d+)", header).group(1))
    assert THREADS == threads and threads & (threads - 1) == 0, "BN_THREADS must be a power of 2"


def test_shape_struct_has_the_fields_of_the_c_struct():
    header = gpu.source_path("batchnorm.cuh").read_text()
    body = re.search(r"struct BatchNormShape \{(.*?)\};", header, re.DOTALL).group(1)
    fields = re.findall(r"(\w+)(?=[,;])", re.sub(r"//[^\n]*", "", body))
    assert tuple(fields) == gpu_batchnorm.SHAPE_DTYPE.names and gpu_batchnorm.SHAPE_DTYPE.itemsize == 8 * len(fields)


# ------------------------------------------------------------------ CPU references vs NumPy references
@pytest.mark.parametrize("relu", [False, True])
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", SHAPES)
def test_forward_cpu_reference_equals_numpy(built, shape, dtype, relu):
    x3, _, gamma, beta = _inputs(shape, dtype)
    _assert_forward_close(_c_forward(built, x3, gamma, beta, relu=relu),
                          batch_norm_train_forward_numpy(x3.copy(), gamma, beta, EPS, relu=relu), dtype)


@pytest.mark.parametrize("dtype", DTYPES)
def test_forward_cpu_reference_has_no_cancellation_for_a_large_mean(built, dtype):
    """Values around 1000 with spread 1: the variance comes from centred values (two passes), not E[x^2] - mu^2."""
    x3, _, gamma, beta = _inputs((4, 3, 50), dtype, seed=1, offset=1000.0)
    ours = _c_forward(built, x3, gamma, beta)
    _assert_forward_close(ours, batch_norm_train_forward_numpy(x3.copy(), gamma, beta, EPS), dtype)
    exact_var = x3.astype(numpy.float64).var(axis=(0, 2))               # NumPy's two passes, in float64
    numpy.testing.assert_allclose(ours[2], exact_var, rtol=1e-12)


@pytest.mark.parametrize("relu", [False, True])
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", SHAPES)
def test_backward_cpu_reference_equals_numpy(built, shape, dtype, relu):
    x3, dy3, gamma, beta = _inputs(shape, dtype, seed=2)
    y3, mean, _, inv_std = batch_norm_train_forward_numpy(x3.copy(), gamma, beta, EPS, relu=relu)
    relu_out3 = y3 if relu else None
    _assert_backward_close(_c_backward(built, x3, dy3, mean, inv_std, gamma, relu_out3),
                           batch_norm_backward_numpy(x3, dy3, mean, inv_std, gamma, relu_out3=relu_out3),
                           dtype, shape[0] * shape[2])


@given(shape=st.tuples(st.integers(1, 6), st.integers(1, 4), st.integers(1, 300)),
       dtype=st.sampled_from(DTYPES), relu=st.booleans(), offset=st.sampled_from([0.0, 3.0, 100.0]),
       seed=st.integers(0, 2**16))
def test_forward_and_backward_cpu_references_equal_numpy_for_any_shape(built, shape, dtype, relu, offset, seed):
    if shape[0] * shape[2] < 2:
        shape = (shape[0], shape[1], 2)                                   # training needs 2 values a channel
    x3, dy3, gamma, beta = _inputs(shape, dtype, seed, offset)
    reference = batch_norm_train_forward_numpy(x3.copy(), gamma, beta, EPS, relu=relu)
    ours = _c_forward(built, x3, gamma, beta, relu=relu)
    _assert_forward_close(ours, reference, dtype)
    relu_out3 = ours[0] if relu else None
    _assert_backward_close(_c_backward(built, x3, dy3, ours[1], ours[3], gamma, relu_out3),
                           batch_norm_backward_numpy(x3, dy3, ours[1], ours[3], gamma, relu_out3=relu_out3),
                           dtype, shape[0] * shape[2])


@pytest.mark.parametrize("dtype", DTYPES)
def test_fused_relu_forward_is_the_plain_forward_clipped_at_zero_bit_for_bit(built, dtype):
    x3, _, gamma, beta = _inputs((3, 4, 20), dtype, seed=3)
    plain, fused = _c_forward(built, x3, gamma, beta), _c_forward(built, x3, gamma, beta, relu=True)
    numpy.testing.assert_array_equal(fused[0], numpy.where(plain[0] <= 0, 0, plain[0]).astype(dtype))
    for name, a, b in zip(["mean", "var", "inv_std"], fused[1:], plain[1:]):
        numpy.testing.assert_array_equal(a, b, err_msg=name)


def test_fused_relu_backward_passes_no_gradient_where_the_relu_clipped(built):
    """Where the fused output is 0, dy must not reach the sums or dx: a huge dy there changes nothing."""
    x3, dy3, gamma, beta = _inputs((3, 2, 40), numpy.float64, seed=4)
    y3, mean, _, inv_std = _c_forward(built, x3, gamma, beta, relu=True)
    assert (y3 == 0).any() and (y3 > 0).any()
    loud, quiet = numpy.where(y3 > 0, dy3, 1e6), numpy.where(y3 > 0, dy3, 0.0)
    for name, a, b in zip(["dx", "dgamma", "dbeta"], _c_backward(built, x3, loud, mean, inv_std, gamma, y3),
                          _c_backward(built, x3, quiet, mean, inv_std, gamma, y3)):
        numpy.testing.assert_array_equal(a, b, err_msg=name)


def test_forward_cpu_reference_propagates_nan_to_its_channel_only(built):
    x3, _, gamma, beta = _inputs((2, 3, 4), numpy.float32, seed=5)
    x3[1, 1, 2] = numpy.nan
    y3, mean, var, _ = _c_forward(built, x3, gamma, beta)
    assert numpy.isnan(y3[:, 1]).all() and numpy.isnan(mean[1]) and numpy.isnan(var[1])
    assert numpy.isfinite(y3[:, [0, 2]]).all() and numpy.isfinite(mean[[0, 2]]).all()


# ------------------------------------------------------------------ gpu_batchnorm.py on the CPU references
@pytest.fixture
def cpu_as_gpu(built, monkeypatch):
    """Make minigrad/fast/gpu_batchnorm.py run on NumPy arrays: CuPy is played by NumPy, and each launch
    calls the CPU reference of the same kernel (`batch_norm_forward_f32` -> `batch_norm_forward_cpu_f32`)
    with the same arguments. Records (kernel name, grid, block) of every launch."""
    from minigrad import backend

    launches = []

    def kernel_function(source_name, kernel_name):
        stem, suffix = kernel_name.rsplit("_", 1)
        assert SOURCES[stem] == source_name, f"{kernel_name} is not in {source_name}"

        def launch(grid, block, args):
            launches.append((kernel_name, grid, block))
            _call(_library(built, source_name), f"{stem}_cpu_{suffix}", *args)

        return launch

    monkeypatch.setattr(backend, "cupy_module", lambda: numpy)
    monkeypatch.setattr(gpu, "kernel_function", kernel_function)
    monkeypatch.setattr(gpu, "_no_cuda_c", {})
    return launches


@pytest.mark.parametrize("relu", [False, True])
@pytest.mark.parametrize("dtype", DTYPES)
def test_wrappers_launch_one_block_per_channel_and_equal_numpy(cpu_as_gpu, dtype, relu):
    shape = (3, 5, 17)
    x3, dy3, gamma, beta = _inputs(shape, dtype, seed=6)
    forward = gpu_batchnorm.batch_norm_train_forward(x3, gamma, beta, EPS, relu=relu)
    _assert_forward_close(forward, batch_norm_train_forward_numpy(x3.copy(), gamma, beta, EPS, relu=relu), dtype)
    y3, mean, _, inv_std = forward
    relu_out3 = y3 if relu else None
    backward = gpu_batchnorm.batch_norm_backward(x3, dy3, mean, inv_std, gamma, relu_out3=relu_out3)
    _assert_backward_close(backward, batch_norm_backward_numpy(x3, dy3, mean, inv_std, gamma, relu_out3=relu_out3),
                           dtype, shape[0] * shape[2])
    suffix = SUFFIX[dtype]
    assert cpu_as_gpu == [(f"batch_norm_forward_{suffix}", (5,), (THREADS,)),
                          (f"batch_norm_backward_{suffix}", (5,), (THREADS,))]


def test_wrappers_make_non_contiguous_inputs_contiguous_and_cast_gamma_and_the_statistics(cpu_as_gpu):
    rng = numpy.random.default_rng(7)
    x3 = rng.standard_normal((4, 9, 3)).astype(numpy.float32).transpose(0, 2, 1)     # (4, 3, 9), not contiguous
    dy3 = rng.standard_normal((4, 9, 3)).astype(numpy.float32).transpose(0, 2, 1)
    gamma, beta = rng.standard_normal(6)[::2], rng.standard_normal(3)                # float64, one a view
    forward = gpu_batchnorm.batch_norm_train_forward(x3, gamma, beta, EPS)
    _assert_forward_close(forward, batch_norm_train_forward_numpy(x3.copy(), gamma, beta, EPS), numpy.float32)
    mean32, inv_std32 = forward[1].astype(numpy.float32), forward[3].astype(numpy.float32)   # float32 statistics
    _assert_backward_close(gpu_batchnorm.batch_norm_backward(x3, dy3, mean32, inv_std32, gamma),
                           batch_norm_backward_numpy(x3, dy3, mean32, inv_std32, gamma), numpy.float32, 36)
    assert len(cpu_as_gpu) == 2


def test_wrappers_send_float16_empty_and_mixed_dtypes_to_the_reference_without_a_launch(cpu_as_gpu):
    x3 = numpy.random.default_rng(8).standard_normal((2, 3, 4))
    gamma, beta = numpy.ones(3), numpy.zeros(3)
    y3, *_ = gpu_batchnorm.batch_norm_train_forward(x3.astype(numpy.float16), gamma.astype(numpy.float16),
                                                    beta.astype(numpy.float16), EPS)
    assert y3.dtype == numpy.float16
    empty = numpy.zeros((2, 0, 4))
    assert gpu_batchnorm.batch_norm_train_forward(empty, numpy.ones(0), numpy.zeros(0), EPS)[0].shape == empty.shape
    _, mean, _, inv_std = batch_norm_train_forward_numpy(x3.copy(), gamma, beta, EPS)
    dx3, _, _ = gpu_batchnorm.batch_norm_backward(x3, x3.astype(numpy.float32), mean, inv_std, gamma)
    assert dx3.shape == x3.shape and cpu_as_gpu == []


def test_wrappers_run_the_reference_where_cuda_c_cannot_be_compiled(cpu_as_gpu, monkeypatch):
    def no_compiler(source_name, kernel_name):
        raise gpu.KernelCompileError("no NVRTC here")

    monkeypatch.setattr(gpu, "kernel_function", no_compiler)
    x3, dy3, gamma, beta = _inputs((2, 3, 5), numpy.float32, seed=9)
    forward = gpu_batchnorm.batch_norm_train_forward(x3, gamma, beta, EPS, relu=True)
    reference = batch_norm_train_forward_numpy(x3.copy(), gamma, beta, EPS, relu=True)
    for a, b in zip(forward, reference):
        numpy.testing.assert_array_equal(a, b)
    dx3, _, _ = gpu_batchnorm.batch_norm_backward(x3, dy3, reference[1], reference[3], gamma, relu_out3=reference[0])
    numpy.testing.assert_array_equal(dx3, batch_norm_backward_numpy(x3, dy3, reference[1], reference[3], gamma,
                                                                    relu_out3=reference[0])[0])
    assert "error" in gpu._no_cuda_c and cpu_as_gpu == []


@pytest.mark.parametrize("relu", [False, True])
@pytest.mark.parametrize("dtype", DTYPES)
def test_the_batch_norm_op_on_the_kernels_equals_the_op_on_its_reference(cpu_as_gpu, monkeypatch, dtype, relu):
    """norm.BatchNorm with the kernels in place of the NumPy reference (registered for the "cpu" device
    here, since NumPy plays CuPy): output, running mean and (unbiased) running variance, dx, dgamma, dbeta."""
    import minigrad
    from minigrad.ops import norm, registry

    x = numpy.random.default_rng(10).standard_normal((4, 3, 5, 7)).astype(dtype) * 2 + 1
    gamma, beta = numpy.array([1.5, -0.5, 0.8], dtype), numpy.array([0.1, 0.2, -0.3], dtype)
    weight = numpy.random.default_rng(11).standard_normal(x.shape).astype(dtype)
    function = norm.batch_norm_relu if relu else norm.batch_norm

    def step(kernels):
        for name, kernel in kernels.items():
            monkeypatch.setitem(registry.KERNELS, (name, "cpu"), kernel)
        running_mean, running_var = numpy.zeros(3, dtype), numpy.ones(3, dtype)
        tensors = [minigrad.tensor(a, requires_grad=True) for a in (x, gamma, beta)]
        y = function(tensors[0], running_mean, running_var, tensors[1], tensors[2], training=True, momentum=0.3)
        (y * minigrad.tensor(weight)).sum().backward()
        return [y.detach().numpy(), running_mean, running_var] + [t.grad.numpy() for t in tensors]

    ours = step(gpu_batchnorm.KERNELS)
    reference = step({"batch_norm_train_forward": batch_norm_train_forward_numpy,
                      "batch_norm_backward": batch_norm_backward_numpy})
    for name, a, b in zip(["y", "running_mean", "running_var", "dx", "dgamma", "dbeta"], ours, reference):
        assert a.dtype == dtype, f"{name}: dtype {a.dtype}"
        numpy.testing.assert_allclose(a, b, err_msg=name, **_close(dtype))
    assert [name for name, _, _ in cpu_as_gpu] == [f"batch_norm_forward_{SUFFIX[dtype]}",
                                                   f"batch_norm_backward_{SUFFIX[dtype]}"]


def test_the_kernels_are_registered_for_the_gpu_without_importing_cupy():
    code = ("import sys, minigrad\n"
            "from minigrad.fast import gpu_batchnorm\n"
            "from minigrad.ops.registry import KERNELS as registered\n"
            "assert all(registered[(n, 'gpu')] is f for n, f in gpu_batchnorm.KERNELS.items()), registered\n"
            "assert sorted(gpu_batchnorm.KERNELS) == ['batch_norm_backward', 'batch_norm_train_forward']\n"
            "assert 'cupy' not in sys.modules\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
