"""The GPU suite: every op and its gradients on CuPy vs NumPy, the CUDA kernels vs their references,
and a few training steps of examples/cifar_resnet.py on the GPU.

Every test is marked `gpu`; conftest.py skips them where CuPy or a CUDA device is missing,
so `pytest -m gpu` on a machine with a GPU runs exactly this file. CuPy is imported only
inside tests (through minigrad.backend), never at collection.
"""
import os
import pickle
import subprocess
import sys
from pathlib import Path

import numpy
import pytest

import minigrad
from minigrad import backend
from minigrad.fast import gpu as gpu_kernels, gpu_batchnorm, tuning
from minigrad.fast.winograd import Conv2dWinogradFast
from minigrad.kernels.geometry import cols_shape, make_geometry
from minigrad.ops import activation, conv, elementwise, loss, matmul, norm, pool, reduce
from minigrad.ops.registry import faster
from minigrad.ops.winograd import Conv2dWinograd
from minigrad.ops.im2col import col2im_numpy, im2col_numpy
from minigrad.ops.pool import max_pool2d_backward_numpy, max_pool2d_forward_numpy

pytestmark = pytest.mark.gpu

REPOSITORY = Path(__file__).resolve().parents[1]
RTOL = 1e-9                      # float64: the devices differ only in the order of float sums


def _on(device, fn, arrays, grad_inputs, seed):
    """fn(*tensors) on `device`; returns (output, [gradients of sum(output * w)]) as NumPy arrays."""
    tensors = [minigrad.tensor(a, requires_grad=g, device=device) for a, g in zip(arrays, grad_inputs)]
    out = fn(*tensors)
    weight = numpy.random.default_rng(seed).standard_normal(out.shape)
    out.backward(minigrad.tensor(weight, dtype=out.dtype, device=device))
    return out.detach().numpy(), [t.grad.numpy() for t, g in zip(tensors, grad_inputs) if g]


def assert_gpu_matches_cpu(fn, arrays, grad_inputs=None, rtol=RTOL, atol=1e-12, seed=0):
    """fn on the GPU equals fn on the CPU: outputs and every input gradient (float64)."""
    arrays = [numpy.asarray(a) for a in arrays]
    if grad_inputs is None:
        grad_inputs = [a.dtype.kind == "f" for a in arrays]
    out_cpu, grads_cpu = _on("cpu", fn, arrays, grad_inputs, seed)
    out_gpu, grads_gpu = _on("gpu", fn, arrays, grad_inputs, seed)
    numpy.testing.assert_allclose(out_gpu, out_cpu, rtol=rtol, atol=atol, err_msg="output")
    for index, (a, b) in enumerate(zip(grads_gpu, grads_cpu)):
        numpy.testing.assert_allclose(a, b, rtol=rtol, atol=atol, err_msg=f"gradient of input {index}")


def randn(*shape, seed=0):
    return numpy.random.default_rng(seed).standard_normal(shape)


# ------------------------------------------------------------------ ops: CuPy vs NumPy, values and gradients
def test_elementwise_arithmetic_with_broadcasting_matches_cpu():
    assert_gpu_matches_cpu(
        lambda a, b: elementwise.div(elementwise.mul(elementwise.add(a, b), elementwise.sub(a, b)),
                                     elementwise.add(elementwise.mul(b, b), 1.0)),
        [randn(3, 4), randn(1, 4, seed=1)],
    )


def test_elementwise_exp_log_sqrt_pow_match_cpu():
    assert_gpu_matches_cpu(
        lambda a: elementwise.exp(a) + elementwise.log(elementwise.abs(a) + 1.0)
        + elementwise.sqrt(a * a + 1.0) + elementwise.pow(a, 3),
        [randn(4, 5)],
    )


def test_elementwise_maximum_and_where_match_cpu():
    a, b = randn(6, 3), randn(6, 3, seed=1)
    assert_gpu_matches_cpu(lambda x, y: elementwise.maximum(x, y) + elementwise.where(x > 0, x, y * 2.0), [a, b])


