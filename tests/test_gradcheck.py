"""gradcheck itself (minigrad/utils/gradcheck.py): it passes right backwards and catches wrong ones."""
import re

import numpy
import pytest

import minigrad
from minigrad.function import Function
from minigrad.utils.gradcheck import GradcheckError, gradcheck


class WrongSquare(Function):
    """y = x^2 with a deliberately wrong backward (3x instead of 2x)."""

    def forward(self, x):
        self.saved = (x,)
        return x * x

    def backward(self, dy):
        (x,) = self.saved
        return dy * 3 * x


class RightSquare(WrongSquare):
    def backward(self, dy):
        (x,) = self.saved
        return dy * 2 * x


def _leaf(shape, seed=0):
    return minigrad.tensor(numpy.random.default_rng(seed).standard_normal(shape), requires_grad=True)


def test_correct_backward_passes():
    assert gradcheck(lambda x: RightSquare()(x), [_leaf((3, 2))])


def test_wrong_backward_is_caught_with_input_index_and_both_values():
    x = minigrad.tensor(numpy.array([[0.5, -1.0], [2.0, 0.25]]), requires_grad=True)
    with pytest.raises(GradcheckError) as info:
        gradcheck(lambda x: RightSquare()(x) * 0 + WrongSquare()(x), [x])
    message = str(info.value)
    assert "input 0" in message and "(2, 2)" in message
    # the worst element is x = 2.0 at (1, 0): analytic 3x*w vs numerical 2x*w
    assert "index (1, 0)" in message
    assert "analytic" in message and "numerical" in message


def test_reported_values_are_the_two_gradients():
    x = minigrad.tensor(numpy.array([2.0]), requires_grad=True)
    with pytest.raises(GradcheckError) as info:
        gradcheck(lambda x: WrongSquare()(x).sum(), [x])
    # output is a scalar, so the weight w multiplies both sides: the ratio is 3/2
    found = re.search(r"analytic gradient is (\S+) but the numerical one is (\S+) ", str(info.value))
    analytic, numerical = float(found.group(1)), float(found.group(2))
    assert analytic == pytest.approx(1.5 * numerical, rel=1e-6)


def test_only_second_input_wrong_is_reported_as_input_1():
    a, b = _leaf((2,), 1), _leaf((2,), 2)
    with pytest.raises(GradcheckError, match="input 1"):
        gradcheck(lambda a, b: RightSquare()(a) + WrongSquare()(b), [a, b])


def test_raise_exception_false_returns_false():
    assert gradcheck(lambda x: WrongSquare()(x), [_leaf((3,))], raise_exception=False) is False


def test_large_input_uses_random_directions_and_catches_errors():
    x = _leaf((60, 60))  # 3600 elements > max_elements
    with pytest.raises(GradcheckError, match="random direction"):
        gradcheck(lambda x: WrongSquare()(x), [x])


def test_large_input_with_correct_backward_passes():
    assert gradcheck(lambda x: RightSquare()(x), [_leaf((60, 60))])


def test_inputs_are_checked_in_float64():
    seen = []

    def fn(x):
        seen.append(x.dtype)
        return x * x

    gradcheck(fn, [minigrad.tensor(numpy.ones(2, dtype=numpy.float32), requires_grad=True)])
    assert set(seen) == {numpy.dtype(numpy.float64)}


def test_non_tensor_and_integer_inputs_are_passed_through():
    labels = minigrad.tensor([1, 0])
    x = _leaf((2, 2))
    assert gradcheck(lambda x, i: x[minigrad.arange(2), i], [x, labels])


def test_output_without_grad_is_an_error():
    with pytest.raises(GradcheckError, match="does not require grad"):
        gradcheck(lambda x: x * 2, [minigrad.tensor(numpy.ones(2))])


def test_gradcheck_is_exported_at_top_level():
    assert minigrad.gradcheck is gradcheck
