"""Batch normalisation in training mode on CuPy arrays: kernels/cuda/batchnorm_forward.cu and
batchnorm_backward.cu, ONE launch each way (one block per channel), the fused ReLU included.

    y3, mean, var, inv_std = batch_norm_train_forward(x3, gamma, beta, eps, relu=False)
    dx3, dgamma, dbeta = batch_norm_backward(x3, dy3, mean, inv_std, gamma, relu_out3=None)

The signatures and results of batch_norm_train_forward_numpy and batch_norm_backward_numpy in
minigrad/ops/norm.py, so `install()` registers them for the "gpu" device under the names norm.py
asks for; relu=True / relu_out3 are its batch_norm_relu. As from the Numba CPU kernels
(kernels/numba_cpu/batchnorm.py), mean, var, inv_std, dgamma and dbeta come back in float64, the
precision the kernels sum in; the op casts dgamma and dbeta to dy's dtype.

float32 and float64 run the kernels; any other dtype, an empty array, mixed dtypes, or CUDA C that
cannot be compiled here runs the reference on CuPy instead. Importing this module imports no CuPy.
"""
import numpy

from minigrad import backend
from minigrad.fast import gpu
from minigrad.ops.norm import batch_norm_backward_numpy, batch_norm_train_forward_numpy
from minigrad.ops.registry import register_kernel

THREADS_PER_CHANNEL = 256   # = BN_THREADS in kernels/cuda/batchnorm.cuh: the kernels' tree sum assumes it
SHAPE_DTYPE = numpy.dtype([("batch", numpy.int64), ("channels", numpy.int64), ("per_image", numpy.int64),
                           ("eps", numpy.float64), ("relu", numpy.int64)])   # struct BatchNormShape


def _shape(x3, eps, relu):
    """BatchNormShape for x3 (N, C, P) as a one-element NumPy array: passed by value to a launch."""
    batch, channels, per_image = (int(size) for size in x3.shape)
    return numpy.array([(batch, channels, per_image, float(eps), bool(relu))], dtype=SHAPE_DTYPE)


def _launch_per_channel(function, channels, *args):
    """One block of THREADS_PER_CHANNEL threads for each channel."""
    function((channels,), (THREADS_PER_CHANNEL,), args)


def batch_norm_train_forward(x3, gamma, beta, eps, relu=False):
    """(y3, mean, var, inv_std) for x3 (N, C, M/N); kernels/cuda/batchnorm_forward.cu.
    relu=True: y3 = relu(batch norm), fused."""
    suffix = gpu._suffix(x3)
    function = None if suffix is None or x3.size == 0 else gpu._fused_kernel(
        "batchnorm_forward.cu", f"batch_norm_forward_{suffix}")
    if function is None:
        return batch_norm_train_forward_numpy(x3, gamma, beta, eps, relu=relu)
    cupy = backend.cupy_module()
    x3 = cupy.ascontiguousarray(x3)
    channels = x3.shape[1]
    gamma = cupy.ascontiguousarray(gamma, dtype=x3.dtype)                     # (C,) in x's dtype
    beta = cupy.ascontiguousarray(beta, dtype=x3.dtype)
    y3 = cupy.empty(x3.shape, dtype=x3.dtype)                                # (N, C, M/N)
    mean, var, inv_std = (cupy.empty(channels, dtype=numpy.float64) for _ in range(3))
    _launch_per_channel(function, channels, x3, y3, gamma, beta, mean, var, inv_std, _shape(x3, eps, relu))
    return y3, mean, var, inv_std


def batch_norm_backward(x3, dy3, mean, inv_std, gamma, relu_out3=None):
    """(dx3, dgamma, dbeta) of training-mode batch norm; kernels/cuda/batchnorm_backward.cu.
    relu_out3: the output of a fused batch_norm_relu forward (dy3 then passes back through its ReLU), or None."""
    suffix = gpu._suffix(dy3)
    same_dtype = x3.dtype == dy3.dtype and (relu_out3 is None or relu_out3.dtype == dy3.dtype)
    function = None if suffix is None or dy3.size == 0 or not same_dtype else gpu._fused_kernel(
        "batchnorm_backward.cu", f"batch_norm_backward_{suffix}")
    if function is None:
        return batch_norm_backward_numpy(x3, dy3, mean, inv_std, gamma, relu_out3=relu_out3)
    cupy = backend.cupy_module()
    x3, dy3 = cupy.ascontiguousarray(x3), cupy.ascontiguousarray(dy3)
    relu = relu_out3 is not None
    # Without the ReLU, dy3 stands in for relu_out3: the kernel never reads it.
    relu_out3 = cupy.ascontiguousarray(relu_out3) if relu else dy3
    channels = dy3.shape[1]
    mean = cupy.ascontiguousarray(mean, dtype=numpy.float64)                  # (C,)
    inv_std = cupy.ascontiguousarray(inv_std, dtype=numpy.float64)
    gamma = cupy.ascontiguousarray(gamma, dtype=dy3.dtype)
    dx3 = cupy.empty(dy3.shape, dtype=dy3.dtype)                              # (N, C, M/N)
    dgamma, dbeta = cupy.empty(channels, dtype=numpy.float64), cupy.empty(channels, dtype=numpy.float64)
    _launch_per_channel(function, channels, x3, dy3, dx3, mean, inv_std, gamma, dgamma, dbeta, relu_out3,
                        _shape(dy3, 0.0, relu))
    return dx3, dgamma, dbeta


# the kernel names that minigrad/ops/norm.py asks for -> the wrappers above
KERNELS = {
    "batch_norm_train_forward": batch_norm_train_forward,
    "batch_norm_backward": batch_norm_backward,
}


def install():
    """Register the batch-norm kernels for the "gpu" device (compiled on their first call on a GPU array)."""
    for name, function in KERNELS.items():
        register_kernel(name, "gpu", function)
