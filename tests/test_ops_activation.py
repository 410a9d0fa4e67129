"""Activations and softmax (minigrad/ops/activation.py): gradchecks, PyTorch comparisons, stability.

relu and leaky_relu inputs stay at least 0.2 away from the kink at 0.
"""
import numpy
import pytest
from hypothesis import given, strategies as st
from hypothesis.extra import numpy as hnp

import minigrad
from torch_compare import compare_with_torch

seeds = st.integers(0, 2**32 - 1)
shapes = hnp.array_shapes(min_dims=1, max_dims=3, max_side=4)


def _away_from_zero(seed, shape):
    rng = numpy.random.default_rng(seed)
    return rng.choice([-1.0, 1.0], shape) * rng.uniform(0.2, 3.0, shape)


def _leaf(array):
    return minigrad.tensor(numpy.asarray(array, dtype=numpy.float64), requires_grad=True)


ACTIVATIONS = {
    "relu": (lambda m, x: m.relu(x), None),
    "leaky_relu": (lambda m, x: m.leaky_relu(x, 0.1), lambda t, x: t.nn.functional.leaky_relu(x, 0.1)),
    "sigmoid": (lambda m, x: m.sigmoid(x), None),
    "tanh": (lambda m, x: m.tanh(x), None),
    "gelu": (lambda m, x: m.gelu(x), lambda t, x: t.nn.functional.gelu(x)),
    "gelu tanh": (lambda m, x: m.gelu(x, approximate="tanh"),
                  lambda t, x: t.nn.functional.gelu(x, approximate="tanh")),
}


@pytest.mark.parametrize("name", list(ACTIVATIONS))
@given(shape=shapes, seed=seeds)
def test_activation_gradcheck(name, shape, seed):
    fn, _ = ACTIVATIONS[name]
    assert minigrad.gradcheck(lambda x: fn(minigrad, x), [_leaf(_away_from_zero(seed, shape))])


@pytest.mark.parametrize("name", list(ACTIVATIONS))
@given(shape=shapes, seed=seeds)
def test_activation_matches_torch(name, shape, seed):
    pytest.importorskip("torch")
    fn, torch_fn = ACTIVATIONS[name]
    compare_with_torch(fn, [_away_from_zero(seed, shape)], torch_fn=torch_fn)


@st.composite
def shape_and_dim(draw):
    shape = draw(shapes)
    return shape, draw(st.integers(-len(shape), len(shape) - 1))


@pytest.mark.parametrize("name", ["softmax", "log_softmax"])
@given(case=shape_and_dim(), seed=seeds)
def test_softmax_gradcheck_along_drawn_dim(name, case, seed):
    shape, dim = case
    fn = getattr(minigrad, name)
    assert minigrad.gradcheck(lambda x: fn(x, dim=dim), [_leaf(_away_from_zero(seed, shape))])


@pytest.mark.parametrize("name", ["softmax", "log_softmax"])
@given(case=shape_and_dim(), seed=seeds)
def test_softmax_matches_torch_along_drawn_dim(name, case, seed):
    pytest.importorskip("torch")
    shape, dim = case
    compare_with_torch(lambda m, x: getattr(m, name)(x, dim=dim), [_away_from_zero(seed, shape)])


def test_softmax_rows_sum_to_one():
    y = minigrad.softmax(minigrad.randn(4, 5), dim=1)
    numpy.testing.assert_allclose(y.detach().numpy().sum(axis=1), numpy.ones(4), rtol=1e-6)


@pytest.mark.parametrize("name", ["softmax", "log_softmax"])
def test_softmax_is_stable_for_large_inputs(name):
    x = minigrad.tensor(numpy.array([[1000.0, 1001.0, 1002.0], [-1000.0, -1001.0, -1002.0]]))
    y = getattr(minigrad, name)(x, dim=1).detach().numpy()
    assert numpy.isfinite(y).all()
    expected = getattr(minigrad, name)(minigrad.tensor(numpy.array([0.0, 1.0, 2.0])), dim=0).detach().numpy()
    numpy.testing.assert_allclose(y[0], expected, rtol=1e-12)


def test_sigmoid_is_stable_for_large_inputs():
    x = minigrad.tensor(numpy.array([-1000.0, 1000.0], dtype=numpy.float32))
    with numpy.errstate(over="raise"):
        y = minigrad.sigmoid(x).detach().numpy()
    numpy.testing.assert_array_equal(y, [0.0, 1.0])


def test_relu_gradient_at_zero_is_zero():
    x = _leaf([0.0, 1.0])
    minigrad.relu(x).sum().backward()
    numpy.testing.assert_array_equal(x.grad.numpy(), [0.0, 1.0])


def test_activations_are_tensor_methods():
    x = minigrad.tensor(numpy.array([-1.0, 2.0]))
    numpy.testing.assert_array_equal(x.relu().detach().numpy(), [0.0, 2.0])
    numpy.testing.assert_allclose(x.leaky_relu(0.5).detach().numpy(), [-0.5, 2.0])


