"""Reductions (minigrad/ops/reduce.py): sum, mean, max, min, var, std, logsumexp; argmax, argmin.

Hypothesis draws the shape, the reduced axes (an int or a tuple, negative ones included) and
keepdim. Values are a shuffled grid, so max/min never tie and var is never 0.
"""
import numpy
import pytest
from hypothesis import given, strategies as st
from hypothesis.extra import numpy as hnp

import minigrad
from torch_compare import compare_with_torch

seeds = st.integers(0, 2**32 - 1)


@st.composite
def shape_and_axes(draw, min_dims=1):
    """(shape, axes, keepdim); axes is an int or a non-empty tuple, possibly negative."""
    shape = draw(hnp.array_shapes(min_dims=min_dims, max_dims=3, max_side=4))
    ndim = len(shape)
    axes = draw(st.lists(st.integers(0, ndim - 1), min_size=1, max_size=ndim, unique=True))
    axes = [a - ndim if draw(st.booleans()) else a for a in axes]
    axes = axes[0] if len(axes) == 1 and draw(st.booleans()) else tuple(axes)
    return shape, axes, draw(st.booleans())


def _distinct(seed, shape):
    """A shuffled grid of distinct values 0.3 apart: no ties, nonzero variance."""
    rng = numpy.random.default_rng(seed)
    size = int(numpy.prod(shape))
    return (rng.permutation(size) * 0.3 - 0.15 * size).reshape(shape) + rng.uniform(-0.05, 0.05, shape)


def _count(shape, axes):
    axes = (axes,) if isinstance(axes, int) else axes
    return int(numpy.prod([shape[a] for a in axes]))


def _leaf(array):
    return minigrad.tensor(numpy.asarray(array, dtype=numpy.float64), requires_grad=True)


REDUCTIONS = {
    "sum": lambda m, x, d, k: m.sum(x, dim=d, keepdim=k),
    "mean": lambda m, x, d, k: m.mean(x, dim=d, keepdim=k),
    "amax": lambda m, x, d, k: m.amax(x, dim=d, keepdim=k),
    "amin": lambda m, x, d, k: m.amin(x, dim=d, keepdim=k),
    "logsumexp": lambda m, x, d, k: m.logsumexp(x, dim=d, keepdim=k),
    "var": lambda m, x, d, k: m.var(x, dim=d, keepdim=k),
    "var correction=0": lambda m, x, d, k: m.var(x, dim=d, keepdim=k, correction=0),
    "std": lambda m, x, d, k: m.std(x, dim=d, keepdim=k),
}


def _needs_two(name, shape, axes):
    """The unbiased var/std need at least two reduced elements."""
    return name in ("var", "std") and _count(shape, axes) < 2


@pytest.mark.parametrize("name", list(REDUCTIONS))
@given(case=shape_and_axes(), seed=seeds)
def test_reduction_gradcheck_over_axes(name, case, seed):
    shape, axes, keepdim = case
    if _needs_two(name, shape, axes):
        return
    fn = REDUCTIONS[name]
    assert minigrad.gradcheck(lambda x: fn(minigrad, x, axes, keepdim), [_leaf(_distinct(seed, shape))])


@pytest.mark.parametrize("name", list(REDUCTIONS))
@given(case=shape_and_axes(), seed=seeds)
def test_reduction_matches_torch_over_axes(name, case, seed):
    pytest.importorskip("torch")
    shape, axes, keepdim = case
    if _needs_two(name, shape, axes):
        return
    fn = REDUCTIONS[name]
    compare_with_torch(lambda m, x: fn(m, x, axes, keepdim), [_distinct(seed, shape)])


@pytest.mark.parametrize("name", ["max", "min"])
@given(case=shape_and_axes(), seed=seeds)
def test_max_min_along_dim_return_values_and_indices_like_torch(name, case, seed):
    pytest.importorskip("torch")
    shape, axes, keepdim = case
    dim = axes if isinstance(axes, int) else axes[0]
    x = _distinct(seed, shape)
    compare_with_torch(lambda m, t: getattr(m, name)(t, dim=dim, keepdim=keepdim).values, [x])
    ours = getattr(minigrad, name)(minigrad.tensor(x), dim=dim, keepdim=keepdim).indices
    expected = (x.argmax if name == "max" else x.argmin)(axis=dim)
    expected = numpy.expand_dims(expected, dim) if keepdim else expected
    numpy.testing.assert_array_equal(ours.detach().numpy(), expected)


