"""minigrad.nn.functional: every op a layer uses, as a plain function (like torch.nn.functional).

Layers hold parameters and options; these functions do the computing. They are
defined in minigrad/ops/ (one topic a file) and only gathered here.
"""
from minigrad.ops.activation import (  # noqa: F401
    add_relu, gelu, leaky_relu, log_softmax, relu, sigmoid, softmax, tanh,
)
from minigrad.ops.conv import conv2d  # noqa: F401
from minigrad.ops.dropout import dropout  # noqa: F401
from minigrad.ops.loss import (  # noqa: F401
    binary_cross_entropy_with_logits, cross_entropy, mse_loss, nll_loss,
)
from minigrad.ops.matmul import linear  # noqa: F401
from minigrad.ops.norm import batch_norm, batch_norm_relu  # noqa: F401
from minigrad.ops.pool import adaptive_avg_pool2d, avg_pool2d, max_pool2d  # noqa: F401
from minigrad.ops.shape import flatten, pad  # noqa: F401
