"""Elementwise ops (minigrad/ops/elementwise.py): gradchecks over broadcasting pairs, PyTorch comparisons.

Inputs stay away from kinks and domain edges: abs/maximum/minimum/clamp never see ties or 0,
log/sqrt/pow bases are positive.
"""
import numpy
import pytest
from hypothesis import given, strategies as st
from hypothesis.extra import numpy as hnp

import minigrad
from torch_compare import compare_with_torch

seeds = st.integers(0, 2**32 - 1)
shapes = hnp.array_shapes(min_dims=0, max_dims=3, max_side=3)
broadcast_pairs = hnp.mutually_broadcastable_shapes(num_shapes=2, max_dims=3, max_side=3)


def _normal(rng, shape):
    return rng.standard_normal(shape)


def _positive(rng, shape):
    return rng.uniform(0.5, 2.0, shape)


def _away_from_zero(rng, shape):
    return rng.choice([-1.0, 1.0], shape) * rng.uniform(0.2, 2.0, shape)


def _leaves(*arrays):
    return [minigrad.tensor(numpy.asarray(a, dtype=numpy.float64), requires_grad=True) for a in arrays]


BINARY = {
    "add": (lambda m, a, b: m.add(a, b), _normal),
    "sub": (lambda m, a, b: m.sub(a, b), _normal),
    "mul": (lambda m, a, b: m.mul(a, b), _normal),
    "div": (lambda m, a, b: m.div(a, b), _away_from_zero),
    "pow": (lambda m, a, b: m.pow(a, b), _positive),
    "operator +": (lambda m, a, b: a + b, _normal),
    "operator -": (lambda m, a, b: a - b, _normal),
    "operator *": (lambda m, a, b: a * b, _normal),
    "operator /": (lambda m, a, b: a / b, _away_from_zero),
    "operator **": (lambda m, a, b: a ** b, _positive),
}

UNARY = {
    "neg": (lambda m, x: m.neg(x), _normal),
    "exp": (lambda m, x: m.exp(x), _normal),
    "log": (lambda m, x: m.log(x), _positive),
    "sqrt": (lambda m, x: m.sqrt(x), _positive),
    "abs": (lambda m, x: m.abs(x), _away_from_zero),
    "operator -x": (lambda m, x: -x, _normal),
    "x ** 3": (lambda m, x: x ** 3, _normal),
    "x ** 0.5": (lambda m, x: x ** 0.5, _positive),
    "2 + x": (lambda m, x: 2.0 + x, _normal),
    "2 - x": (lambda m, x: 2.0 - x, _normal),
    "2 * x": (lambda m, x: 2.0 * x, _normal),
    "2 / x": (lambda m, x: 2.0 / x, _away_from_zero),
    "2 ** x": (lambda m, x: 2.0 ** x, _normal),
    "clamp both": (lambda m, x: m.clamp(x, min=-0.5, max=0.5), None),
    "clamp min": (lambda m, x: m.clamp(x, min=-0.5), None),
    "clamp max": (lambda m, x: m.clamp(x, max=0.5), None),
}


def _off_clamp_bounds(rng, shape):
    """Values on a grid 0.25 k + 0.1: never within 0.1 of the bounds +-0.5."""
    return 0.25 * rng.integers(-6, 7, shape) + 0.1


def _untied_pair(rng, shape_a, shape_b):
    """a on even, b on odd multiples of 0.25: no a == b anywhere, even after broadcasting."""
    return 0.5 * rng.integers(-4, 5, shape_a), 0.5 * rng.integers(-4, 5, shape_b) + 0.25


@pytest.mark.parametrize("name", list(BINARY))
@given(pair=broadcast_pairs, seed=seeds)
def test_binary_op_gradcheck_with_broadcasting(name, pair, seed):
    fn, sample = BINARY[name]
    rng = numpy.random.default_rng(seed)
    a, b = _leaves(sample(rng, pair.input_shapes[0]), sample(rng, pair.input_shapes[1]))
    assert minigrad.gradcheck(lambda a, b: fn(minigrad, a, b), [a, b])


@pytest.mark.parametrize("name", list(BINARY))
@given(pair=broadcast_pairs, seed=seeds)
def test_binary_op_matches_torch_with_broadcasting(name, pair, seed):
    pytest.importorskip("torch")
    fn, sample = BINARY[name]
    rng = numpy.random.default_rng(seed)
    compare_with_torch(fn, [sample(rng, pair.input_shapes[0]), sample(rng, pair.input_shapes[1])])


