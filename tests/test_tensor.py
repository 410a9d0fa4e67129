"""Tensor: construction, default dtypes, attributes, conversions (minigrad/tensor.py)."""
import numpy
import pytest

import minigrad


def test_python_floats_default_to_float32():
    assert minigrad.tensor([1.0, 2.0]).dtype == numpy.float32


def test_python_ints_give_int64():
    assert minigrad.tensor([1, 2]).dtype == numpy.int64


def test_float64_numpy_array_keeps_float64():
    assert minigrad.tensor(numpy.zeros(3)).dtype == numpy.float64


def test_explicit_dtype_is_used():
    t = minigrad.tensor([1, 2], dtype=minigrad.float64)
    assert t.dtype == numpy.float64
    numpy.testing.assert_array_equal(t.detach().numpy(), [1.0, 2.0])


def test_tensor_copies_its_numpy_input():
    array = numpy.ones(3)
    t = minigrad.tensor(array)
    array[0] = 5
    assert t.detach().numpy()[0] == 1


def test_shape_ndim_device_attributes():
    t = minigrad.tensor(numpy.zeros((2, 3, 4)))
    assert t.shape == (2, 3, 4)
    assert t.ndim == 3
    assert t.device == "cpu"
    assert isinstance(t.array, numpy.ndarray)


def test_new_tensor_is_a_leaf_without_grad():
    t = minigrad.tensor([1.0], requires_grad=True)
    assert t.is_leaf and t.requires_grad and t.grad is None and t.grad_fn is None


def test_op_output_is_not_a_leaf():
    t = minigrad.tensor([1.0], requires_grad=True)
    y = t * 2
    assert not y.is_leaf and y.requires_grad and y.grad_fn is not None


def test_numpy_returns_the_values():
    numpy.testing.assert_array_equal(minigrad.tensor([[1.0, 2.0]]).detach().numpy(), [[1.0, 2.0]])


def test_item_of_one_element():
    assert minigrad.tensor([[2.5]]).item() == 2.5


def test_item_of_many_elements_raises_naming_the_shape():
    with pytest.raises(ValueError, match=r"item\(\).*\(2,\)"):
        minigrad.tensor([1.0, 2.0]).item()


def test_to_same_device_returns_self():
    t = minigrad.tensor([1.0])
    assert t.to("cpu") is t


def test_to_dtype_converts_and_stays_differentiable():
    t = minigrad.tensor([1.5, 2.5], requires_grad=True)
    d = t.to(dtype=minigrad.float64)
    assert d.dtype == numpy.float64
    d.sum().backward()
    assert t.grad.dtype == numpy.float32
    numpy.testing.assert_array_equal(t.grad.numpy(), [1.0, 1.0])


def test_detach_shares_values_but_leaves_the_graph():
    t = minigrad.tensor([1.0, 2.0], requires_grad=True)
    y = (t * 3).detach()
    assert y.is_leaf and not y.requires_grad and y.grad_fn is None
    numpy.testing.assert_array_equal(y.detach().numpy(), [3.0, 6.0])


def test_zero_sets_values_in_place():
    t = minigrad.tensor([1.0, 2.0])
    assert t.zero_() is t
    numpy.testing.assert_array_equal(t.detach().numpy(), [0.0, 0.0])


def test_grad_can_be_zeroed_in_place():
    t = minigrad.tensor([1.0, 2.0], requires_grad=True)
    (t * t).sum().backward()
    t.grad.zero_()
    numpy.testing.assert_array_equal(t.grad.numpy(), [0.0, 0.0])


def test_repr_mentions_values_and_grad_fn():
    t = minigrad.tensor([1.0], requires_grad=True)
    assert "grad_fn=Mul" in repr(t * 2)
    assert "requires_grad=True" in repr(t)


def test_comparisons_give_boolean_tensors_without_grad():
    t = minigrad.tensor([1.0, 3.0], requires_grad=True)
    mask = t > 2
    assert mask.dtype == numpy.bool_ and not mask.requires_grad
    numpy.testing.assert_array_equal(mask.detach().numpy(), [False, True])


def test_float64_survives_every_op_kind():
    x = minigrad.tensor(numpy.ones((2, 3)), requires_grad=True)
    y = ((x * 2 + 1).exp().sum(axis=0) @ minigrad.tensor(numpy.ones(3))).relu()
    assert y.dtype == numpy.float64
    y.backward()
    assert x.grad.dtype == numpy.float64


def test_python_scalar_keeps_float32():
    x = minigrad.tensor([1.0, 2.0])
    assert (x * 2.0 + 1).dtype == numpy.float32
    assert (2.0 / x).dtype == numpy.float32


def test_len_is_the_first_dimension():
    assert len(minigrad.zeros(4, 2)) == 4


def test_numpy_of_a_tensor_that_requires_grad_is_refused_as_in_pytorch():
    """The array would be the tensor's own memory: writing to it would change a value behind autograd's
    back. detach() says what is meant; a gradient, item() and tolist() need no detach."""
    import pytest

    w = minigrad.tensor([1.0, 2.0], requires_grad=True)
    with pytest.raises(RuntimeError, match=r"requires grad \(shape \(2,\)\).*tensor.detach\(\).numpy\(\)"):
        w.numpy()
    assert w.detach().numpy().tolist() == [1.0, 2.0] and w.tolist() == [1.0, 2.0]
    (w * w).sum().backward()
    assert w.grad.numpy().tolist() == [2.0, 4.0] and (w * 3).sum().item() == 9.0
