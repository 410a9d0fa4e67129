"""The CUDA C sources in kernels/cuda/, checked without a GPU: nvcc compiles them, and their CPU
references (the kernels' own per-thread functions run in a loop, called through ctypes) equal
the NumPy references in minigrad/ops/im2col.py and pool.py.

Skipped where nvcc is not on PATH. Each source is compiled twice, once: to PTX for sm_80
(the device code, as NVRTC will see it on a GPU) and to a host shared library (the CPU
references). The whole module takes a few seconds.
"""
import ctypes
import re
import shutil
import subprocess
from concurrent.futures import ThreadPoolExecutor

import numpy
import pytest
from hypothesis import given, strategies as st

from minigrad.fast import gpu
from minigrad.kernels.geometry import as_struct, cols_shape, make_geometry, pooled_shape
from minigrad.ops.im2col import col2im_numpy, im2col_numpy
from minigrad.ops.pool import max_pool2d_backward_numpy, max_pool2d_forward_numpy

NVCC = shutil.which("nvcc")
pytestmark = pytest.mark.skipif(NVCC is None, reason="nvcc is not on PATH")

SOURCES = ["adam_step.cu", "batchnorm_backward.cu", "batchnorm_forward.cu", "col2im.cu", "im2col.cu",
           "maxpool_backward.cu", "maxpool_forward.cu", "rmsprop_step.cu", "sgd_step.cu"]
ARCH = "sm_80"
DTYPES = [numpy.float32, numpy.float64]
SUFFIX = {numpy.float32: "f32", numpy.float64: "f64"}

# (x_shape, kernel (KH, KW), stride, padding, dilation): odd sizes, every argument exercised
CONV_CASES = [
    ((2, 3, 5, 5), (3, 3), (1, 1), (1, 1), (1, 1)),
    ((1, 2, 7, 6), (3, 2), (2, 1), (0, 1), (1, 1)),
    ((2, 1, 8, 7), (2, 3), (2, 3), (1, 2), (2, 1)),
    ((1, 3, 4, 4), (1, 1), (1, 1), (0, 0), (1, 1)),
    ((3, 2, 6, 9), (3, 3), (3, 2), (2, 0), (1, 2)),
]
# (x_shape, kernel (KH, KW), stride, padding): overlapping (stride < kernel) and padded windows
POOL_CASES = [
    ((2, 3, 6, 6), (2, 2), (2, 2), (0, 0)),
    ((1, 2, 7, 5), (3, 3), (1, 1), (1, 1)),
    ((2, 1, 5, 8), (3, 2), (2, 1), (1, 0)),
    ((1, 1, 4, 4), (4, 4), (1, 1), (2, 2)),
]


def _compile(source, output, *flags):
    command = [NVCC, *flags, str(gpu.source_path(source)), "-o", str(output)]
    done = subprocess.run(command, capture_output=True, text=True, timeout=300)
    return done.returncode, done.stdout + done.stderr


def build_sources(folder, sources):
    """{source: (ptx result, library result)}, each (returncode, compiler output, path); built in parallel."""
    jobs = {}
    with ThreadPoolExecutor(max_workers=4) as pool:
        for source in sources:
            stem = source[:-3]
            ptx, library = folder / f"{stem}.ptx", folder / f"{stem}.so"
            jobs[source] = (
                (pool.submit(_compile, source, ptx, "--ptx", f"-arch={ARCH}"), ptx),
                (pool.submit(_compile, source, library, "-shared", "-Xcompiler", "-fPIC"), library),
            )
    return {
        source: tuple((*future.result(), path) for future, path in pair)
        for source, pair in jobs.items()
    }


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    return build_sources(tmp_path_factory.mktemp("nvcc"), SOURCES)


def _library(built, source):
    returncode, output, path = built[source][1]
    assert returncode == 0, f"nvcc -shared {source} failed:\n{output}"
    return ctypes.CDLL(str(path))


def _pointer(array):
    return array.ctypes.data_as(ctypes.c_void_p)


def _call(library, name, *arrays):
    """Call the extern "C" CPU reference `name` with C-contiguous NumPy arrays (pointers)."""
    function = getattr(library, name)
    function.restype = None
    function.argtypes = [ctypes.c_void_p] * len(arrays)
    function(*(_pointer(a) for a in arrays))