@pytest.mark.parametrize("name", list(UNARY))
@given(shape=shapes, seed=seeds)
def test_unary_op_gradcheck(name, shape, seed):
    fn, sample = UNARY[name]
    (x,) = _leaves((sample or _off_clamp_bounds)(numpy.random.default_rng(seed), shape))
    assert minigrad.gradcheck(lambda x: fn(minigrad, x), [x])


@pytest.mark.parametrize("name", list(UNARY))
@given(shape=shapes, seed=seeds)
def test_unary_op_matches_torch(name, shape, seed):
    pytest.importorskip("torch")
    fn, sample = UNARY[name]
    compare_with_torch(fn, [(sample or _off_clamp_bounds)(numpy.random.default_rng(seed), shape)])


@pytest.mark.parametrize("name", ["maximum", "minimum"])
@given(pair=broadcast_pairs, seed=seeds)
def test_maximum_minimum_gradcheck_away_from_ties(name, pair, seed):
    a, b = _leaves(*_untied_pair(numpy.random.default_rng(seed), *pair.input_shapes))
    assert minigrad.gradcheck(getattr(minigrad, name), [a, b])


@pytest.mark.parametrize("name", ["maximum", "minimum"])
@given(pair=broadcast_pairs, seed=seeds)
def test_maximum_minimum_match_torch(name, pair, seed):
    pytest.importorskip("torch")
    arrays = _untied_pair(numpy.random.default_rng(seed), *pair.input_shapes)
    compare_with_torch(lambda m, a, b: getattr(m, name)(a, b), list(arrays))


def test_maximum_splits_gradient_evenly_on_ties():
    a, b = _leaves([1.0, 2.0], [1.0, 0.0])
    minigrad.maximum(a, b).sum().backward()
    numpy.testing.assert_array_equal(a.grad.numpy(), [0.5, 1.0])
    numpy.testing.assert_array_equal(b.grad.numpy(), [0.5, 0.0])


triple_shapes = hnp.mutually_broadcastable_shapes(num_shapes=3, max_dims=3, max_side=3)


@given(shapes3=triple_shapes, seed=seeds)
def test_where_gradcheck_with_broadcast_condition(shapes3, seed):
    rng = numpy.random.default_rng(seed)
    condition = minigrad.tensor(rng.random(shapes3.input_shapes[0]) > 0.5)
    a, b = _leaves(rng.standard_normal(shapes3.input_shapes[1]), rng.standard_normal(shapes3.input_shapes[2]))
    assert minigrad.gradcheck(lambda a, b: minigrad.where(condition, a, b), [a, b])


@given(shapes3=triple_shapes, seed=seeds)
def test_where_matches_torch(shapes3, seed):
    pytest.importorskip("torch")
    rng = numpy.random.default_rng(seed)
    condition = rng.random(shapes3.input_shapes[0]) > 0.5
    arrays = [condition, rng.standard_normal(shapes3.input_shapes[1]), rng.standard_normal(shapes3.input_shapes[2])]
    compare_with_torch(lambda m, c, a, b: m.where(c, a, b), arrays, grad_inputs=[False, True, True])


def test_numpy_array_on_the_left_uses_the_reflected_operator():
    x = _leaves([1.0, 2.0])[0]
    y = numpy.array([10.0, 20.0]) - x
    assert isinstance(y, minigrad.Tensor)
    numpy.testing.assert_array_equal(y.detach().numpy(), [9.0, 18.0])


def test_clip_is_clamp():
    x = minigrad.tensor([-2.0, 0.0, 2.0])
    numpy.testing.assert_array_equal(minigrad.clip(x, -1, 1).detach().numpy(), [-1.0, 0.0, 1.0])


def test_clamp_without_bounds_is_rejected():
    with pytest.raises(ValueError, match="clamp"):
        minigrad.clamp(minigrad.ones(2))


def test_abs_gradient_at_zero_is_zero_like_torch():
    (x,) = _leaves([0.0, -1.0])
    minigrad.abs(x).sum().backward()
    numpy.testing.assert_array_equal(x.grad.numpy(), [0.0, -1.0])
