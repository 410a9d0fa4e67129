"""Matrix products: matmul (the @ operator) and the fused affine map of a Linear layer.

Shapes: N batch, I input features, O output features; for matmul a (..., M, K), b (..., K, P).
"""
from minigrad import backend
from minigrad.function import Function
from minigrad.ops.elementwise import unbroadcast


class MatMul(Function):
    """y = a @ b  (batched over leading axes, which broadcast).

    Backward, from y_mp = sum_k a_mk b_kp:
        da = dy @ b^T      (..., M, P) @ (..., P, K) -> (..., M, K)
        db = a^T @ dy      (..., K, M) @ (..., M, P) -> (..., K, P)
    then each is summed over broadcast batch axes. 1-D operands are treated as
    a row (a) or a column (b) vector, as NumPy does, and the extra axis removed.
    """

    def forward(self, a, b):
        if a.ndim == 0 or b.ndim == 0:
            raise ValueError("matmul: both arguments need at least 1 dimension; use * for scalars")
        if a.shape[-1] != b.shape[-2 if b.ndim > 1 else 0]:
            raise ValueError(
                f"matmul: shapes {tuple(a.shape)} and {tuple(b.shape)} do not match: "
                f"a's last dimension ({a.shape[-1]}) must equal b's "
                f"{'second-to-last' if b.ndim > 1 else 'only'} dimension "
                f"({b.shape[-2 if b.ndim > 1 else 0]})"
            )
        try:
            y = a @ b
        except ValueError:  # the batch axes (all but the last two) do not broadcast
            raise ValueError(
                f"matmul: batch dimensions of shapes {tuple(a.shape)} and {tuple(b.shape)} "
                f"cannot broadcast ({tuple(a.shape[:-2])} vs {tuple(b.shape[:-2])})"
            ) from None
        self.saved = (a, b)
        return y

    def backward(self, dy):
        a, b = self.saved
        a2 = a[None, :] if a.ndim == 1 else a     # (1, K) row vector
        b2 = b[:, None] if b.ndim == 1 else b     # (K, 1) column vector
        # put back the axes that 1-D operands dropped: P first (last axis), then M
        if b.ndim == 1:
            dy = dy[..., None]                    # (..., M, 1)
        if a.ndim == 1:
            dy = dy[..., None, :]                 # (..., 1, P)
        da = db = None
        if self.needs_input_grad[0]:
            da = unbroadcast(dy @ b2.swapaxes(-1, -2), a2.shape).reshape(a.shape)
        if self.needs_input_grad[1]:
            db = unbroadcast(a2.swapaxes(-1, -2) @ dy, b2.shape).reshape(b.shape)
        return da, db


class Linear(Function):
    """y = x @ W^T + b, fused into one op.

    x (N, I), W (O, I), b (O,), y (N, O); x may have extra leading axes.
        dx = dy @ W          (N, O) @ (O, I) -> (N, I)
        dW = dy^T @ x        (O, N) @ (N, I) -> (O, I)
        db = sum_n dy        (O,)
    """

    fresh_gradients = (0, 1, 2)      # dx, dW and db are new arrays (see Function)

    def forward(self, x, weight, bias):
        if x.shape[-1] != weight.shape[1]:
            raise ValueError(
                f"linear: input has {x.shape[-1]} features (shape {tuple(x.shape)}) but the weight "
                f"of shape {tuple(weight.shape)} expects {weight.shape[1]}"
            )
        self.saved = (x, weight, bias is not None)
        y = x @ weight.T                                  # (N, O)
        if bias is not None:
            y += bias
        return y

    def backward(self, dy):
        x, weight, has_bias = self.saved
        x2 = x.reshape(-1, x.shape[-1])                   # (N, I)
        dy2 = dy.reshape(-1, dy.shape[-1])                # (N, O)
        dx = (dy @ weight) if self.needs_input_grad[0] else None
        dw = (dy2.T @ x2) if self.needs_input_grad[1] else None
        db = dy2.sum(axis=0) if has_bias and self.needs_input_grad[2] else None
        return dx, dw, db


def matmul(a, b):
    return MatMul()(a, b)


def linear(x, weight, bias=None):
    """torch.nn.functional.linear: x @ weight^T + bias."""
    return Linear()(x, weight, bias)
