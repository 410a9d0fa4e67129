"""The Numba CUDA kernels in kernels/numba_cuda/, run under Numba's CUDA simulator, vs the NumPy references.

NUMBA_ENABLE_CUDASIM=1 must be set BEFORE numba is first imported, and it changes
numba.cuda for the whole process. So this module never imports numba: a fixture runs
this same file as a script in a subprocess with the variable set; the script runs every
kernel on tiny shapes (the simulator runs each GPU thread as a Python thread) and prints
one JSON object {check name: worst absolute error}. Each test then asserts one entry.
"""
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy
import pytest

pytest.importorskip("numba")

REPOSITORY = Path(__file__).resolve().parents[1]
DTYPES = ["float32", "float64"]
TOLERANCE = {"float32": 1e-5, "float64": 1e-12}

# name -> (x_shape, kernel (KH, KW), stride, padding, dilation)
CONV_CASES = {
    "3x3_pad1": ((2, 2, 4, 4), (3, 3), (1, 1), (1, 1), (1, 1)),
    "3x2_stride21_dilated": ((1, 2, 6, 5), (3, 2), (2, 1), (1, 0), (1, 2)),
    "2x2_stride2": ((2, 1, 4, 5), (2, 2), (2, 2), (0, 1), (1, 1)),
}
# name -> (x_shape, kernel (KH, KW), stride, padding)
POOL_CASES = {
    "2x2_stride2": ((2, 2, 4, 4), (2, 2), (2, 2), (0, 0)),
    "3x3_overlapping_pad1": ((1, 2, 5, 4), (3, 3), (1, 1), (1, 1)),
    "3x2_stride21_pad10": ((2, 1, 5, 4), (3, 2), (2, 1), (1, 0)),
}
KERNEL_CHECKS = [
    "im2col_vs_numpy", "im2col_vs_cpu_reference",
    "col2im_vs_numpy", "col2im_vs_cpu_reference",
]
POOL_CHECKS = [
    "max_pool_forward_values_vs_numpy", "max_pool_forward_argmax_vs_numpy",
    "max_pool_forward_vs_cpu_reference",
    "max_pool_backward_vs_numpy", "max_pool_backward_vs_cpu_reference",
]


def _error(a, b):
    a, b = numpy.asarray(a, dtype=numpy.float64), numpy.asarray(b, dtype=numpy.float64)
    if a.shape != b.shape:
        return float("inf")
    return float(numpy.max(numpy.abs(a - b))) if a.size else 0.0


