"""Devices and array modules (minigrad/backend.py): CPU without CuPy, clear GPU and mixing errors."""
import pathlib
import subprocess
import sys
import textwrap

import numpy
import pytest

import minigrad
from minigrad import backend


@pytest.mark.parametrize("name, expected", [
    ("cpu", "cpu"), ("CPU", "cpu"), ("gpu", "gpu"), ("cuda", "gpu"), ("cuda:0", "gpu"), (None, "cpu"),
])
def test_device_names_normalize(name, expected):
    assert backend.normalize_device(name) == expected


def test_unknown_device_is_rejected_by_name():
    with pytest.raises(backend.DeviceError, match="'tpu'"):
        backend.normalize_device("tpu")


def test_array_module_of_numpy_is_numpy():
    assert backend.array_module(numpy.zeros(2)) is numpy


def test_cpu_tensor_device_is_cpu():
    assert minigrad.zeros(2).device == "cpu"


def test_cpu_path_never_imports_cupy():
    script = textwrap.dedent("""
        import sys
        import minigrad
        x = minigrad.randn(4, 3, requires_grad=True)
        w = minigrad.randn(3, 2, requires_grad=True)
        loss = (x @ w).relu().softmax(dim=1).log().mean()
        loss.backward()
        assert x.grad.shape == (4, 3)
        assert 'cupy' not in sys.modules, 'cupy was imported on the CPU path'
        print('ok')
    """)
    repo_root = pathlib.Path(__file__).resolve().parent.parent
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60, cwd=repo_root
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "ok"


needs_no_gpu = pytest.mark.skipif(backend.gpu_available(), reason="a GPU is present here")


@needs_no_gpu
def test_gpu_request_without_cupy_raises_one_clear_error():
    with pytest.raises(backend.DeviceError) as info:
        minigrad.zeros(2, device="gpu")
    message = str(info.value)
    assert "GPU" in message and "CuPy" in message and "pip install" in message


@needs_no_gpu
def test_moving_a_tensor_to_cuda_without_cupy_raises_device_error():
    with pytest.raises(backend.DeviceError, match="pip install"):
        minigrad.ones(2).to("cuda")


@needs_no_gpu
def test_cuda_is_available_is_false_without_cupy():
    assert minigrad.cuda.is_available() is False


def _fake_gpu_tensor(values):
    """A Tensor that claims to live on the GPU but holds a NumPy array: enough to test the device check."""
    return minigrad.Tensor._make(numpy.asarray(values, dtype=numpy.float32), "gpu")


def test_mixing_devices_in_one_op_names_both_devices():
    with pytest.raises(backend.DeviceError) as info:
        minigrad.ones(3) + _fake_gpu_tensor([1.0, 2.0, 3.0])
    message = str(info.value)
    assert "Add" in message and "'cpu'" in message and "'gpu'" in message


def test_mixing_devices_in_matmul_names_the_op():
    with pytest.raises(backend.DeviceError, match="MatMul.*'gpu'.*'cpu'"):
        _fake_gpu_tensor(numpy.ones((2, 2))) @ minigrad.ones(2, 2)


def test_to_device_on_numpy_is_identity_for_cpu():
    array = numpy.ones(3)
    assert backend.to_device(array, "cpu") is array


def test_scatter_add_accumulates_repeated_indices():
    target = numpy.zeros(3)
    backend.scatter_add(target, numpy.array([0, 0, 2]), numpy.array([1.0, 2.0, 5.0]))
    numpy.testing.assert_array_equal(target, [3.0, 0.0, 5.0])


def test_erf_matches_known_values():
    values = backend.erf(numpy.array([0.0, 1.0, -1.0]))
    numpy.testing.assert_allclose(values, [0.0, 0.8427007929497149, -0.8427007929497149], rtol=1e-12)


@pytest.mark.gpu
def test_gpu_round_trip_keeps_values():
    x = minigrad.randn(3, 4, requires_grad=True)
    y = (x.to("gpu") * 2).sum()
    y.backward()
    assert x.grad.device == "cpu"
    numpy.testing.assert_allclose(x.grad.numpy(), numpy.full((3, 4), 2.0))
