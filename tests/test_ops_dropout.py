"""dropout: inverted scaling, evaluation identity, seeding, gradient, errors."""
import numpy
import pytest

import minigrad
from minigrad.ops.dropout import dropout


def test_dropout_in_eval_returns_the_input_itself():
    x = minigrad.randn(3, 4)
    assert dropout(x, 0.5, training=False) is x


def test_dropout_with_p_zero_returns_the_input_itself():
    x = minigrad.randn(3, 4)
    assert dropout(x, 0.0) is x


def test_dropout_kept_values_are_scaled_by_one_over_keep_probability():
    minigrad.manual_seed(0)
    x = minigrad.ones(1000)
    y = dropout(x, p=0.2).detach().numpy()
    assert set(numpy.unique(y)) <= {0.0, numpy.float32(1 / 0.8)}


def test_dropout_drops_about_a_fraction_p():
    minigrad.manual_seed(1)
    y = dropout(minigrad.ones(20000), p=0.3).detach().numpy()
    assert abs((y == 0).mean() - 0.3) < 0.02  # about 6 standard deviations of a Binomial(20000, 0.3) / 20000


def test_dropout_preserves_the_mean():
    minigrad.manual_seed(2)
    y = dropout(minigrad.ones(20000, dtype=numpy.float64), p=0.5).detach().numpy()
    assert abs(y.mean() - 1.0) < 0.05


def test_dropout_same_seed_gives_the_same_mask():
    x = minigrad.randn(50)
    minigrad.manual_seed(3)
    first = dropout(x, 0.5).detach().numpy()
    minigrad.manual_seed(3)
    numpy.testing.assert_array_equal(dropout(x, 0.5).detach().numpy(), first)


def test_dropout_with_p_one_gives_zeros():
    numpy.testing.assert_array_equal(dropout(minigrad.ones(5), p=1.0).detach().numpy(), numpy.zeros(5))


def test_dropout_gradient_is_the_scaled_mask():
    minigrad.manual_seed(4)
    x = minigrad.tensor(numpy.full(200, 2.0), requires_grad=True)
    y = dropout(x, p=0.25)
    y.sum().backward()
    numpy.testing.assert_allclose(x.grad.numpy(), y.detach().numpy() / 2.0)


def test_dropout_gradcheck_with_a_fixed_mask():
    x = minigrad.tensor(numpy.random.default_rng(5).standard_normal((4, 5)), requires_grad=True)

    def seeded_dropout(x):
        minigrad.manual_seed(6)  # the same mask on every forward pass of the check
        return dropout(x, p=0.4)

    assert minigrad.gradcheck(seeded_dropout, [x])


@pytest.mark.parametrize("p", [-0.1, 1.5])
def test_dropout_probability_outside_zero_one_is_an_error(p):
    with pytest.raises(ValueError, match=r"dropout: p must be a probability in \[0, 1\]"):
        dropout(minigrad.ones(3), p=p)