@pytest.mark.parametrize("name", ["relu", "sigmoid", "tanh", "gelu", "softmax", "log_softmax"])
def test_activation_matches_cpu(name):
    function = getattr(activation, name)
    assert_gpu_matches_cpu(lambda x: function(x) if name not in ("softmax", "log_softmax") else function(x, -1),
                           [randn(4, 7)])


@pytest.mark.parametrize("name", ["sum", "mean", "amax", "var", "logsumexp"])
def test_reduction_over_an_axis_matches_cpu(name):
    function = getattr(reduce, name)
    assert_gpu_matches_cpu(lambda x: function(x, 1), [randn(3, 5, 4)])


def test_full_sum_matches_cpu():
    assert_gpu_matches_cpu(lambda x: reduce.sum(x * x), [randn(7, 9)])


def test_matmul_2d_matches_cpu():
    assert_gpu_matches_cpu(matmul.matmul, [randn(5, 7), randn(7, 3, seed=1)])


def test_batched_matmul_with_broadcasting_matches_cpu():
    assert_gpu_matches_cpu(matmul.matmul, [randn(2, 3, 4, 5), randn(5, 2, seed=1)])


@pytest.mark.parametrize(
    "stride, padding, dilation, groups",
    [(1, 1, 1, 1), (2, 0, 1, 1), ((2, 1), (1, 2), (2, 1), 1), (1, 1, 1, 2)],
)
def test_conv2d_matches_cpu(stride, padding, dilation, groups):
    x, w, b = randn(2, 4, 7, 6), randn(6, 4 // groups, 3, 3, seed=1), randn(6, seed=2)
    assert_gpu_matches_cpu(
        lambda x, w, b: conv.conv2d(x, w, b, stride=stride, padding=padding, dilation=dilation, groups=groups),
        [x, w, b],
    )


def test_conv2d_weight_gradient_summed_directly_matches_cpu(monkeypatch):
    """The fast conv2d sums dW = dY @ cols^T for weights over tuning.CONV_DW_TRANSPOSED_MAX_BYTES (CuPy
    products on the GPU); 0 sends this small one down that path on both devices."""
    monkeypatch.setattr(tuning, "CONV_DW_TRANSPOSED_MAX_BYTES", 0)
    x, w = randn(2, 4, 7, 6), randn(6, 2, 3, 3, seed=1)
    assert_gpu_matches_cpu(lambda x, w: conv.conv2d(x, w, stride=2, padding=1, groups=2), [x, w])


def test_a_gpu_leaf_takes_a_fresh_gradient_without_a_copy(monkeypatch):
    """conv2d's dx on the GPU is a new CuPy array that the leaf takes as its .grad (fresh_gradients);
    the values are the CPU's."""
    x = minigrad.tensor(randn(2, 3, 6, 6), requires_grad=True, device="gpu")
    w = minigrad.tensor(randn(4, 3, 3, 3, seed=1), requires_grad=True, device="gpu")
    runs = type(faster(conv.Conv2d(stride=2, padding=1), x, w))      # the class conv2d runs on the GPU
    returned = []
    real_backward = runs.backward

    def recording_backward(self, dy):
        grads = real_backward(self, dy)
        returned.append(grads)
        return grads

    monkeypatch.setattr(runs, "backward", recording_backward)
    conv.conv2d(x, w, stride=2, padding=1).sum().backward()
    assert len(returned) == 1, f"{runs.__name__}.backward ran {len(returned)} times"
    assert x.grad.array is returned[0][0] and backend.is_gpu_array(x.grad.array)
    x_cpu = minigrad.tensor(randn(2, 3, 6, 6), requires_grad=True)
    conv.conv2d(x_cpu, minigrad.tensor(randn(4, 3, 3, 3, seed=1)), stride=2, padding=1).sum().backward()
    numpy.testing.assert_allclose(x.grad.numpy(), x_cpu.grad.numpy(), rtol=RTOL, atol=1e-12)


@pytest.mark.parametrize("function", [Conv2dWinograd, Conv2dWinogradFast], ids=lambda f: f.__name__)
@pytest.mark.parametrize("padding", [0, 1, (2, 1)])
def test_winograd_conv2d_matches_cpu(function, padding):
    """Winograd's F(2x2, 3x3), the reference and the fast layer's chunked class, with CuPy transforms on the GPU
    (the fast layer chooses it only on the CPU, but both classes run on either device)."""
    assert_gpu_matches_cpu(lambda x, w, b: function(padding)(x, w, b),
                           [randn(2, 3, 7, 6), randn(4, 3, 3, 3, seed=1), randn(4, seed=2)])


def test_conv2d_float32_on_gpu_is_close_to_cpu():
    x = randn(2, 3, 8, 8).astype(numpy.float32)
    w = randn(4, 3, 3, 3, seed=1).astype(numpy.float32)
    y_cpu = conv.conv2d(minigrad.tensor(x), minigrad.tensor(w), padding=1).detach().numpy()
    y_gpu = conv.conv2d(minigrad.tensor(x, device="gpu"), minigrad.tensor(w, device="gpu"), padding=1)
    assert y_gpu.dtype == numpy.float32
    numpy.testing.assert_allclose(y_gpu.detach().numpy(), y_cpu, rtol=1e-4, atol=1e-5)


def test_conv2d_gradcheck_on_gpu():
    x = minigrad.tensor(randn(1, 2, 5, 5), requires_grad=True, device="gpu")
    w = minigrad.tensor(randn(3, 2, 3, 3, seed=1), requires_grad=True, device="gpu")
    assert minigrad.gradcheck(lambda x, w: conv.conv2d(x, w, stride=2, padding=1), [x, w])


@pytest.mark.parametrize("kernel, stride, padding", [(2, 2, 0), (3, 1, 1), ((3, 2), (2, 1), (1, 0))])
def test_max_pool2d_matches_cpu(kernel, stride, padding):
    assert_gpu_matches_cpu(lambda x: pool.max_pool2d(x, kernel, stride, padding), [randn(2, 3, 7, 6)])


def test_avg_pool2d_matches_cpu():
    assert_gpu_matches_cpu(lambda x: pool.avg_pool2d(x, 3, 2, 1), [randn(2, 3, 7, 6)])


def test_adaptive_avg_pool2d_matches_cpu():
    assert_gpu_matches_cpu(lambda x: pool.adaptive_avg_pool2d(x, (3, 2)), [randn(2, 3, 7, 5)])


def test_batch_norm_training_matches_cpu():
    assert_gpu_matches_cpu(
        lambda x, gamma, beta: norm.batch_norm(x, None, None, gamma, beta, training=True),
        [randn(4, 3, 5, 5), randn(3, seed=1), randn(3, seed=2)],
    )


@pytest.mark.parametrize("training", [True, False])
def test_fused_batch_norm_relu_matches_cpu(training):
    mean, var = randn(3, seed=3), numpy.abs(randn(3, seed=4)) + 0.5
    assert_gpu_matches_cpu(
        lambda x, gamma, beta: norm.batch_norm_relu(x, backend.module_for(x.device).asarray(mean),
                                                    backend.module_for(x.device).asarray(var), gamma, beta,
                                                    training=training),
        [randn(4, 3, 5, 5), randn(3, seed=1), randn(3, seed=2)],
    )


def test_fused_add_relu_matches_cpu():
    assert_gpu_matches_cpu(activation.add_relu, [randn(4, 3, 5, 5), randn(4, 3, 5, 5, seed=1)])


def test_batch_norm_updates_running_statistics_like_cpu():
    x = randn(4, 3, 5, 5)
    stats = {}
    for device in ("cpu", "gpu"):
        xp = backend.module_for(device)
        mean, var = xp.zeros(3), xp.ones(3)
        norm.batch_norm(minigrad.tensor(x, device=device), mean, var, training=True)
        stats[device] = (backend.to_numpy(mean), backend.to_numpy(var))
    for got, expected in zip(stats["gpu"], stats["cpu"]):
        numpy.testing.assert_allclose(got, expected, rtol=RTOL)


def test_cross_entropy_with_label_smoothing_matches_cpu():
    labels = numpy.random.default_rng(3).integers(0, 5, 6)
    assert_gpu_matches_cpu(lambda z, t: loss.cross_entropy(z, t, label_smoothing=0.1),
                           [randn(6, 5), labels], grad_inputs=[True, False])


# ------------------------------------------------------------------ the CUDA C kernels vs the NumPy references
CONV_CASES = [
    ((2, 3, 5, 5), (3, 3), (1, 1), (1, 1), (1, 1)),
    ((2, 2, 9, 7), (3, 2), (2, 1), (2, 1), (1, 2)),
    ((1, 4, 6, 6), (1, 1), (2, 2), (0, 0), (1, 1)),
]
POOL_CASES = [
    ((2, 3, 6, 6), (2, 2), (2, 2), (0, 0)),
    ((2, 2, 7, 5), (3, 3), (1, 1), (1, 1)),
    ((1, 3, 5, 8), (3, 2), (2, 1), (1, 0)),
]


def _gpu(array):
    return backend.to_device(array, "gpu")


def test_the_gpu_kernels_are_registered_in_the_dispatchers():
    from minigrad.ops.registry import KERNELS as registered     # filled by minigrad.fast.install()

    for name, function in gpu_kernels.KERNELS.items():
        kernel = registered.get((name, "gpu"))
        assert kernel is not None and kernel.cuda_c is function, f"{name}: registered {kernel!r} for the GPU"


@pytest.mark.parametrize("dtype", [numpy.float32, numpy.float64])
@pytest.mark.parametrize("case", CONV_CASES)
def test_cuda_im2col_equals_numpy_bit_for_bit(case, dtype):
    shape, (kh, kw), stride, padding, dilation = case
    x = randn(*shape).astype(dtype)
    cols = gpu_kernels.im2col(_gpu(x), kh, kw, stride, padding, dilation)
    numpy.testing.assert_array_equal(backend.to_numpy(cols), im2col_numpy(x, kh, kw, stride, padding, dilation))


@pytest.mark.parametrize("dtype", [numpy.float32, numpy.float64])
@pytest.mark.parametrize("case", CONV_CASES)
def test_cuda_col2im_equals_numpy(case, dtype):
    shape, (kh, kw), stride, padding, dilation = case
    cols = randn(*cols_shape(make_geometry("test", shape, (kh, kw), stride, padding, dilation))).astype(dtype)
    dx = gpu_kernels.col2im(_gpu(cols), shape, kh, kw, stride, padding, dilation)
    tolerance = 1e-5 if dtype == numpy.float32 else 1e-13
    numpy.testing.assert_allclose(backend.to_numpy(dx), col2im_numpy(cols, shape, kh, kw, stride, padding, dilation),
                                  rtol=tolerance, atol=tolerance)


def test_cuda_col2im_writes_into_out_directly_or_by_copy():
    """A contiguous `out` of cols' dtype is written in place and returned (no second array); a
    non-contiguous one receives a copy. Both hold dx, NaN-dirty buffers included (every pixel written)."""
    cupy = backend.cupy_module()
    shape, kernel, stride, padding = (2, 3, 9, 8), 3, (2, 2), (1, 1)
    cols = randn(*cols_shape(make_geometry("test", shape, (kernel, kernel), stride, padding, (1, 1))))
    expected = col2im_numpy(cols, shape, kernel, kernel, stride, padding, (1, 1))
    out = cupy.full(shape, cupy.nan)
    result = gpu_kernels.col2im(_gpu(cols), shape, kernel, kernel, stride, padding, (1, 1), out=out)
    assert result is out
    numpy.testing.assert_allclose(backend.to_numpy(out), expected, rtol=1e-13, atol=1e-13)
    wide = cupy.full(shape[:3] + (2 * shape[3],), cupy.nan)[..., ::2]                # not contiguous
    result = gpu_kernels.col2im(_gpu(cols), shape, kernel, kernel, stride, padding, (1, 1), out=wide)
    assert result is wide
    numpy.testing.assert_allclose(backend.to_numpy(wide), expected, rtol=1e-13, atol=1e-13)
    small = cupy.zeros((1,) + shape[1:])                      # one image short: the kernel would write past it
    with pytest.raises(ValueError, match=r"col2im: out must have shape \(2, 3, 9, 8\), got \(1, 3, 9, 8\)"):
        gpu_kernels.col2im(_gpu(cols), shape, kernel, kernel, stride, padding, (1, 1), out=small)


def test_cuda_col2im_is_deterministic():
    shape, (kh, kw), stride, padding, dilation = CONV_CASES[1]
    cols = _gpu(randn(*cols_shape(make_geometry("test", shape, (kh, kw), stride, padding, dilation))))
    first = gpu_kernels.col2im(cols, shape, kh, kw, stride, padding, dilation)
    second = gpu_kernels.col2im(cols, shape, kh, kw, stride, padding, dilation)
    numpy.testing.assert_array_equal(backend.to_numpy(first), backend.to_numpy(second))


@pytest.mark.parametrize("dtype", [numpy.float32, numpy.float64])
@pytest.mark.parametrize("case", POOL_CASES)
def test_cuda_max_pool_forward_equals_numpy_values_and_argmax(case, dtype):
    shape, (kh, kw), stride, padding = case
    x = numpy.random.default_rng(4).integers(0, 4, size=shape).astype(dtype)   # ties
    y, index = gpu_kernels.max_pool2d_forward(_gpu(x), kh, kw, stride, padding)
    y_expected, index_expected = max_pool2d_forward_numpy(x, kh, kw, stride, padding)
    numpy.testing.assert_array_equal(backend.to_numpy(y), y_expected)
    numpy.testing.assert_array_equal(backend.to_numpy(index), index_expected)


@pytest.mark.parametrize("dtype", [numpy.float32, numpy.float64])
@pytest.mark.parametrize("case", POOL_CASES)
def test_cuda_max_pool_backward_equals_numpy(case, dtype):
    shape, (kh, kw), stride, padding = case
    x = numpy.random.default_rng(5).integers(0, 4, size=shape).astype(dtype)
    _, index = max_pool2d_forward_numpy(x, kh, kw, stride, padding)
    dy = randn(*index.shape).astype(dtype)
    dx = gpu_kernels.max_pool2d_backward(_gpu(dy), _gpu(index), shape, kh, kw, stride, padding)
    tolerance = 1e-5 if dtype == numpy.float32 else 1e-13
    numpy.testing.assert_allclose(backend.to_numpy(dx),
                                  max_pool2d_backward_numpy(dy, index, shape, kh, kw, stride, padding),
                                  rtol=tolerance, atol=tolerance)


def test_cuda_im2col_of_a_non_contiguous_input_equals_numpy():
    x = randn(2, 5, 3, 6).transpose(0, 2, 1, 3)          # (2, 3, 5, 6), not C-contiguous
    cols = gpu_kernels.im2col(_gpu(x), 3, 3, (1, 1), (1, 1), (1, 1))
    numpy.testing.assert_array_equal(backend.to_numpy(cols), im2col_numpy(x, 3, 3, (1, 1), (1, 1), (1, 1)))


def test_cuda_col2im_rejects_cols_of_the_wrong_shape():
    with pytest.raises(ValueError, match="col2im: cols must have shape"):
        gpu_kernels.col2im(_gpu(numpy.zeros((5, 5))), (1, 1, 4, 4), 3, 3, (1, 1), (1, 1), (1, 1))


# ------------------------------------------------------------------ the batch-norm CUDA C kernels vs NumPy
# (N, C, P): P and M = N P under, over and not a multiple of the 256 threads of a channel's block; P = 1
BATCH_NORM_SHAPES = [(4, 3, 25), (600, 2, 1), (2, 5, 300), (7, 2, 37)]


def test_the_batch_norm_kernels_are_found_for_cupy_arrays():
    from minigrad.ops.registry import find_kernel

    x = _gpu(randn(2, 3, 4))
    for name, function in gpu_batchnorm.KERNELS.items():
        assert find_kernel(name, x) is function, f"{name}: {find_kernel(name, x)!r} for a CuPy array"


@pytest.mark.parametrize("relu", [False, True])
@pytest.mark.parametrize("dtype", [numpy.float32, numpy.float64])
@pytest.mark.parametrize("shape", BATCH_NORM_SHAPES)
def test_cuda_batch_norm_forward_and_backward_equal_numpy(shape, dtype, relu):
    """batchnorm_forward.cu and batchnorm_backward.cu on the card against the NumPy references on the CPU:
    y, mean, var, inv_std, then dx, dgamma, dbeta (with the fused ReLU's output when relu)."""
    x3 = (randn(*shape) * 2 + 3).astype(dtype)
    dy3 = randn(*shape, seed=1).astype(dtype)
    gamma, beta = randn(shape[1], seed=2).astype(dtype), randn(shape[1], seed=3).astype(dtype)
    close = dict(rtol=2e-4, atol=2e-4) if dtype == numpy.float32 else dict(rtol=1e-9, atol=1e-9)
    ours = gpu_batchnorm.batch_norm_train_forward(_gpu(x3), _gpu(gamma), _gpu(beta), 1e-5, relu=relu)
    reference = norm.batch_norm_train_forward_numpy(x3.copy(), gamma, beta, 1e-5, relu=relu)
    assert ours[0].dtype == dtype
    for name, a, b in zip(["y", "mean", "var", "inv_std"], ours, reference):
        numpy.testing.assert_allclose(backend.to_numpy(a), b, err_msg=name, **close)
    y3, mean, _, inv_std = reference
    relu_out3 = y3 if relu else None
    ours = gpu_batchnorm.batch_norm_backward(_gpu(x3), _gpu(dy3), _gpu(mean), _gpu(inv_std), _gpu(gamma),
                                             relu_out3=None if relu_out3 is None else _gpu(relu_out3))
    reference = norm.batch_norm_backward_numpy(x3, dy3, mean, inv_std, gamma, relu_out3=relu_out3)
    assert ours[0].dtype == dtype
    count = shape[0] * shape[2]                                         # dgamma and dbeta add this many terms
    for name, a, b in zip(["dx", "dgamma", "dbeta"], ours, reference):
        atol = close["atol"] * (1.0 + numpy.abs(b).max()) * (1 if name == "dx" else count)
        numpy.testing.assert_allclose(backend.to_numpy(a), b, rtol=close["rtol"], atol=atol, err_msg=name)


@pytest.mark.parametrize("relu", [False, True])
def test_float32_batch_norm_training_on_the_kernels_matches_cpu(relu):
    """batch_norm and batch_norm_relu in float32, training: output, gradients and running statistics on
    the GPU (the CUDA C kernels) against the CPU (the Numba kernels or NumPy)."""
    function = norm.batch_norm_relu if relu else norm.batch_norm
    running = {}

    def train(x, gamma, beta):
        xp = backend.module_for(x.device)
        mean, var = xp.zeros(4, dtype=xp.float32), xp.ones(4, dtype=xp.float32)
        running[backend.normalize_device(x.device)] = (mean, var)
        return function(x, mean, var, gamma, beta, training=True, momentum=0.2)

    x = (randn(8, 4, 6, 6) * 3 + 1).astype(numpy.float32)
    gamma, beta = randn(4, seed=1).astype(numpy.float32), randn(4, seed=2).astype(numpy.float32)
    assert_gpu_matches_cpu(train, [x, gamma, beta], rtol=1e-4, atol=1e-4)
    for name, a, b in zip(["running_mean", "running_var"], running["gpu"], running["cpu"]):
        assert a.dtype == numpy.float32, name
        numpy.testing.assert_allclose(backend.to_numpy(a), b, rtol=1e-5, atol=1e-6, err_msg=name)


# ------------------------------------------------------------------ the Numba CUDA kernels on a real GPU
def _numba_cuda():
    """numba.cuda, once it has compiled and run a one-line kernel here; else skip (not fail): a GPU
    machine without numba-cuda, or without the CUDA compiler library (NVVM) it needs, is not a defect."""
    reason = "numba.cuda cannot use this GPU (numba-cuda not installed or driver mismatch)"
    try:
        from numba import cuda

        if cuda.is_available():
            @cuda.jit
            def probe(out):
                out[0] = 1.0

            out = cuda.device_array(1)
            probe[1, 1](out)
            if out.copy_to_host()[0] == 1.0:
                return cuda
            reason = "numba.cuda's probe kernel gave a wrong answer"
    except Exception as error:                            # no CUDA target, no NVVM, a driver mismatch
        reason = f"numba.cuda cannot compile or run a kernel here ({type(error).__name__}: {error})"
    pytest.skip(reason)


def test_numba_cuda_im2col_and_col2im_on_gpu_equal_numpy():
    _numba_cuda()
    from minigrad.kernels.numba_cuda import col2im as numba_col2im, im2col as numba_im2col

    empty = backend.cupy_module().empty                   # the launchers allocate with the caller's library
    shape, (kh, kw), stride, padding, dilation = CONV_CASES[1]
    x = randn(*shape)
    cols = numba_im2col.im2col(_gpu(x), kh, kw, stride, padding, dilation, empty=empty)
    assert backend.is_gpu_array(cols)
    numpy.testing.assert_array_equal(backend.to_numpy(cols), im2col_numpy(x, kh, kw, stride, padding, dilation))
    c = randn(*cols.shape, seed=1)
    dx = numba_col2im.col2im(_gpu(c), shape, kh, kw, stride, padding, dilation, empty=empty)
    assert backend.is_gpu_array(dx)
    numpy.testing.assert_allclose(backend.to_numpy(dx), col2im_numpy(c, shape, kh, kw, stride, padding, dilation),
                                  rtol=1e-13, atol=1e-13)


def test_numba_cuda_max_pool_on_gpu_equals_numpy():
    _numba_cuda()
    from minigrad.kernels.numba_cuda import maxpool

    empty = backend.cupy_module().empty
    shape, (kh, kw), stride, padding = POOL_CASES[1]
    x = numpy.random.default_rng(6).integers(0, 4, size=shape).astype(numpy.float64)
    y, index = maxpool.max_pool_forward(_gpu(x), kh, kw, stride, padding, empty=empty)
    assert backend.is_gpu_array(y) and backend.is_gpu_array(index)
    y_expected, index_expected = max_pool2d_forward_numpy(x, kh, kw, stride, padding)
    numpy.testing.assert_array_equal(backend.to_numpy(y), y_expected)
    numpy.testing.assert_array_equal(backend.to_numpy(index), index_expected)
    dy = randn(*y_expected.shape)
    dx = maxpool.max_pool_backward(_gpu(dy), _gpu(index_expected), shape, kh, kw, stride, padding, empty=empty)
    assert backend.is_gpu_array(dx)
    numpy.testing.assert_allclose(backend.to_numpy(dx),
                                  max_pool2d_backward_numpy(dy, index_expected, shape, kh, kw, stride, padding),
                                  rtol=1e-13, atol=1e-13)


def test_dispatchers_fall_back_to_the_numba_cuda_twins_where_cuda_c_cannot_compile(monkeypatch):
    """Once CuPy has failed to compile CUDA C, conv2d and max_pool2d run the Numba CUDA twins on the GPU:
    the same numbers as the CPU, values and gradients."""
    _numba_cuda()
    monkeypatch.setitem(gpu_kernels._no_cuda_c, "error", gpu_kernels.KernelCompileError("(simulated by the test)"))
    assert_gpu_matches_cpu(lambda x, w: pool.max_pool2d(conv.conv2d(x, w, stride=2, padding=1), 2, 2, 0),
                           [randn(2, 3, 9, 9), randn(4, 3, 3, 3, seed=1)])


# ------------------------------------------------------------------ a few training steps of the CIFAR example
def _write_tiny_cifar(root, images_per_batch=12):
    """cifar-10-batches-py/ in the official format (pickled dicts, bytes keys): noisy images whose
    brightness is 20 x their label, so that a network can learn them and its loss falls."""
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    rng = numpy.random.default_rng(0)
    for k in range(1, 6):
        labels = rng.integers(0, 10, images_per_batch)
        data = 20 * labels[:, None] + rng.integers(0, 60, (images_per_batch, 3072))
        batch = {b"data": data.astype(numpy.uint8), b"labels": [int(v) for v in labels]}
        (folder / f"data_batch_{k}").write_bytes(pickle.dumps(batch, protocol=4))
    meta = {b"label_names": [name.encode() for name in
                             ("airplane automobile bird cat deer dog frog horse ship truck").split()]}
    (folder / "batches.meta").write_bytes(pickle.dumps(meta, protocol=4))
    return root


def run_example(tmp_path, script, device, *options):
    """examples/<script> on learnable tiny data on `device`, with `options`; the per-epoch training losses."""
    data = _write_tiny_cifar(tmp_path / "data")
    command = [sys.executable, str(REPOSITORY / "examples" / script), "--device", device, "--data-dir", str(data),
               "--out", str(tmp_path / "run"), "--no-progress", *options]
    environment = dict(os.environ, MPLBACKEND="Agg")
    done = subprocess.run(command, cwd=REPOSITORY, env=environment, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, f"exit {done.returncode}\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    assert any(line.startswith("summary:") for line in done.stdout.splitlines()), done.stdout[-3000:]
    header, *rows = (tmp_path / "run" / "metrics.csv").read_text().strip().splitlines()
    column = header.split(",").index("train_loss")
    return [float(row.split(",")[column]) for row in rows]


def run_cifar_resnet_example(tmp_path, device):
    """Three epochs of examples/cifar_resnet.py on learnable tiny data; the per-epoch training losses."""
    return run_example(tmp_path, "cifar_resnet.py", device, "--arch", "resnet20", "--epochs", "3",
                       "--batch-size", "16", "--val-size", "12")


def check_losses_fall_and_stay_finite(losses):
    assert len(losses) == 3 and all(numpy.isfinite(losses)), losses
    assert losses[-1] < losses[0], f"the training loss did not fall: {losses}"


def test_cifar_resnet_example_trains_on_the_gpu_and_its_loss_falls(tmp_path):
    check_losses_fall_and_stay_finite(run_cifar_resnet_example(tmp_path, "gpu"))


def run_speedrun_example(tmp_path, device):
    """Two epochs of examples/cifar_speedrun.py (the GPU batch-norm and GELU paths, Muon) on tiny data;
    the per-epoch training losses."""
    return run_example(tmp_path, "cifar_speedrun.py", device, "--epochs", "2", "--batch-size", "16",
                       "--limit-train", "40", "--val-size", "10", "--no-download")


def test_the_speedrun_example_trains_on_the_gpu(tmp_path):
    losses = run_speedrun_example(tmp_path, "gpu")
    assert len(losses) == 2 and all(numpy.isfinite(losses)), losses


def test_nccl_collectives_and_ddp_on_every_device():
    """minigrad.distributed's NCCL path: one rank per CUDA device (one rank on a one-GPU machine)."""
    import minigrad.distributed as dist
    mpiexec = Path(sys.executable).parent / "mpiexec"
    if not dist.is_available() or not mpiexec.exists():
        pytest.skip("needs mpi4py and mpiexec: pip install 'minigrad[distributed]'")
    import cupy
    ranks = cupy.cuda.runtime.getDeviceCount()
    checks = ["nccl_collectives", "nccl_ddp_matches_one_process"]
    env = dict(os.environ, PYTHONPATH=str(REPOSITORY))
    result = subprocess.run([str(mpiexec), "-n", str(ranks), sys.executable, str(REPOSITORY / "tests" / "mpi_checks.py"),
                             *checks], env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0 and "ok: " + " ".join(checks) in result.stdout, result.stdout + result.stderr