def run_all_checks():
    """Run every kernel under the simulator; {"<check>/<case>/<dtype>": worst error}. Called in the subprocess."""
    from numba import config

    from minigrad.kernels.geometry import make_geometry
    from minigrad.kernels.numba_cuda import col2im as col2im_kernels, im2col as im2col_kernels, maxpool
    from minigrad.ops.im2col import col2im_numpy, im2col_numpy
    from minigrad.ops.pool import max_pool2d_backward_numpy, max_pool2d_forward_numpy

    rng = numpy.random.default_rng(0)
    results = {"simulator": float(bool(config.ENABLE_CUDASIM))}
    for name, (shape, (kh, kw), stride, padding, dilation) in CONV_CASES.items():
        geometry = make_geometry("test", shape, (kh, kw), stride, padding, dilation)
        for dtype in DTYPES:
            x = rng.standard_normal(shape).astype(dtype)
            cols = im2col_kernels.im2col(x, kh, kw, stride, padding, dilation)
            results[f"im2col_vs_numpy/{name}/{dtype}"] = _error(cols, im2col_numpy(x, kh, kw, stride, padding, dilation))
            results[f"im2col_vs_cpu_reference/{name}/{dtype}"] = _error(cols, im2col_kernels.im2col_cpu(x, geometry))
            c = rng.standard_normal(cols.shape).astype(dtype)
            dx = col2im_kernels.col2im(c, shape, kh, kw, stride, padding, dilation)
            results[f"col2im_vs_numpy/{name}/{dtype}"] = _error(dx, col2im_numpy(c, shape, kh, kw, stride, padding, dilation))
            results[f"col2im_vs_cpu_reference/{name}/{dtype}"] = _error(dx, col2im_kernels.col2im_cpu(c, shape, geometry))
    for name, (shape, (kh, kw), stride, padding) in POOL_CASES.items():
        geometry = make_geometry("test", shape, (kh, kw), stride, padding, 1)
        for dtype in DTYPES:
            x = rng.integers(0, 4, size=shape).astype(dtype)   # small integers: many ties
            y, index = maxpool.max_pool_forward(x, kh, kw, stride, padding)
            y_numpy, index_numpy = max_pool2d_forward_numpy(x, kh, kw, stride, padding)
            y_cpu, index_cpu = maxpool.max_pool_forward_cpu(x, geometry)
            results[f"max_pool_forward_values_vs_numpy/{name}/{dtype}"] = _error(y, y_numpy)
            results[f"max_pool_forward_argmax_vs_numpy/{name}/{dtype}"] = _error(index, index_numpy)
            results[f"max_pool_forward_vs_cpu_reference/{name}/{dtype}"] = max(_error(y, y_cpu), _error(index, index_cpu))
            dy = rng.standard_normal(y.shape).astype(dtype)
            dx = maxpool.max_pool_backward(dy, index_numpy, shape, kh, kw, stride, padding)
            results[f"max_pool_backward_vs_numpy/{name}/{dtype}"] = _error(
                dx, max_pool2d_backward_numpy(dy, index_numpy, shape, kh, kw, stride, padding))
            results[f"max_pool_backward_vs_cpu_reference/{name}/{dtype}"] = _error(
                dx, maxpool.max_pool_backward_cpu(dy, index_numpy, shape, geometry))

    allocated = []                          # the launchers' outputs come from the allocator they are given

    def empty(shape, dtype):
        allocated.append((tuple(shape), numpy.dtype(dtype).name))
        return numpy.empty(shape, dtype)

    x = rng.standard_normal((1, 2, 4, 4))
    cols = im2col_kernels.im2col(x, 3, 3, (1, 1), (1, 1), (1, 1), empty=empty)
    col2im_kernels.col2im(cols, x.shape, 3, 3, (1, 1), (1, 1), (1, 1), empty=empty)
    y, index = maxpool.max_pool_forward(x, 2, 2, (2, 2), (0, 0), empty=empty)
    maxpool.max_pool_backward(y, index, x.shape, 2, 2, (2, 2), (0, 0), empty=empty)
    results["allocations"] = allocated
    return results


@pytest.fixture(scope="module")
def simulated():
    """Run this file as a script under the CUDA simulator; return its {check: error} results."""
    environment = dict(os.environ, NUMBA_ENABLE_CUDASIM="1")     # minigrad.kernels: the installed package
    done = subprocess.run(
        [sys.executable, __file__], cwd=REPOSITORY, env=environment, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, f"the simulator run failed:\n{done.stdout}\n{done.stderr}"
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_subprocess_ran_under_the_simulator(simulated):
    assert simulated["simulator"] == 1.0


def test_this_process_did_not_switch_numba_to_the_simulator():
    assert os.environ.get("NUMBA_ENABLE_CUDASIM") != "1"


def test_launchers_allocate_their_outputs_with_the_given_empty(simulated):
    """The GPU caller passes cupy.empty; each launcher makes its outputs with it, and nothing else."""
    assert simulated["allocations"] == [[[18, 16], "float64"], [[1, 2, 4, 4], "float64"],
                                        [[1, 2, 2, 2], "float64"], [[1, 2, 2, 2], "int64"],
                                        [[1, 2, 4, 4], "float64"]]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("case", sorted(CONV_CASES))
@pytest.mark.parametrize("check", KERNEL_CHECKS)
def test_numba_cuda_conv_kernel_matches(simulated, check, case, dtype):
    key = f"{check}/{case}/{dtype}"
    exact = check.startswith("im2col")                    # a copy: bit for bit
    assert simulated[key] <= (0.0 if exact else TOLERANCE[dtype]), f"{key}: max error {simulated[key]}"


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("case", sorted(POOL_CASES))
@pytest.mark.parametrize("check", POOL_CHECKS)
def test_numba_cuda_max_pool_kernel_matches(simulated, check, case, dtype):
    key = f"{check}/{case}/{dtype}"
    exact = "forward" in check                            # a selection: bit for bit, argmax included
    assert simulated[key] <= (0.0 if exact else TOLERANCE[dtype]), f"{key}: max error {simulated[key]}"


if __name__ == "__main__":
    print(json.dumps(run_all_checks()))