# ------------------------------------------------------------------ the sources and their compilation
def test_packaged_sources_are_the_kernels_listed_here():
    assert gpu.source_files() == SOURCES


@pytest.mark.parametrize("source", SOURCES)
def test_source_compiles_to_ptx_for_sm80(built, source):
    returncode, output, _ = built[source][0]
    assert returncode == 0, f"nvcc --ptx -arch={ARCH} {source} failed:\n{output}"


@pytest.mark.parametrize("source", SOURCES)
def test_ptx_has_float32_and_float64_entry_points(built, source):
    _, _, ptx = built[source][0]
    entries = set(re.findall(r"\.entry\s+(\w+)", ptx.read_text()))
    stem = {"maxpool_forward.cu": "max_pool_forward", "maxpool_backward.cu": "max_pool_backward",
            "batchnorm_forward.cu": "batch_norm_forward", "batchnorm_backward.cu": "batch_norm_backward"}.get(
        source, source[:-3]
    )
    assert entries == {f"{stem}_f32", f"{stem}_f64"}, f"{source}: entry points {sorted(entries)}"


@pytest.mark.parametrize("source", SOURCES)
def test_device_code_includes_only_local_headers(source):
    """NVRTC has no system headers: outside the host-only block only "x.cuh" includes may appear."""
    text = gpu.source_path(source).read_text()
    device_part = re.sub(r"#ifndef __CUDACC_RTC__.*?#endif", "", text, flags=re.DOTALL)
    includes = re.findall(r"#include\s*(\S+)", device_part)
    assert all(re.fullmatch(r'"\w+\.cuh"', name) for name in includes), f"{source} includes {includes}"


@pytest.mark.parametrize("source", SOURCES)
def test_read_source_pastes_the_geometry_header(source):
    text = gpu.read_source(source)
    assert "#include" not in text and "struct Geometry" in text


# ------------------------------------------------------------------ CPU references vs NumPy references
def _conv_geometry(case):
    x_shape, kernel, stride, padding, dilation = case
    return make_geometry("test", x_shape, kernel, stride, padding, dilation)


def _c_im2col(library, x, geometry):
    cols = numpy.empty(cols_shape(geometry), dtype=x.dtype)
    _call(library, f"im2col_cpu_{SUFFIX[x.dtype.type]}", x, cols, as_struct(geometry))
    return cols


def _c_col2im(library, cols, geometry):
    dx = numpy.empty(tuple(geometry)[:4], dtype=cols.dtype)
    _call(library, f"col2im_cpu_{SUFFIX[cols.dtype.type]}", cols, dx, as_struct(geometry))
    return dx


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("case", CONV_CASES)
def test_im2col_cpu_reference_equals_numpy_bit_for_bit(built, case, dtype):
    x = numpy.random.default_rng(0).standard_normal(case[0]).astype(dtype)
    expected = im2col_numpy(x, *case[1], *case[2:])
    numpy.testing.assert_array_equal(_c_im2col(_library(built, "im2col.cu"), x, _conv_geometry(case)), expected)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("case", CONV_CASES)
def test_col2im_cpu_reference_equals_numpy(built, case, dtype):
    geometry = _conv_geometry(case)
    cols = numpy.random.default_rng(1).standard_normal(cols_shape(geometry)).astype(dtype)
    expected = col2im_numpy(cols, case[0], *case[1], *case[2:])
    tolerance = 1e-5 if dtype == numpy.float32 else 1e-13
    numpy.testing.assert_allclose(_c_col2im(_library(built, "col2im.cu"), cols, geometry), expected,
                                  rtol=tolerance, atol=tolerance)


@given(
    shape=st.tuples(st.integers(1, 2), st.integers(1, 3), st.integers(1, 7), st.integers(1, 7)),
    kernel=st.tuples(st.integers(1, 3), st.integers(1, 3)),
    stride=st.tuples(st.integers(1, 3), st.integers(1, 3)),
    padding=st.tuples(st.integers(0, 2), st.integers(0, 2)),
    dilation=st.tuples(st.integers(1, 2), st.integers(1, 2)),
)
def test_im2col_and_col2im_cpu_references_match_numpy_for_any_geometry(built, shape, kernel, stride, padding,
                                                                       dilation):
    try:
        geometry = make_geometry("test", shape, kernel, stride, padding, dilation)
    except ValueError:
        return                                            # the window does not fit: nothing to compare
    rng = numpy.random.default_rng(2)
    x = rng.standard_normal(shape)
    cols = rng.standard_normal(cols_shape(geometry))
    numpy.testing.assert_array_equal(_c_im2col(_library(built, "im2col.cu"), x, geometry),
                                     im2col_numpy(x, *kernel, stride, padding, dilation))
    numpy.testing.assert_allclose(_c_col2im(_library(built, "col2im.cu"), cols, geometry),
                                  col2im_numpy(cols, shape, *kernel, stride, padding, dilation),
                                  rtol=1e-12, atol=1e-12)