@pytest.mark.parametrize("name", ["sum", "mean", "max", "min", "var", "std", "logsumexp"])
def test_reduction_over_all_elements_matches_torch(name):
    torch = pytest.importorskip("torch")
    x = _distinct(3, (3, 4))
    torch_fn = (lambda t, a: torch.logsumexp(a, dim=(0, 1))) if name == "logsumexp" else None
    compare_with_torch(lambda m, a: getattr(m, name)(a), [x], torch_fn=torch_fn)


@pytest.mark.parametrize("name", ["sum", "mean", "max", "min", "var", "std", "logsumexp"])
def test_reduction_over_all_elements_gradcheck(name):
    assert minigrad.gradcheck(getattr(minigrad, name), [_leaf(_distinct(4, (2, 3)))])


def test_axis_and_keepdims_are_aliases_of_dim_and_keepdim():
    x = minigrad.tensor(_distinct(0, (2, 3)))
    numpy.testing.assert_array_equal(
        minigrad.sum(x, axis=1, keepdims=True).detach().numpy(), minigrad.sum(x, dim=1, keepdim=True).detach().numpy()
    )
    assert x.mean(axis=0, keepdims=True).shape == (1, 3)


def test_tensor_methods_reduce_like_functions():
    x = minigrad.tensor(_distinct(1, (2, 3)))
    numpy.testing.assert_allclose(x.var(dim=1).detach().numpy(), minigrad.var(x, dim=1).detach().numpy())
    numpy.testing.assert_allclose(x.max(dim=0).values.detach().numpy(), x.detach().numpy().max(axis=0))


def test_unbiased_false_is_population_variance():
    x = minigrad.tensor(numpy.array([1.0, 2.0, 3.0, 4.0]))
    assert x.var(unbiased=False).item() == pytest.approx(1.25)
    assert x.var().item() == pytest.approx(5 / 3)


def test_max_gradient_is_split_evenly_on_ties_like_torch_amax():
    x = _leaf([[1.0, 3.0, 3.0], [2.0, 2.0, 2.0]])
    minigrad.amax(x, dim=1).sum().backward()
    numpy.testing.assert_allclose(x.grad.numpy(), [[0, 0.5, 0.5], [1 / 3, 1 / 3, 1 / 3]])


def test_logsumexp_of_large_values_does_not_overflow():
    x = minigrad.tensor(numpy.array([1000.0, 1000.0]))
    assert minigrad.logsumexp(x).item() == pytest.approx(1000 + numpy.log(2))


def test_logsumexp_of_all_minus_infinity_is_minus_infinity():
    x = minigrad.tensor(numpy.array([-numpy.inf, -numpy.inf]))
    assert minigrad.logsumexp(x).item() == -numpy.inf


@pytest.mark.parametrize("name", ["argmax", "argmin"])
@given(case=shape_and_axes(), seed=seeds)
def test_argmax_argmin_along_dim_match_numpy(name, case, seed):
    shape, axes, keepdim = case
    dim = axes if isinstance(axes, int) else axes[0]
    x = _distinct(seed, shape)
    ours = getattr(minigrad, name)(minigrad.tensor(x), dim=dim, keepdim=keepdim)
    expected = getattr(x, name)(axis=dim)
    expected = numpy.expand_dims(expected, dim) if keepdim else expected
    assert ours.dtype == numpy.int64 and not ours.requires_grad
    numpy.testing.assert_array_equal(ours.detach().numpy(), expected)


def test_argmax_without_dim_indexes_the_flattened_tensor():
    x = minigrad.tensor(numpy.array([[1.0, 5.0], [7.0, 2.0]]))
    assert x.argmax().item() == 2 and x.argmin().item() == 0


def test_reduction_of_a_0d_tensor_is_itself():
    x = _leaf(2.5)
    y = x.sum()
    y.backward()
    assert y.item() == 2.5 and x.grad.item() == 1.0


def test_reduction_dim_out_of_range_names_op_and_dim():
    with pytest.raises(IndexError, match="sum: dim 2 is out of range for a tensor with 2 dimensions"):
        minigrad.zeros(2, 3).sum(dim=2)
