"""Shape ops (minigrad/ops/shape.py): reshape/view, transpose, permute, flatten, squeeze, unsqueeze,
expand/broadcast_to, pad, cat, stack, split, chunk. Hypothesis draws shapes, dims and sizes."""
import numpy
import pytest
from hypothesis import given, strategies as st
from hypothesis.extra import numpy as hnp

import minigrad
from torch_compare import compare_with_torch

seeds = st.integers(0, 2**32 - 1)
shapes = hnp.array_shapes(min_dims=1, max_dims=3, max_side=3)


def _values(seed, shape):
    return numpy.random.default_rng(seed).standard_normal(shape)


def _leaf(array):
    return minigrad.tensor(numpy.asarray(array, dtype=numpy.float64), requires_grad=True)


def _check(fn, arrays, torch_fn=None):
    """gradcheck in minigrad, then values and gradients against PyTorch where it is installed."""
    assert minigrad.gradcheck(lambda *ts: fn(minigrad, *ts), [_leaf(a) for a in arrays])
    try:
        import torch  # noqa: F401
    except ImportError:
        return
    compare_with_torch(fn, arrays, torch_fn=torch_fn)


@st.composite
def shape_and_dim(draw, extra=0):
    """A shape and a dim in [-(ndim + extra), ndim + extra)."""
    shape = draw(shapes)
    size = len(shape) + extra
    return shape, draw(st.integers(-size, size - 1))


@given(shape=shapes, seed=seeds)
def test_reshape_to_reversed_shape(shape, seed):
    _check(lambda m, x: m.reshape(x, tuple(reversed(shape))), [_values(seed, shape)])


@given(shape=shapes, seed=seeds)
def test_view_with_minus_one(shape, seed):
    _check(lambda m, x: x.view(-1, shape[-1]), [_values(seed, shape)])


@given(data=st.data(), seed=seeds)
def test_permute_by_drawn_order(data, seed):
    shape = data.draw(shapes)
    order = tuple(data.draw(st.permutations(range(len(shape)))))
    _check(lambda m, x: m.permute(x, order), [_values(seed, shape)])


@given(data=st.data(), seed=seeds)
def test_transpose_two_drawn_dims(data, seed):
    shape = data.draw(shapes)
    dims = st.integers(-len(shape), len(shape) - 1)
    dim0, dim1 = data.draw(dims), data.draw(dims)
    _check(lambda m, x: m.transpose(x, dim0, dim1), [_values(seed, shape)])


def test_T_reverses_axes():
    x = minigrad.tensor(_values(0, (2, 3, 4)))
    assert x.T.shape == (4, 3, 2)


@given(data=st.data(), seed=seeds)
def test_flatten_between_drawn_dims(data, seed):
    shape = data.draw(shapes)
    start = data.draw(st.integers(0, len(shape) - 1))
    end = data.draw(st.integers(start, len(shape) - 1))
    _check(lambda m, x: m.flatten(x, start, end), [_values(seed, shape)])


@given(data=st.data(), seed=seeds)
def test_squeeze_drawn_dim(data, seed):
    shape = list(data.draw(shapes))
    shape.insert(data.draw(st.integers(0, len(shape))), 1)
    dim = data.draw(st.integers(-len(shape), len(shape) - 1))
    _check(lambda m, x: m.squeeze(x, dim), [_values(seed, tuple(shape))])


@given(shape=shapes, seed=seeds)
def test_squeeze_all_size_one_dims(shape, seed):
    _check(lambda m, x: m.squeeze(x), [_values(seed, (1,) + shape + (1,))])


@given(case=shape_and_dim(extra=1), seed=seeds)
def test_unsqueeze_drawn_dim(case, seed):
    shape, dim = case
    _check(lambda m, x: m.unsqueeze(x, dim), [_values(seed, shape)])


@given(data=st.data(), seed=seeds)
def test_expand_to_a_broadcast_shape(data, seed):
    target = data.draw(hnp.array_shapes(min_dims=1, max_dims=3, max_side=3))
    kept = data.draw(st.integers(0, len(target)))  # trailing dims of the input
    shape = tuple(size if data.draw(st.booleans()) else 1 for size in target[len(target) - kept:])
    _check(lambda m, x: x.expand(target), [_values(seed, shape)])
    _check(lambda m, x: m.broadcast_to(x, target), [_values(seed, shape)])


