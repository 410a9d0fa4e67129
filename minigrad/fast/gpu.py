"""Run the CUDA C kernels of kernels/cuda/*.cu on CuPy arrays (the fast layer's GPU kernels).

    source = read_source("im2col.cu")       # the text, with geometry.cuh pasted in
    cols = im2col(x, 3, 3, (1, 1), (1, 1), (1, 1))   # x a CuPy array (N, C, H, W)

The .cu files are package data of `minigrad.kernels.cuda`, found with importlib.resources,
so an installed minigrad (pip install ., no repository around) finds them too.
CuPy compiles each file once per process with NVRTC (`cupy.RawModule`), on the
first call, and caches the binary on disk (~/.cupy/kernel_cache) for later runs.

Every wrapper here has the signature and result of the NumPy reference it stands in
for, so minigrad's dispatchers can register it as is:

    im2col(x, kernel_h, kernel_w, stride, padding, dilation)           -> cols (C*KH*KW, N*OH*OW)
    col2im(cols, x_shape, kernel_h, kernel_w, stride, padding, dilation, out=None) -> dx (N, C, H, W)
    max_pool2d_forward(x, kernel_h, kernel_w, stride, padding)  -> y, argmax_index (N, C, OH, OW)
    max_pool2d_backward(dy, argmax_index, x_shape, kernel_h, kernel_w, stride, padding) -> dx

`install()` puts them into the ops' kernel table (minigrad/ops/registry.py) for the "gpu"
device; `import minigrad` calls it through minigrad/fast/__init__.py.

float32 and float64 run the kernels (entry points `<name>_f32` / `<name>_f64`);
any other dtype falls back to the NumPy/CuPy reference. Importing this module
imports neither CuPy nor NVRTC.
"""
import importlib
import math
import importlib.resources
import re

import numpy

from minigrad import backend
from minigrad.kernels.geometry import as_struct, check_shape, cols_shape, make_geometry, pool_geometry, pooled_shape
from minigrad.ops.im2col import col2im_numpy, im2col_numpy
from minigrad.ops.pool import max_pool2d_backward_numpy, max_pool2d_forward_numpy
from minigrad.ops.registry import register_kernel

THREADS_PER_BLOCK = 256
MAX_BLOCKS = 65535 * 32          # the kernels loop (grid-stride), so a capped grid covers any size
CUDA_PACKAGE = "minigrad.kernels.cuda"   # where the .cu sources ship (package data)
_SUFFIX = {numpy.dtype(numpy.float32): "f32", numpy.dtype(numpy.float64): "f64"}
_INCLUDE = re.compile(r'^#include "([\w.]+)"\s*$', re.MULTILINE)

_modules = {}                     # source file name -> compiled cupy.RawModule


# ------------------------------------------------------------------ finding the sources
def source_files():
    """Names of the .cu files shipped in the kernels.cuda package, sorted."""
    folder = importlib.resources.files(CUDA_PACKAGE)
    return sorted(entry.name for entry in folder.iterdir() if entry.name.endswith(".cu"))


def source_path(name):
    """The packaged file `name` (a Traversable; a real path for a normal, unzipped install)."""
    return importlib.resources.files(CUDA_PACKAGE).joinpath(name)


def read_source(name):
    """The text of kernels/cuda/<name> with its local `#include "x.cuh"` lines replaced by the headers.

    NVRTC sees one string and no file system; pasting the headers in also makes
    CuPy's on-disk cache key (a hash of the source) change whenever a header does.
    """
    text = source_path(name).read_text(encoding="utf-8")
    return _INCLUDE.sub(lambda match: read_source(match.group(1)), text)


# ------------------------------------------------------------------ compiling and launching
class KernelCompileError(RuntimeError):
    """CuPy could not compile or load a CUDA C kernel (no working NVRTC, or a driver that refuses it)."""