def test_gelu_rejects_unknown_approximation():
    with pytest.raises(ValueError, match="gelu: approximate"):
        minigrad.gelu(minigrad.zeros(2), approximate="fast")


# ------------------------------------------------------------------ add_relu (fused)
@pytest.mark.parametrize("shape", [(3, 4), (128, 16, 16, 16)])        # NumPy path; Numba kernels (>= 1 MiB)
@pytest.mark.parametrize("dtype", [numpy.float32, numpy.float64])
def test_add_relu_equals_relu_of_the_sum_bit_for_bit(shape, dtype):
    from minigrad.ops.activation import add_relu, relu

    rng = numpy.random.default_rng(40)
    a_np, b_np, dz = (rng.standard_normal(shape).astype(dtype) for _ in range(3))
    results = []
    for fused in (True, False):
        a, b = minigrad.tensor(a_np, requires_grad=True), minigrad.tensor(b_np, requires_grad=True)
        z = add_relu(a, b) if fused else relu(a + b)
        z.backward(dz)
        results.append((z.detach().numpy().copy(), a.grad.numpy(), b.grad.numpy()))
    for name, ours, theirs in zip(["z", "da", "db"], *results):
        assert ours.dtype == dtype
        numpy.testing.assert_array_equal(ours, theirs, err_msg=name)


def test_add_relu_gradcheck_and_torch():
    from minigrad.ops.activation import add_relu

    rng = numpy.random.default_rng(41)
    a, b = rng.standard_normal((4, 3, 2)), rng.standard_normal((4, 3, 2))
    assert minigrad.gradcheck(add_relu, [minigrad.tensor(a, requires_grad=True), minigrad.tensor(b, requires_grad=True)])
    torch = pytest.importorskip("torch")
    compare_with_torch(lambda mg, a, b: add_relu(a, b), [a, b], torch_fn=lambda t, a, b: torch.relu(a + b))


def test_add_relu_broadcasts_and_mixes_dtypes_through_the_two_ops():
    """Shapes that broadcast, or two dtypes, are not fused: relu(a + b) gives the usual result."""
    from minigrad.ops.activation import add_relu

    a = minigrad.tensor(numpy.array([[-1.0, 2.0], [3.0, -4.0]]), requires_grad=True)
    b = minigrad.tensor(numpy.array([0.5, 1.0], dtype=numpy.float32), requires_grad=True)
    z = add_relu(a, b)
    numpy.testing.assert_array_equal(z.detach().numpy(), [[0.0, 3.0], [3.5, 0.0]])
    z.sum().backward()
    numpy.testing.assert_array_equal(b.grad.numpy(), [1.0, 1.0])
    numpy.testing.assert_array_equal(a.grad.numpy(), [[0.0, 1.0], [1.0, 0.0]])


def test_add_relu_keeps_nan_and_passes_no_gradient_through_it():
    from minigrad.ops.activation import add_relu

    a = minigrad.tensor(numpy.array([numpy.nan, 1.0, -1.0]), requires_grad=True)
    b = minigrad.tensor(numpy.zeros(3), requires_grad=True)
    z = add_relu(a, b)
    assert numpy.isnan(z.detach().numpy()[0]) and z.detach().numpy()[1] == 1.0 and z.detach().numpy()[2] == 0.0
    z.backward(numpy.ones(3))
    numpy.testing.assert_array_equal(a.grad.numpy(), [0.0, 1.0, 0.0])


@pytest.mark.parametrize("shape, clipped", [((3, 4), "nan"), ((128, 16, 16, 16), "zero")])
def test_relu_backward_of_an_infinite_gradient_where_it_clipped(shape, clipped):
    """An infinite upstream gradient: where the ReLU passed it, it stays inf. Where the ReLU clipped,
    the Numba kernels (arrays of 1 MiB or more) give 0, as PyTorch does; the NumPy path multiplies by
    the mask and gives inf * 0 = NaN (the price of a product 15 times faster than a select, see
    relu_backward_numpy). The same for add_relu."""
    from minigrad.ops.activation import add_relu, relu

    x_np = numpy.full(shape, -1.0, dtype=numpy.float32)
    x_np.reshape(-1)[::2] = 1.0
    dz = numpy.full(shape, numpy.inf, dtype=numpy.float32)
    for op in (lambda x: relu(x), lambda x: add_relu(x, minigrad.zeros(*shape))):
        x = minigrad.tensor(x_np, requires_grad=True)
        with numpy.errstate(invalid="ignore"):
            op(x).backward(dz)
        grad = x.grad.numpy().reshape(-1)
        assert numpy.isinf(grad[::2]).all()
        assert (grad[1::2] == 0).all() if clipped == "zero" else numpy.isnan(grad[1::2]).all()