@given(data=st.data(), seed=seeds)
def test_constant_pad_of_last_dims(data, seed):
    shape = data.draw(shapes)
    count = data.draw(st.integers(1, len(shape)))
    pad = tuple(data.draw(st.lists(st.integers(0, 2), min_size=2 * count, max_size=2 * count)))
    _check(lambda m, x: m.pad(x, pad, value=0.5), [_values(seed, shape)],
           torch_fn=lambda torch, x: torch.nn.functional.pad(x, pad, value=0.5))


@given(data=st.data(), seed=seeds)
def test_cat_along_drawn_dim(data, seed):
    shape, dim = data.draw(shape_and_dim())
    sizes = data.draw(st.lists(st.integers(1, 3), min_size=1, max_size=3))
    arrays = []
    for i, size in enumerate(sizes):
        piece_shape = list(shape)
        piece_shape[dim] = size
        arrays.append(_values(seed + i, tuple(piece_shape)))
    _check(lambda m, *ts: m.cat(list(ts), dim=dim), arrays)


@given(data=st.data(), seed=seeds)
def test_stack_along_drawn_dim(data, seed):
    shape, dim = data.draw(shape_and_dim(extra=1))
    count = data.draw(st.integers(1, 3))
    _check(lambda m, *ts: m.stack(list(ts), dim=dim), [_values(seed + i, shape) for i in range(count)])


def _weighted_join(pieces, m, dim):
    """Join pieces back, each scaled differently, so a misrouted gradient shows."""
    return m.cat([p * (i + 1.0) for i, p in enumerate(pieces)], dim=dim)


@given(data=st.data(), seed=seeds)
def test_split_by_size_along_drawn_dim(data, seed):
    shape, dim = data.draw(shape_and_dim())
    size = data.draw(st.integers(1, 3))
    _check(lambda m, x: _weighted_join(m.split(x, size, dim=dim), m, dim), [_values(seed, shape)])


def test_split_by_sections():
    _check(lambda m, x: _weighted_join(m.split(x, [1, 3], dim=1), m, 1), [_values(0, (2, 4))])


@given(data=st.data(), seed=seeds)
def test_chunk_along_drawn_dim(data, seed):
    shape, dim = data.draw(shape_and_dim())
    chunks = data.draw(st.integers(1, 4))
    _check(lambda m, x: _weighted_join(m.chunk(x, chunks, dim=dim), m, dim), [_values(seed, shape)])


def test_chunk_sizes_follow_torch():
    pieces = minigrad.chunk(minigrad.zeros(5), 3)
    assert [p.shape[0] for p in pieces] == [2, 2, 1]


def test_split_sections_that_do_not_add_up_are_rejected():
    with pytest.raises(ValueError, match=r"split: sizes \[1, 1\] add up to 2, but dim 0 has size 3"):
        minigrad.split(minigrad.zeros(3), [1, 1])


def test_reshape_to_wrong_size_names_both_shapes():
    with pytest.raises(ValueError, match=r"reshape.*\(2, 3\).*\(4,\)"):
        minigrad.zeros(2, 3).reshape(4)


def test_expand_to_incompatible_shape_is_rejected():
    with pytest.raises(ValueError, match=r"expand.*\(3,\).*\(4,\)"):
        minigrad.zeros(3).expand(4)


def test_permute_with_wrong_order_is_rejected():
    with pytest.raises(ValueError, match="permute"):
        minigrad.zeros(2, 3).permute(0, 0)


@given(shape=shapes, seed=seeds)
def test_clone_gradcheck(shape, seed):
    _check(lambda m, x: x.clone() * 2.0, [_values(seed, shape)])


def test_clone_does_not_share_memory():
    x = minigrad.tensor(_values(0, (3,)))
    y = x.clone()
    y.zero_()
    assert (x.detach().numpy() != 0).all()


def test_cast_to_float32_and_back_passes_gradient():
    x = _leaf(_values(0, (2, 3)))
    (x.float().double() * 3.0).sum().backward()
    numpy.testing.assert_array_equal(x.grad.numpy(), numpy.full((2, 3), 3.0))
