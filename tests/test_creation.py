"""Creation functions and seeding (minigrad/creation.py, minigrad/random.py)."""
import numpy
import pytest

import minigrad


@pytest.mark.parametrize("make, value", [(minigrad.zeros, 0.0), (minigrad.ones, 1.0)])
def test_zeros_and_ones_fill_float32(make, value):
    t = make(2, 3)
    assert t.shape == (2, 3) and t.dtype == numpy.float32
    assert (t.detach().numpy() == value).all()


def test_shape_may_be_given_as_a_tuple():
    assert minigrad.zeros((2, 3)).shape == (2, 3)


def test_full_fills_the_value():
    t = minigrad.full((2, 2), 7.0)
    numpy.testing.assert_array_equal(t.detach().numpy(), numpy.full((2, 2), 7.0))


def test_empty_has_shape_and_dtype():
    t = minigrad.empty(3, 1, dtype=minigrad.float64)
    assert t.shape == (3, 1) and t.dtype == numpy.float64


def test_arange_of_ints_is_int64_like_torch():
    t = minigrad.arange(5)
    assert t.dtype == numpy.int64
    numpy.testing.assert_array_equal(t.detach().numpy(), [0, 1, 2, 3, 4])


def test_arange_with_float_step_is_float32():
    t = minigrad.arange(0, 1, 0.25)
    assert t.dtype == numpy.float32
    numpy.testing.assert_allclose(t.detach().numpy(), [0, 0.25, 0.5, 0.75])


def test_eye_is_the_identity():
    numpy.testing.assert_array_equal(minigrad.eye(3).detach().numpy(), numpy.eye(3))


def test_rand_is_in_unit_interval():
    values = minigrad.rand(1000).detach().numpy()
    assert values.dtype == numpy.float32 and values.min() >= 0 and values.max() < 1


def test_randn_has_roughly_unit_variance():
    values = minigrad.randn(10000, dtype=minigrad.float64).detach().numpy()
    assert abs(values.mean()) < 0.05 and abs(values.std() - 1) < 0.05


def test_randint_is_int64_in_range():
    t = minigrad.randint(2, 5, (100,))
    assert t.dtype == numpy.int64 and t.shape == (100,)
    assert t.detach().numpy().min() >= 2 and t.detach().numpy().max() < 5


def test_requires_grad_on_creation():
    assert minigrad.zeros(2, requires_grad=True).requires_grad


def test_same_seed_gives_same_randn():
    minigrad.manual_seed(123)
    first = minigrad.randn(5).detach().numpy()
    minigrad.manual_seed(123)
    numpy.testing.assert_array_equal(minigrad.randn(5).detach().numpy(), first)


def test_different_seeds_give_different_randn():
    minigrad.manual_seed(1)
    first = minigrad.randn(5).detach().numpy()
    minigrad.manual_seed(2)
    assert not numpy.array_equal(minigrad.randn(5).detach().numpy(), first)


def test_seed_covers_rand_and_randint_too():
    minigrad.manual_seed(7)
    first = (minigrad.rand(3).detach().numpy(), minigrad.randint(0, 100, (3,)).detach().numpy())
    minigrad.manual_seed(7)
    numpy.testing.assert_array_equal(minigrad.rand(3).detach().numpy(), first[0])
    numpy.testing.assert_array_equal(minigrad.randint(0, 100, (3,)).detach().numpy(), first[1])


@pytest.mark.parametrize("make", [
    minigrad.zeros_like, minigrad.ones_like, minigrad.empty_like, minigrad.rand_like, minigrad.randn_like,
])
def test_like_functions_copy_shape_and_dtype(make):
    source = minigrad.tensor(numpy.zeros((2, 5)))
    t = make(source)
    assert t.shape == (2, 5) and t.dtype == numpy.float64 and t.device == "cpu"


def test_full_like_fills_the_value():
    t = minigrad.full_like(minigrad.zeros(2, 2), 3.0)
    assert (t.detach().numpy() == 3).all() and t.dtype == numpy.float32


def test_randint_like_copies_shape():
    t = minigrad.randint_like(minigrad.zeros(2, 3, dtype=minigrad.int64), 0, 4)
    assert t.shape == (2, 3) and t.detach().numpy().max() < 4