def test_col2im_cpu_reference_is_the_adjoint_of_im2col(built):
    """<im2col(x), c> == <x, col2im(c)>: col2im is im2col's transpose."""
    geometry = _conv_geometry(CONV_CASES[2])
    rng = numpy.random.default_rng(3)
    x, c = rng.standard_normal(tuple(geometry)[:4]), rng.standard_normal(cols_shape(geometry))
    left = numpy.sum(_c_im2col(_library(built, "im2col.cu"), x, geometry) * c)
    right = numpy.sum(x * _c_col2im(_library(built, "col2im.cu"), c, geometry))
    assert abs(left - right) <= 1e-10 * abs(left)


def _pool_geometry(case):
    x_shape, kernel, stride, padding = case
    return make_geometry("test", x_shape, kernel, stride, padding, 1)


def _c_max_pool_forward(library, x, geometry):
    y = numpy.empty(pooled_shape(geometry), dtype=x.dtype)
    index = numpy.empty(pooled_shape(geometry), dtype=numpy.int64)
    _call(library, f"max_pool_forward_cpu_{SUFFIX[x.dtype.type]}", x, y, index, as_struct(geometry))
    return y, index


def _c_max_pool_backward(library, dy, index, geometry):
    dx = numpy.empty(tuple(geometry)[:4], dtype=dy.dtype)
    _call(library, f"max_pool_backward_cpu_{SUFFIX[dy.dtype.type]}", dy, index, dx, as_struct(geometry))
    return dx


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("case", POOL_CASES)
def test_max_pool_forward_cpu_reference_equals_numpy_values_and_argmax(built, case, dtype):
    x = numpy.random.default_rng(4).standard_normal(case[0]).astype(dtype)
    y, index = _c_max_pool_forward(_library(built, "maxpool_forward.cu"), x, _pool_geometry(case))
    y_expected, index_expected = max_pool2d_forward_numpy(x, *case[1], *case[2:])
    numpy.testing.assert_array_equal(y, y_expected)
    numpy.testing.assert_array_equal(index, index_expected)


def test_max_pool_forward_cpu_reference_breaks_ties_like_numpy(built):
    """Many equal values: the first tap in (kh, kw) order must win, as in the NumPy reference."""
    case = POOL_CASES[1]
    x = numpy.random.default_rng(5).integers(0, 2, size=case[0]).astype(numpy.float64)
    _, index = _c_max_pool_forward(_library(built, "maxpool_forward.cu"), x, _pool_geometry(case))
    numpy.testing.assert_array_equal(index, max_pool2d_forward_numpy(x, *case[1], *case[2:])[1])


def test_max_pool_forward_cpu_reference_keeps_a_leading_nan_like_numpy(built):
    case = POOL_CASES[0]
    x = numpy.random.default_rng(6).standard_normal(case[0])
    x[0, 0, 0, 0] = x[1, 2, 3, 3] = numpy.nan             # first tap of one window, last tap of another
    y, index = _c_max_pool_forward(_library(built, "maxpool_forward.cu"), x, _pool_geometry(case))
    y_expected, index_expected = max_pool2d_forward_numpy(x, *case[1], *case[2:])
    numpy.testing.assert_array_equal(y, y_expected)       # assert_array_equal treats NaN == NaN
    numpy.testing.assert_array_equal(index, index_expected)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("case", POOL_CASES)
