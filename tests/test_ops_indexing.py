"""Indexing (minigrad/ops/indexing.py): basic and advanced x[index], scatter-add backward."""
import numpy
import pytest
from hypothesis import given, strategies as st
from hypothesis.extra import numpy as hnp

import minigrad
from torch_compare import compare_with_torch

seeds = st.integers(0, 2**32 - 1)
shapes = hnp.array_shapes(min_dims=1, max_dims=3, max_side=4)


def _values(seed, shape):
    return numpy.random.default_rng(seed).standard_normal(shape)


def _leaf(array):
    return minigrad.tensor(numpy.asarray(array, dtype=numpy.float64), requires_grad=True)


def _check(index_fn, x, index_arrays=()):
    """gradcheck x[...] and compare with PyTorch; index_arrays are passed as integer/bool tensors."""
    assert minigrad.gradcheck(lambda t, *i: index_fn(t, *i), [_leaf(x)] + [minigrad.tensor(i) for i in index_arrays])
    try:
        import torch  # noqa: F401
    except ImportError:
        return
    compare_with_torch(lambda m, t, *i: index_fn(t, *i), [x, *index_arrays],
                       grad_inputs=[True] + [False] * len(index_arrays))


@given(data=st.data(), seed=seeds)
def test_basic_slices_with_steps_and_negative_bounds(data, seed):
    shape = data.draw(shapes)
    index = tuple(
        slice(data.draw(st.integers(-n, n)), data.draw(st.integers(-n, n)), data.draw(st.sampled_from([1, 2])))
        for n in shape
    )
    _check(lambda t: t[index], _values(seed, shape))


@given(data=st.data(), seed=seeds)
def test_integer_index_removes_a_dim(data, seed):
    shape = data.draw(shapes)
    i = data.draw(st.integers(-shape[0], shape[0] - 1))
    _check(lambda t: t[i], _values(seed, shape))


@given(shape=shapes, seed=seeds)
def test_none_and_ellipsis(shape, seed):
    _check(lambda t: t[None, ..., 0:1], _values(seed, shape))


@given(data=st.data(), seed=seeds)
def test_integer_array_index_with_repeats_accumulates(data, seed):
    shape = data.draw(shapes)
    index = numpy.array(data.draw(st.lists(st.integers(-shape[0], shape[0] - 1), min_size=1, max_size=6)))
    _check(lambda t, i: t[i], _values(seed, shape), [index])


@given(data=st.data(), seed=seeds)
def test_two_integer_arrays_pick_elements(data, seed):
    shape = data.draw(hnp.array_shapes(min_dims=2, max_dims=3, max_side=4))
    count = data.draw(st.integers(1, 6))
    rows = numpy.array(data.draw(st.lists(st.integers(0, shape[0] - 1), min_size=count, max_size=count)))
    cols = numpy.array(data.draw(st.lists(st.integers(0, shape[1] - 1), min_size=count, max_size=count)))
    _check(lambda t, r, c: t[r, c], _values(seed, shape), [rows, cols])


@given(data=st.data(), seed=seeds)
def test_integer_array_after_a_slice(data, seed):
    shape = data.draw(hnp.array_shapes(min_dims=2, max_dims=3, max_side=4))
    cols = numpy.array(data.draw(st.lists(st.integers(0, shape[1] - 1), min_size=1, max_size=5)))
    _check(lambda t, c: t[:, c], _values(seed, shape), [cols])


@given(shape=shapes, seed=seeds)
def test_boolean_mask_of_full_shape(shape, seed):
    x = _values(seed, shape)
    _check(lambda t, mask: t[mask], x, [x > 0])


@given(shape=hnp.array_shapes(min_dims=2, max_dims=3, max_side=4), seed=seeds)
def test_boolean_mask_over_first_dim(shape, seed):
    rows = numpy.random.default_rng(seed + 1).random(shape[0]) > 0.5
    _check(lambda t, mask: t[mask], _values(seed, shape), [rows])


def test_repeated_index_gradient_is_the_count():
    x = _leaf([1.0, 2.0, 3.0])
    x[[0, 0, 2, 0]].sum().backward()
    numpy.testing.assert_array_equal(x.grad.numpy(), [3.0, 0.0, 1.0])


def test_index_may_be_a_list_or_a_tensor():
    x = minigrad.tensor(numpy.arange(4.0))
    numpy.testing.assert_array_equal(x[[3, 1]].detach().numpy(), [3.0, 1.0])
    numpy.testing.assert_array_equal(x[minigrad.tensor([3, 1])].detach().numpy(), [3.0, 1.0])
    numpy.testing.assert_array_equal(x[x > 1].detach().numpy(), [2.0, 3.0])


def test_out_of_range_integer_names_op_index_and_shape():
    with pytest.raises(IndexError, match=r"getitem: index 5 .*shape \(3,\)"):
        minigrad.zeros(3)[5]


def test_out_of_range_index_array_names_op_and_shape():
    with pytest.raises(IndexError, match=r"getitem: .*shape \(2, 3\).*out of bounds"):
        minigrad.zeros(2, 3)[minigrad.tensor([0, 2])]
