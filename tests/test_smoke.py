"""A first end-to-end check: a tiny least-squares fit learns, through the whole autograd path."""
import numpy

import minigrad


def test_gradient_descent_fits_a_line():
    minigrad.manual_seed(0)
    x = minigrad.randn(64, 1)
    y = 3 * x + 0.5
    w = minigrad.zeros(1, 1, requires_grad=True)
    b = minigrad.zeros(1, requires_grad=True)
    for _ in range(200):
        loss = ((x @ w + b - y) ** 2).mean()
        w.grad = b.grad = None
        loss.backward()
        w.array -= 0.1 * w.grad.array
        b.array -= 0.1 * b.grad.array
    numpy.testing.assert_allclose([w.item(), b.item()], [3.0, 0.5], atol=1e-3)