def test_max_pool_backward_cpu_reference_equals_numpy(built, case, dtype):
    rng = numpy.random.default_rng(7)
    x = rng.integers(0, 3, size=case[0]).astype(dtype)   # ties, so several windows share winners
    _, index = max_pool2d_forward_numpy(x, *case[1], *case[2:])
    dy = rng.standard_normal(index.shape).astype(dtype)
    dx = _c_max_pool_backward(_library(built, "maxpool_backward.cu"), dy, index, _pool_geometry(case))
    tolerance = 1e-5 if dtype == numpy.float32 else 1e-13
    numpy.testing.assert_allclose(dx, max_pool2d_backward_numpy(dy, index, case[0], *case[1], *case[2:]),
                                  rtol=tolerance, atol=tolerance)


# ------------------------------------------------------------------ minigrad/fast/gpu.py, the GPU played by the CPU references
@pytest.fixture
def cpu_as_gpu(built, monkeypatch):
    """Make minigrad/fast/gpu.py run on NumPy arrays: CuPy is played by NumPy, and each kernel launch
    calls the CPU reference of the same kernel (`im2col_f32` -> `im2col_cpu_f32`) with the
    same arguments. That checks the wrappers' shapes, dtypes and argument order without a GPU."""
    from minigrad import backend

    sources = {"im2col": "im2col.cu", "col2im": "col2im.cu", "sgd_step": "sgd_step.cu", "adam_step": "adam_step.cu",
               "rmsprop_step": "rmsprop_step.cu",
               "max_pool_forward": "maxpool_forward.cu", "max_pool_backward": "maxpool_backward.cu"}
    launches = []

    def kernel_function(source_name, kernel_name):
        stem, suffix = kernel_name.rsplit("_", 1)
        assert sources[stem] == source_name, f"{kernel_name} is not in {source_name}"

        def launch(grid, block, args):
            launches.append((kernel_name, grid, block))
            assert all(a.flags.c_contiguous for a in args), f"{kernel_name}: non-contiguous argument"
            _call(_library(built, source_name), f"{stem}_cpu_{suffix}", *args)

        return launch

    monkeypatch.setattr(backend, "cupy_module", lambda: numpy)
    monkeypatch.setattr(gpu, "kernel_function", kernel_function)
    return launches


@pytest.mark.parametrize("dtype", DTYPES)
def test_dispatch_im2col_and_col2im_launch_the_kernels_with_the_right_arguments(cpu_as_gpu, dtype):
    shape, kernel, stride, padding, dilation = CONV_CASES[2]
    x = numpy.random.default_rng(8).standard_normal(shape).astype(dtype)
    cols = gpu.im2col(x, *kernel, stride, padding, dilation)
    numpy.testing.assert_array_equal(cols, im2col_numpy(x, *kernel, stride, padding, dilation))
    dx = gpu.col2im(cols, shape, *kernel, stride, padding, dilation)
    numpy.testing.assert_allclose(dx, col2im_numpy(cols, shape, *kernel, stride, padding, dilation), rtol=1e-5)
    assert [name for name, _, _ in cpu_as_gpu] == [f"im2col_{SUFFIX[dtype]}", f"col2im_{SUFFIX[dtype]}"]


@pytest.mark.parametrize("dtype", DTYPES)
def test_dispatch_max_pool_launches_the_kernels_with_the_right_arguments(cpu_as_gpu, dtype):
    shape, kernel, stride, padding = POOL_CASES[2]
    x = numpy.random.default_rng(9).integers(0, 3, size=shape).astype(dtype)
    y, index = gpu.max_pool2d_forward(x, *kernel, stride, padding)
    y_expected, index_expected = max_pool2d_forward_numpy(x, *kernel, stride, padding)
    numpy.testing.assert_array_equal(y, y_expected)
    numpy.testing.assert_array_equal(index, index_expected)
    dy = numpy.random.default_rng(10).standard_normal(y.shape).astype(dtype)
    dx = gpu.max_pool2d_backward(dy, index, shape, *kernel, stride, padding)
    numpy.testing.assert_allclose(dx, max_pool2d_backward_numpy(dy, index, shape, *kernel, stride, padding),
                                  rtol=1e-5)


def test_dispatch_non_contiguous_input_is_made_contiguous_before_the_launch(cpu_as_gpu):
    x = numpy.random.default_rng(11).standard_normal((2, 5, 3, 6)).transpose(0, 2, 1, 3)   # (2, 3, 5, 6)
    cols = gpu.im2col(x, 3, 3, (1, 1), (1, 1), (1, 1))
    numpy.testing.assert_array_equal(cols, im2col_numpy(x, 3, 3, (1, 1), (1, 1), (1, 1)))