def kernel_function(source_name, kernel_name):
    """The compiled `kernel_name` from kernels/cuda/<source_name> (compiled once per process)."""
    cupy = backend.cupy_module()
    try:
        if source_name not in _modules:
            _modules[source_name] = cupy.RawModule(code=read_source(source_name))
        return _modules[source_name].get_function(kernel_name)
    except Exception as error:           # CompileException, NVRTCError, a missing libnvrtc, a CUDA driver error
        raise KernelCompileError(
            f"CuPy could not compile the CUDA C kernel {kernel_name} (kernels/cuda/{source_name}): "
            f"{type(error).__name__}: {error}"
        ) from error


def compile_source(source_name):
    """Compile kernels/cuda/<source_name> now rather than at its first launch (python -m minigrad.doctor)."""
    cupy = backend.cupy_module()
    try:
        if source_name not in _modules:
            module = cupy.RawModule(code=read_source(source_name))
            module.compile()
            _modules[source_name] = module
    except Exception as error:
        raise KernelCompileError(f"CuPy could not compile kernels/cuda/{source_name}: "
                                 f"{type(error).__name__}: {error}") from error


def launch(function, total, *args):
    """Run `function` with one thread per element of a `total`-element grid-stride loop."""
    if total == 0:
        return
    blocks = min((total + THREADS_PER_BLOCK - 1) // THREADS_PER_BLOCK, MAX_BLOCKS)
    function((blocks,), (THREADS_PER_BLOCK,), args)


def _suffix(array):
    return _SUFFIX.get(numpy.dtype(array.dtype))


# ------------------------------------------------------------------ the wrappers
def im2col(x, kernel_h, kernel_w, stride, padding, dilation):
    """CUDA im2col (kernels/cuda/im2col.cu): x (N, C, H, W) -> cols (C*KH*KW, N*OH*OW)."""
    geometry = make_geometry("im2col", x.shape, (kernel_h, kernel_w), stride, padding, dilation)
    suffix = _suffix(x)
    if suffix is None:
        return im2col_numpy(x, kernel_h, kernel_w, stride, padding, dilation)
    cupy = backend.cupy_module()
    x = cupy.ascontiguousarray(x)
    cols = cupy.empty(cols_shape(geometry), dtype=x.dtype)                      # (C*KH*KW, N*OH*OW)
    launch(kernel_function("im2col.cu", f"im2col_{suffix}"), cols.size, x, cols, as_struct(geometry))
    return cols


def col2im(cols, x_shape, kernel_h, kernel_w, stride, padding, dilation, out=None):
    """CUDA col2im (kernels/cuda/col2im.cu), a gather: cols (C*KH*KW, N*OH*OW) -> dx (N, C, H, W).

    out: an array of x_shape to write dx into (as the CPU kernel's `out`), else dx is a new array.
    The kernel writes every pixel, so a C-contiguous `out` of cols' dtype is written directly (the
    convolution's whole-batch dx on the GPU: no second device array, no copy); any other is copied into.
    """
    x_shape = tuple(int(s) for s in x_shape)
    geometry = make_geometry("col2im", x_shape, (kernel_h, kernel_w), stride, padding, dilation)
    check_shape("col2im", "cols", cols.shape, cols_shape(geometry), "(C*KH*KW, N*OH*OW)", x_shape)
    suffix = _suffix(cols)
    if suffix is None:
        return col2im_numpy(cols, x_shape, kernel_h, kernel_w, stride, padding, dilation, out=out)
    if out is not None and tuple(out.shape) != tuple(x_shape):     # the kernel writes x_shape's numbers
        raise ValueError(f"col2im: out must have shape {tuple(x_shape)}, got {tuple(out.shape)}")
    cupy = backend.cupy_module()
    cols = cupy.ascontiguousarray(cols)
    direct = out is not None and out.flags.c_contiguous and out.dtype == cols.dtype
    dx = out if direct else cupy.empty(x_shape, dtype=cols.dtype)              # (N, C, H, W)
    launch(kernel_function("col2im.cu", f"col2im_{suffix}"), dx.size, cols, dx, as_struct(geometry))
    if out is None or direct:
        return dx
    out[...] = dx
    return out


def max_pool2d_forward(x, kernel_h, kernel_w, stride, padding):
    """CUDA max pool (kernels/cuda/maxpool_forward.cu): x (N, C, H, W) -> (y, argmax_index) (N, C, OH, OW).

    argmax_index (int64) is the winner's flat index row * WP + column in the padded plane,
    the layout of minigrad.ops.pool.max_pool2d_forward_numpy.
    """
    geometry = pool_geometry("max_pool2d", x.shape, (kernel_h, kernel_w), stride, padding)
    suffix = _suffix(x)
    if suffix is None:
        return max_pool2d_forward_numpy(x, kernel_h, kernel_w, stride, padding)
    cupy = backend.cupy_module()
    x = cupy.ascontiguousarray(x)
    y = cupy.empty(pooled_shape(geometry), dtype=x.dtype)                       # (N, C, OH, OW)
    argmax_index = cupy.empty(pooled_shape(geometry), dtype=cupy.int64)         # (N, C, OH, OW)
    function = kernel_function("maxpool_forward.cu", f"max_pool_forward_{suffix}")
    launch(function, y.size, x, y, argmax_index, as_struct(geometry))
    return y, argmax_index


def max_pool2d_backward(dy, argmax_index, x_shape, kernel_h, kernel_w, stride, padding):
    """CUDA max pool backward (kernels/cuda/maxpool_backward.cu), a gather: dy -> dx (N, C, H, W)."""
    x_shape = tuple(int(s) for s in x_shape)
    geometry = pool_geometry("max_pool2d", x_shape, (kernel_h, kernel_w), stride, padding)
    for name, array in (("dy", dy), ("argmax_index", argmax_index)):
        check_shape("max_pool2d backward", name, array.shape, pooled_shape(geometry), "(N, C, OH, OW)", x_shape)
    suffix = _suffix(dy)
    if suffix is None:
        return max_pool2d_backward_numpy(dy, argmax_index, x_shape, kernel_h, kernel_w, stride, padding)
    cupy = backend.cupy_module()
    dy = cupy.ascontiguousarray(dy)
    argmax_index = cupy.ascontiguousarray(argmax_index, dtype=cupy.int64)
    dx = cupy.empty(x_shape, dtype=dy.dtype)                                    # (N, C, H, W)
    function = kernel_function("maxpool_backward.cu", f"max_pool_backward_{suffix}")
    launch(function, dx.size, dy, argmax_index, dx, as_struct(geometry))
    return dx


# ------------------------------------------------------------------ optimizers: one launch per group
SGD_STEP_DTYPE = numpy.dtype([(name, numpy.float64) for name in ("lr", "momentum", "dampening", "weight_decay")]
                             + [(name, numpy.int64) for name in ("nesterov", "maximize", "first_step", "tensors")])


def _address(array):
    """Where an array's numbers start: a CuPy array's device pointer (a NumPy array's, for the tests)."""
    return array.data.ptr if backend.is_gpu_array(array) else array.ctypes.data


def sgd_step(optimizer, params, group):
    """SGD.update (minigrad/optim/sgd.py) for every parameter of `group` in one launch of sgd_step.cu.

    Returns False, changing nothing, where the kernel does not apply (the optimizer then runs its own
    loop): a subclass of SGD (it may update differently), a mixed or unsupported dtype or device, a
    parameter that is not C-contiguous or shares memory with another, a gradient or momentum buffer
    of another shape or dtype, buffers not all new or all there (say, one parameter had no gradient
    on the first step), or CUDA C that cannot be compiled here."""
    from minigrad.optim.sgd import SGD
    suffix = _suffix(params[0].array)
    arrays = [p.array for p in params]
    if type(optimizer) is not SGD or not _plain_group(params, arrays, suffix):
        return False
    momentum = group["momentum"]
    states = [optimizer.state.get(p, {}) for p in params]
    have_buffers = {"momentum_buffer" in state for state in states}
    if momentum != 0 and len(have_buffers) > 1:
        return False
    if momentum != 0 and have_buffers == {True} and not all(
            _matches(state["momentum_buffer"], a) for state, a in zip(states, arrays)):
        return False
    function = _fused_kernel("sgd_step.cu", f"sgd_step_{suffix}")
    if function is None:                                     # every later step takes the reference loop
        return False
    cupy = backend.cupy_module()
    first_step = momentum != 0 and have_buffers == {False}
    if first_step:
        for p, a in zip(params, arrays):
            optimizer.state.setdefault(p, {})["momentum_buffer"] = cupy.empty(a.shape, dtype=a.dtype)
    states = [optimizer.state.setdefault(p, {}) for p in params]
    gradients = [cupy.ascontiguousarray(p.grad.array) for p in params]      # kept alive until the launch
    buffers = [state["momentum_buffer"] if momentum != 0 else a for state, a in zip(states, arrays)]
    tables = [_address_table(cupy, columns) for columns in (arrays, gradients, buffers)]
    ends = cupy.asarray(numpy.cumsum([a.size for a in arrays], dtype=numpy.int64))
    hyper = numpy.array([(group["lr"], momentum, group["dampening"], group["weight_decay"], bool(group["nesterov"]),
                          bool(group["maximize"]), first_step, len(params))], dtype=SGD_STEP_DTYPE)
    launch(function, int(sum(a.size for a in arrays)), *tables, ends, hyper)
    return True


ADAM_STEP_DTYPE = numpy.dtype([(name, numpy.float64) for name in
                               ("lr", "beta1", "beta2", "eps", "weight_decay", "step_size", "root_correction2")]
                              + [(name, numpy.int64) for name in ("amsgrad", "maximize", "decoupled", "tensors")])


def adam_step(optimizer, params, group):
    """Adam.update / AdamW (minigrad/optim/adam.py) for every parameter of `group` in one launch of
    adam_step.cu. Declines (False, nothing changed) as sgd_step does, and also when the parameters are
    at different step counts (the bias corrections differ) or their moment buffers do not match them."""
    from minigrad.optim.adam import Adam
    from minigrad.optim.adamw import AdamW
    suffix = _suffix(params[0].array)
    arrays = [p.array for p in params]
    if type(optimizer) not in (Adam, AdamW) or not _plain_group(params, arrays, suffix):
        return False
    states = [optimizer.state.get(p, {}) for p in params]
    steps = {state.get("step", 0) for state in states}
    names = ("m", "v") + (("v_max",) if group["amsgrad"] else ())
    if len(steps) > 1 or any(not _matches(state.get(name), a) for state, a in zip(states, arrays)
                             for name in names if state):
        return False
    if any(state and "v_max" not in state and group["amsgrad"] for state in states):
        return False
    function = _fused_kernel("adam_step.cu", f"adam_step_{suffix}")
    if function is None:
        return False
    cupy = backend.cupy_module()
    for p, a in zip(params, arrays):
        state = optimizer.state.setdefault(p, {})
        if not state:
            state["step"] = 0
            state["m"], state["v"] = cupy.zeros(a.shape, dtype=a.dtype), cupy.zeros(a.shape, dtype=a.dtype)
        if group["amsgrad"] and "v_max" not in state:
            state["v_max"] = cupy.zeros(a.shape, dtype=a.dtype)
        state["step"] += 1
    states = [optimizer.state[p] for p in params]
    t = states[0]["step"]
    beta1, beta2 = group["betas"]
    gradients = [cupy.ascontiguousarray(p.grad.array) for p in params]      # kept alive until the launch
    tables = [_address_table(cupy, columns) for columns in (
        arrays, gradients, [s["m"] for s in states], [s["v"] for s in states],
        [s["v_max"] if group["amsgrad"] else s["v"] for s in states])]
    ends = cupy.asarray(numpy.cumsum([a.size for a in arrays], dtype=numpy.int64))
    hyper = numpy.array([(group["lr"], beta1, beta2, group["eps"], group["weight_decay"],
                          group["lr"] / (1 - beta1 ** t), math.sqrt(1 - beta2 ** t), bool(group["amsgrad"]),
                          bool(group["maximize"]), bool(group["decoupled_weight_decay"]), len(params))],
                        dtype=ADAM_STEP_DTYPE)
    launch(function, int(sum(a.size for a in arrays)), *tables, ends, hyper)
    return True


RMSPROP_STEP_DTYPE = numpy.dtype([(name, numpy.float64) for name in ("lr", "alpha", "eps", "weight_decay", "momentum")]
                                 + [(name, numpy.int64) for name in ("centered", "maximize", "tensors")])


def rmsprop_step(optimizer, params, group):
    """RMSprop.update (minigrad/optim/rmsprop.py) for every parameter of `group` in one launch of
    rmsprop_step.cu. Declines (False, nothing changed) as sgd_step does. Its buffers all start at zero
    and no bias correction depends on the step number, so parameters at different steps, or with some
    buffers made and others not, share the launch: the missing buffers are made here, as update makes them."""
    from minigrad.optim.rmsprop import RMSprop
    suffix = _suffix(params[0].array)
    arrays = [p.array for p in params]
    if type(optimizer) is not RMSprop or not _plain_group(params, arrays, suffix):
        return False
    momentum, centered = group["momentum"], bool(group["centered"])
    used = ("square_avg",) + (("grad_avg",) if centered else ()) + (("momentum_buffer",) if momentum > 0 else ())
    for p, a in zip(params, arrays):                     # the buffers already there must fit the kernel
        state = optimizer.state.get(p, {})
        if state and not ("step" in state and "square_avg" in state):     # not made by update: its KeyError
            return False
        if any(name in state and not _matches(state[name], a) for name in used):
            return False
    function = _fused_kernel("rmsprop_step.cu", f"rmsprop_step_{suffix}")
    if function is None:
        return False
    cupy = backend.cupy_module()
    for p, a in zip(params, arrays):
        state = optimizer.state.setdefault(p, {})
        if not state:
            state["step"] = 0
        for name in used:
            if name not in state:
                state[name] = cupy.zeros(a.shape, dtype=a.dtype)
        state["step"] += 1
    states = [optimizer.state[p] for p in params]
    gradients = [cupy.ascontiguousarray(p.grad.array) for p in params]      # kept alive until the launch
    tables = [_address_table(cupy, columns) for columns in (
        arrays, gradients, [s["square_avg"] for s in states],
        [s["grad_avg"] if centered else s["square_avg"] for s in states],          # unread unless centered
        [s["momentum_buffer"] if momentum > 0 else s["square_avg"] for s in states])]  # unread without momentum
    ends = cupy.asarray(numpy.cumsum([a.size for a in arrays], dtype=numpy.int64))
    hyper = numpy.array([(group["lr"], group["alpha"], group["eps"], group["weight_decay"], momentum, centered,
                          bool(group["maximize"]), len(params))], dtype=RMSPROP_STEP_DTYPE)
    launch(function, int(sum(a.size for a in arrays)), *tables, ends, hyper)
    return True


def _plain_group(params, arrays, suffix):
    """One device and one supported dtype, C-contiguous parameters on memory of their own, and gradients
    of their parameters' dtype and shape: what a fused step's flat indexing assumes."""
    return not (suffix is None
                or len({backend.device_of(a) for a in arrays}) > 1
                or any(a.dtype != arrays[0].dtype or not a.flags.c_contiguous for a in arrays)
                or any(p.grad.array.dtype != p.dtype or tuple(p.grad.array.shape) != p.shape for p in params)
                or len({_address(a) for a in arrays}) < len(arrays))


def _matches(buffer, array):
    """A state buffer the kernel may index like its parameter."""
    return (buffer is not None and backend.device_of(buffer) == backend.device_of(array) and buffer.dtype == array.dtype
            and buffer.shape == array.shape and buffer.flags.c_contiguous)


def _fused_kernel(source, name):
    """The compiled kernel, or None (remembered) where CUDA C cannot be compiled."""
    if _no_cuda_c:
        return None
    try:
        return kernel_function(source, name)
    except KernelCompileError as error:
        _no_cuda_c["error"] = error
        return None


def _address_table(cupy, arrays):
    return cupy.asarray(numpy.array([_address(a) for a in arrays], dtype=numpy.uint64))


# ------------------------------------------------------------------ where CUDA C cannot be compiled
# The Numba CUDA twins (kernels/numba_cuda/) compute the same numbers as the .cu files, compiled by
# Numba instead of NVRTC. They stand in when CuPy cannot compile CUDA C on this machine.
TWINS = {   # dispatcher name -> (module of kernels/numba_cuda, launcher)
    "im2col": ("im2col", "im2col"),
    "col2im": ("col2im", "col2im"),
    "max_pool2d_forward": ("maxpool", "max_pool_forward"),
    "max_pool2d_backward": ("maxpool", "max_pool_backward"),
}
_no_cuda_c = {}   # "error": the KernelCompileError met once; every later call goes to the twins


def numba_cuda_twin(name):
    """The Numba CUDA launcher for dispatcher `name`, or None when numba.cuda cannot be imported."""
    module_name, function_name = TWINS[name]
    try:
        module = importlib.import_module(f"minigrad.kernels.numba_cuda.{module_name}")
    except Exception:                    # Numba absent, or its CUDA target missing (numba-cuda)
        return None
    return getattr(module, function_name)


def with_numba_cuda_twin(name, cuda_c):
    """`cuda_c` (a wrapper above), or its Numba CUDA twin once CuPy has failed to compile CUDA C."""
    def run(array, *args, **options):
        if "error" not in _no_cuda_c or _suffix(array) is None:    # other dtypes: the wrapper's reference
            try:
                return cuda_c(array, *args, **options)
            except KernelCompileError as error:
                _no_cuda_c["error"] = error
        twin = numba_cuda_twin(name)
        if twin is None:
            raise KernelCompileError(
                f"{_no_cuda_c['error']}; and the Numba CUDA kernels that could stand in cannot be imported. "
                f"Install a CUDA toolkit that CuPy can use (pip install 'minigrad[gpu]' brings one), or "
                f"numba-cuda for the Numba kernels"
            ) from _no_cuda_c["error"]
        out = options.pop("out", None)                       # col2im's out=: the twins return a new array
        result = twin(array, *args, **options, empty=backend.cupy_module().empty)
        if out is None:
            return result
        out[...] = result
        return out

    run.__name__ = f"{name}_gpu"
    run.cuda_c = cuda_c
    return run


# the dispatcher names (minigrad/ops/im2col.py and pool.py) -> the wrappers above
KERNELS = {
    "im2col": im2col,
    "col2im": col2im,
    "max_pool2d_forward": max_pool2d_forward,
    "max_pool2d_backward": max_pool2d_backward,
}


def install():
    """Register the GPU kernels for the "gpu" device. Imports no CuPy: each CUDA source is compiled
    on the first call on a GPU array."""
    for name, function in KERNELS.items():
        register_kernel(name, "gpu", with_numba_cuda_twin(name, function))
    register_kernel("SGD.step", "gpu", sgd_step)
    register_kernel("Adam.step", "gpu", adam_step)
    register_kernel("AdamW.step", "gpu", adam_step)
    register_kernel("RMSprop.step", "gpu", rmsprop_step)
    from minigrad.fast import gpu_batchnorm        # it imports this module, so not imported at the top
    gpu_batchnorm.install()
