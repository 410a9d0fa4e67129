"""Matrix products (minigrad/ops/matmul.py): matmul with 1-D, 2-D and broadcast batch operands; linear."""
import numpy
import pytest
from hypothesis import given, strategies as st
from hypothesis.extra import numpy as hnp

import minigrad
from minigrad.ops.matmul import linear
from torch_compare import compare_with_torch

seeds = st.integers(0, 2**32 - 1)
sides = st.integers(1, 3)


@st.composite
def matmul_shapes(draw):
    """Shapes (a, b) for a @ b: each operand 1-D, 2-D or batched, batch axes broadcasting."""
    m, k, p = draw(sides), draw(sides), draw(sides)
    batch = draw(hnp.mutually_broadcastable_shapes(num_shapes=2, max_dims=2, max_side=3)).input_shapes
    a_kind, b_kind = draw(st.sampled_from(["1d", "2d", "batched"])), draw(st.sampled_from(["1d", "2d", "batched"]))
    a = {"1d": (k,), "2d": (m, k), "batched": batch[0] + (m, k)}[a_kind]
    b = {"1d": (k,), "2d": (k, p), "batched": batch[1] + (k, p)}[b_kind]
    return a, b


def _values(seed, shape):
    return numpy.random.default_rng(seed).standard_normal(shape)


def _leaf(array):
    return minigrad.tensor(numpy.asarray(array, dtype=numpy.float64), requires_grad=True)


@given(case=matmul_shapes(), seed=seeds)
def test_matmul_gradcheck(case, seed):
    a, b = case
    assert minigrad.gradcheck(minigrad.matmul, [_leaf(_values(seed, a)), _leaf(_values(seed + 1, b))])


@given(case=matmul_shapes(), seed=seeds)
def test_matmul_operator_matches_torch(case, seed):
    pytest.importorskip("torch")
    a, b = case
    compare_with_torch(lambda m, x, y: x @ y, [_values(seed, a), _values(seed + 1, b)])


def test_matmul_of_two_vectors_is_a_0d_dot_product():
    a, b = _leaf([1.0, 2.0]), _leaf([3.0, 4.0])
    y = a @ b
    assert y.shape == () and y.item() == 11.0
    y.backward()
    numpy.testing.assert_array_equal(a.grad.numpy(), [3.0, 4.0])


def test_numpy_array_on_the_left_uses_rmatmul():
    b = _leaf(numpy.eye(2))
    y = numpy.array([[1.0, 2.0]]) @ b
    assert isinstance(y, minigrad.Tensor)
    numpy.testing.assert_array_equal(y.detach().numpy(), [[1.0, 2.0]])


def test_only_the_input_that_needs_grad_gets_it():
    a = _leaf(_values(0, (2, 3)))
    b = minigrad.tensor(_values(1, (3, 2)))
    (a @ b).sum().backward()
    assert a.grad is not None and b.grad is None


@pytest.mark.parametrize("leading", [(), (2,), (2, 2)])
def test_linear_gradcheck_with_and_without_bias(leading):
    x, w, b = _leaf(_values(0, leading + (3,))), _leaf(_values(1, (4, 3))), _leaf(_values(2, (4,)))
    assert minigrad.gradcheck(linear, [x, w, b])
    assert minigrad.gradcheck(linear, [x, w])


def test_linear_matches_torch():
    pytest.importorskip("torch")
    compare_with_torch(
        lambda m, x, w, b: linear(x, w, b),
        [_values(0, (5, 3)), _values(1, (4, 3)), _values(2, (4,))],
        torch_fn=lambda torch, x, w, b: torch.nn.functional.linear(x, w, b),
    )