def test_dispatch_launches_enough_threads_for_every_element(cpu_as_gpu):
    x = numpy.zeros((3, 2, 9, 9))
    cols = gpu.im2col(x, 3, 3, (1, 1), (1, 1), (1, 1))
    (_, (blocks,), (threads,)), = cpu_as_gpu
    assert blocks * threads >= cols.size


def test_dispatch_float16_falls_back_to_the_reference_without_a_launch(cpu_as_gpu):
    x = numpy.ones((1, 1, 4, 4), dtype=numpy.float16)
    cols = gpu.im2col(x, 2, 2, (1, 1), (0, 0), (1, 1))
    assert cols.dtype == numpy.float16 and cpu_as_gpu == []


def test_dispatch_col2im_rejects_cols_of_the_wrong_shape():
    with pytest.raises(ValueError, match=r"col2im: cols must have shape .*\(9, 16\).* got \(5, 5\)"):
        gpu.col2im(numpy.zeros((5, 5)), (1, 1, 4, 4), 3, 3, (1, 1), (1, 1), (1, 1))


def test_dispatch_max_pool_rejects_padding_over_half_the_window():
    with pytest.raises(ValueError, match="max_pool2d: padding"):
        gpu.max_pool2d_forward(numpy.zeros((1, 1, 4, 4)), 2, 2, (1, 1), (2, 2))


# ------------------------------------------------------------------ sgd_step.cu: one launch for a whole group
def test_sgd_step_device_code_rounds_every_product_and_sum_like_numpy(built):
    """No fused multiply-add in sgd_step's PTX (the _rn intrinsics forbid the contraction), so the GPU
    rounds as SGD.update's NumPy does; the host reference is compared with it below."""
    returncode, output, ptx = built["sgd_step.cu"][0]
    assert returncode == 0, output
    text = ptx.read_text()
    assert "fma." not in text and "mul.rn.f32" in text and "add.rn.f64" in text


SGD_CASES = [
    dict(lr=0.1, momentum=0.9, nesterov=True, weight_decay=5e-4),
    dict(lr=0.05, momentum=0.8, dampening=0.25, weight_decay=1e-2, maximize=True),
    dict(lr=0.1, weight_decay=1e-3),                              # no momentum: no buffers
]


def _sgd_parameters(dtype, seed):
    import minigrad
    rng = numpy.random.default_rng(seed)
    params = [minigrad.nn.Parameter(minigrad.tensor(rng.standard_normal(shape).astype(dtype)))
              for shape in [(5,), (1,), (3, 4), (2, 1, 3)]]
    return params, rng


def _with_gradients(params, rng):
    import minigrad
    for p in params:
        p.grad = minigrad.tensor(rng.standard_normal(p.shape).astype(p.dtype))


@pytest.mark.parametrize("case", SGD_CASES)
@pytest.mark.parametrize("dtype", DTYPES)
def test_fused_sgd_step_equals_the_optimizers_own_update(cpu_as_gpu, case, dtype):
    """gpu.sgd_step (what optimizer.step runs on the GPU) through the kernel's CPU reference, three steps,
    against SGD.update on copies of the same parameters and gradients: parameters and momentum buffers."""
    import minigrad
    ours, rng = _sgd_parameters(dtype, seed=3)
    theirs = [minigrad.nn.Parameter(minigrad.tensor(p.detach().numpy().copy())) for p in ours]
    fused, reference = minigrad.optim.SGD(ours, **case), minigrad.optim.SGD(theirs, **case)
    for step in range(3):
        _with_gradients(ours, numpy.random.default_rng(step))
        _with_gradients(theirs, numpy.random.default_rng(step))
        assert gpu.sgd_step(fused, fused.params_to_update(fused.param_groups[0]), fused.param_groups[0])
        reference.step()
        tolerance = dict(rtol=1e-6, atol=1e-7) if dtype == numpy.float32 else dict(rtol=1e-14, atol=1e-15)
        for k, (a, b) in enumerate(zip(ours, theirs)):
            numpy.testing.assert_allclose(a.detach().numpy(), b.detach().numpy(), err_msg=f"step {step} param {k}",
                                          **tolerance)
            if case.get("momentum"):
                numpy.testing.assert_allclose(fused.state[a]["momentum_buffer"], reference.state[b]["momentum_buffer"],
                                              err_msg=f"step {step} buffer {k}", **tolerance)
    assert [name for name, _, _ in cpu_as_gpu] == [f"sgd_step_{SUFFIX[dtype]}"] * 3        # one launch per step


def test_fused_sgd_step_declines_non_contiguous_shared_or_odd_arrays_and_a_failed_compile(cpu_as_gpu, monkeypatch):
    """Each of these takes the optimizer's own loop (False), touching nothing: a transposed parameter, two
    parameters on one memory, a float64 gradient on a float32 parameter, a buffer of another dtype (the
    model was cast), a subclass of SGD, and CUDA C that will not compile (no momentum buffer is made)."""
    import minigrad
    rng = numpy.random.default_rng(6)

    def case(arrays, grads=None, buffers=None, optimizer_class=None, **options):
        params = [minigrad.nn.Parameter(minigrad.tensor(a)) for a in arrays]
        for p, a in zip(params, arrays):                      # Parameter may have copied: keep the layout
            p.array = a
        for p, g in zip(params, grads or [numpy.ones(a.shape, a.dtype) for a in arrays]):
            p.grad = minigrad.tensor(g)
        optimizer = (optimizer_class or minigrad.optim.SGD)(params, lr=0.1, momentum=0.9, **options)
        for p, b in zip(params, buffers or []):
            optimizer.state.setdefault(p, {})["momentum_buffer"] = b
        return gpu.sgd_step(optimizer, params, optimizer.param_groups[0]), optimizer

    w = rng.standard_normal((3, 4)).astype(numpy.float32)
    assert not case([w.T])[0]                                               # Fortran order
    assert not case([w, w])[0]                                              # one memory twice
    assert not case([w], grads=[numpy.ones((3, 4))])[0]                     # float64 gradient
    assert not case([w], buffers=[numpy.zeros((3, 4))])[0]                  # float64 buffer

    class MySGD(minigrad.optim.SGD):
        pass

    assert not case([w], optimizer_class=MySGD)[0]
    assert cpu_as_gpu == []

    def no_compiler(source_name, kernel_name):
        raise gpu.KernelCompileError("no NVRTC here")

    monkeypatch.setattr(gpu, "kernel_function", no_compiler)
    monkeypatch.setattr(gpu, "_no_cuda_c", {})
    handled, optimizer = case([w.copy()])
    assert not handled and all("momentum_buffer" not in s for s in optimizer.state.values())
    assert "error" in gpu._no_cuda_c


def test_fused_sgd_step_declines_what_it_cannot_do_and_changes_nothing(cpu_as_gpu):
    import minigrad
    params, rng = _sgd_parameters(numpy.float32, seed=4)
    _with_gradients(params, rng)
    optimizer = minigrad.optim.SGD(params, lr=0.1, momentum=0.9)
    optimizer.state.setdefault(params[0], {})["momentum_buffer"] = numpy.zeros(5, numpy.float32)  # one has a buffer
    before = [p.detach().numpy().copy() for p in params]
    assert not gpu.sgd_step(optimizer, params, optimizer.param_groups[0])
    mixed = [params[0], minigrad.nn.Parameter(minigrad.tensor(numpy.ones(3)))]             # float32 with float64
    mixed[1].grad = minigrad.tensor(numpy.ones(3))
    assert not gpu.sgd_step(minigrad.optim.SGD(mixed, lr=0.1), mixed, {"momentum": 0})
    assert cpu_as_gpu == [] and all((p.detach().numpy() == b).all() for p, b in zip(params, before))


# ------------------------------------------------------------------ adam_step.cu
ADAM_CASES = [
    ("Adam", dict(lr=1e-2)),
    ("Adam", dict(lr=1e-2, weight_decay=0.1, amsgrad=True, maximize=True)),
    ("AdamW", dict(lr=1e-2, weight_decay=0.05, betas=(0.8, 0.99))),
]


@pytest.mark.parametrize("name, case", ADAM_CASES)
@pytest.mark.parametrize("dtype", DTYPES)
def test_fused_adam_step_equals_the_optimizers_own_update(cpu_as_gpu, name, case, dtype):
    """gpu.adam_step through the kernel's CPU reference, three steps, against Adam.update (and AdamW) on
    copies: parameters and both moments (and v_max with amsgrad)."""
    import minigrad
    ours, _ = _sgd_parameters(dtype, seed=5)
    theirs = [minigrad.nn.Parameter(minigrad.tensor(p.detach().numpy().copy())) for p in ours]
    cls = getattr(minigrad.optim, name)
    fused, reference = cls(ours, **case), cls(theirs, **case)
    tolerance = dict(rtol=2e-6, atol=1e-7) if dtype == numpy.float32 else dict(rtol=1e-13, atol=1e-15)
    for step in range(3):
        _with_gradients(ours, numpy.random.default_rng(step))
        _with_gradients(theirs, numpy.random.default_rng(step))
        assert gpu.adam_step(fused, fused.params_to_update(fused.param_groups[0]), fused.param_groups[0])
        reference.step()
        for k, (a, b) in enumerate(zip(ours, theirs)):
            numpy.testing.assert_allclose(a.detach().numpy(), b.detach().numpy(), err_msg=f"step {step} param {k}",
                                          **tolerance)
            for key in ("m", "v") + (("v_max",) if case.get("amsgrad") else ()):
                numpy.testing.assert_allclose(fused.state[a][key], reference.state[b][key],
                                              err_msg=f"step {step} {key} {k}", **tolerance)
            assert fused.state[a]["step"] == reference.state[b]["step"] == step + 1
    assert [n for n, _, _ in cpu_as_gpu] == [f"adam_step_{SUFFIX[dtype]}"] * 3


def test_fused_adam_step_declines_parameters_at_different_steps(cpu_as_gpu):
    import minigrad
    params, rng = _sgd_parameters(numpy.float32, seed=6)
    _with_gradients(params, rng)
    optimizer = minigrad.optim.Adam(params, lr=1e-2)
    optimizer.step()                                        # the reference loop: every parameter at step 1
    optimizer.state[params[0]]["step"] = 2                  # one parameter ahead of the others
    assert not gpu.adam_step(optimizer, params, optimizer.param_groups[0]) and cpu_as_gpu == []


# ------------------------------------------------------------------ rmsprop_step.cu
def test_rmsprop_step_device_code_rounds_every_operation_like_numpy(built):
    """No fused multiply-add in rmsprop_step's PTX, and a correctly rounded square root and quotient."""
    returncode, output, ptx = built["rmsprop_step.cu"][0]
    assert returncode == 0, output
    text = ptx.read_text()
    assert "fma." not in text
    assert all(op in text for op in ("sqrt.rn.f32", "sqrt.rn.f64", "div.rn.f32", "div.rn.f64")), "missing _rn ops"


# every combination of the options that change the update's formula (alpha and eps only change numbers)
RMSPROP_CASES = [dict(lr=1e-2, alpha=0.9, eps=1e-6, centered=centered, momentum=momentum, weight_decay=weight_decay,
                      maximize=maximize)
                 for centered in (False, True) for momentum in (0.0, 0.8)
                 for weight_decay in (0.0, 0.05) for maximize in (False, True)]
RMSPROP_BUFFERS = ("square_avg", "grad_avg", "momentum_buffer")


def _case_id(case):
    return "-".join(f"{k}={case[k]}" for k in ("centered", "momentum", "weight_decay", "maximize"))


def _assert_rmsprop_states_equal(fused, reference, ours, theirs, step, tolerance):
    for k, (a, b) in enumerate(zip(ours, theirs)):
        numpy.testing.assert_allclose(a.detach().numpy(), b.detach().numpy(), err_msg=f"step {step} param {k}",
                                      **tolerance)
        state, expected = fused.state.get(a, {}), reference.state.get(b, {})
        assert set(state) == set(expected), f"step {step} param {k}: state keys {sorted(state)}"
        for key in RMSPROP_BUFFERS:
            if key in expected:
                numpy.testing.assert_allclose(state[key], expected[key], err_msg=f"step {step} {key} {k}", **tolerance)
        assert state.get("step") == expected.get("step"), f"step {step} param {k}: step count"


@pytest.mark.parametrize("case", RMSPROP_CASES, ids=[_case_id(c) for c in RMSPROP_CASES])
@pytest.mark.parametrize("dtype", DTYPES)
def test_fused_rmsprop_step_equals_the_optimizers_own_update(cpu_as_gpu, case, dtype):
    """gpu.rmsprop_step through the kernel's CPU reference, three steps, against RMSprop.update on copies:
    parameters, the square average, and the gradient average and momentum buffer where the options make them."""
    import minigrad
    ours, _ = _sgd_parameters(dtype, seed=7)
    theirs = [minigrad.nn.Parameter(minigrad.tensor(p.detach().numpy().copy())) for p in ours]
    fused, reference = minigrad.optim.RMSprop(ours, **case), minigrad.optim.RMSprop(theirs, **case)
    tolerance = dict(rtol=2e-6, atol=1e-7) if dtype == numpy.float32 else dict(rtol=1e-13, atol=1e-15)
    for step in range(3):
        _with_gradients(ours, numpy.random.default_rng(step))
        _with_gradients(theirs, numpy.random.default_rng(step))
        assert gpu.rmsprop_step(fused, fused.params_to_update(fused.param_groups[0]), fused.param_groups[0])
        reference.step()
        _assert_rmsprop_states_equal(fused, reference, ours, theirs, step, tolerance)
    assert [n for n, _, _ in cpu_as_gpu] == [f"rmsprop_step_{SUFFIX[dtype]}"] * 3


def test_fused_rmsprop_step_takes_parameters_at_different_steps_in_one_launch(cpu_as_gpu):
    """A parameter without a gradient on the first step joins on the second with no buffers yet: the wrapper
    makes them (zeros, as update does) and the one launch still equals the reference."""
    import minigrad
    case = dict(lr=1e-2, centered=True, momentum=0.5)
    ours, _ = _sgd_parameters(numpy.float64, seed=8)
    theirs = [minigrad.nn.Parameter(minigrad.tensor(p.detach().numpy().copy())) for p in ours]
    fused, reference = minigrad.optim.RMSprop(ours, **case), minigrad.optim.RMSprop(theirs, **case)
    for step in range(3):
        _with_gradients(ours, numpy.random.default_rng(step))
        _with_gradients(theirs, numpy.random.default_rng(step))
        if step == 0:
            ours[2].grad = theirs[2].grad = None                # no gradient: no step, no state
        assert gpu.rmsprop_step(fused, fused.params_to_update(fused.param_groups[0]), fused.param_groups[0])
        reference.step()
        _assert_rmsprop_states_equal(fused, reference, ours, theirs, step, dict(rtol=1e-13, atol=1e-15))
    assert fused.state[ours[2]]["step"] == 2 and fused.state[ours[0]]["step"] == 3
    assert len(cpu_as_gpu) == 3


def test_fused_rmsprop_step_declines_a_subclass_and_odd_buffers_and_changes_nothing(cpu_as_gpu):
    """A subclass of RMSprop, a float64 square average on a float32 parameter (the model was cast), and a
    state update did not make: each takes the optimizer's own loop (False) with nothing touched."""
    import minigrad
    params, rng = _sgd_parameters(numpy.float32, seed=9)
    _with_gradients(params, rng)
    before = [p.detach().numpy().copy() for p in params]

    class MyRMSprop(minigrad.optim.RMSprop):
        pass

    optimizer = MyRMSprop(params, lr=1e-2)
    assert not gpu.rmsprop_step(optimizer, params, optimizer.param_groups[0]) and optimizer.state == {}
    optimizer = minigrad.optim.RMSprop(params, lr=1e-2, momentum=0.9)
    optimizer.state[params[1]] = {"step": 1, "square_avg": numpy.zeros(1)}                 # float64 buffer
    assert not gpu.rmsprop_step(optimizer, params, optimizer.param_groups[0])
    optimizer.state[params[1]] = {"square_avg": numpy.zeros(1, numpy.float32)}            # no step count
    assert not gpu.rmsprop_step(optimizer, params, optimizer.param_groups[0])
    assert list(optimizer.state) == [params[1]] and set(optimizer.state[params[1]]) == {"square_avg"}
    assert cpu_as_gpu == [] and all((p.detach().numpy() == b).all() for p, b in zip(params, before))


def test_install_registers_the_fused_rmsprop_step_for_the_gpu():
    from minigrad.ops import registry
    assert registry.KERNELS[("RMSprop.step", "gpu")] is gpu.rmsprop_step
