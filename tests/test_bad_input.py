"""Bad input raises errors that name the op, the argument and the shapes involved."""
import numpy
import pytest

import minigrad


def test_matmul_inner_dimension_mismatch_names_both_shapes():
    with pytest.raises(ValueError, match=r"matmul: shapes \(2, 3\) and \(4, 5\) do not match.*\(3\).*\(4\)"):
        minigrad.zeros(2, 3) @ minigrad.zeros(4, 5)


def test_matmul_vector_mismatch_names_both_shapes():
    with pytest.raises(ValueError, match=r"matmul: shapes \(3,\) and \(4,\)"):
        minigrad.matmul(minigrad.zeros(3), minigrad.zeros(4))


def test_matmul_batch_mismatch_names_batch_shapes():
    with pytest.raises(ValueError, match=r"matmul: batch dimensions .*\(2,\) vs \(3,\)"):
        minigrad.zeros(2, 3, 4) @ minigrad.zeros(3, 4, 5)


def test_matmul_of_a_0d_tensor_is_rejected():
    with pytest.raises(ValueError, match="matmul: both arguments need at least 1 dimension"):
        minigrad.matmul(minigrad.tensor(2.0), minigrad.zeros(2))


@pytest.mark.parametrize("op", ["add", "sub", "mul", "div", "maximum", "minimum"])
def test_broadcast_mismatch_names_op_and_shapes(op):
    with pytest.raises(ValueError, match=rf"{op}: shapes \(3, 2\) and \(4, 2\) cannot broadcast"):
        getattr(minigrad, op)(minigrad.ones(3, 2), minigrad.ones(4, 2))


def test_cat_mismatch_names_the_tensor_and_shapes():
    with pytest.raises(ValueError, match=r"cat: tensor 1 has shape \(2, 4\) but tensor 0 has shape \(2, 3\).*dim 0"):
        minigrad.cat([minigrad.zeros(2, 3), minigrad.zeros(2, 4)], dim=0)


def test_cat_of_different_ranks_is_rejected():
    with pytest.raises(ValueError, match=r"cat: tensor 1 has shape \(3,\)"):
        minigrad.cat([minigrad.zeros(2, 3), minigrad.zeros(3)], dim=0)


def test_stack_mismatch_names_the_tensor_and_shapes():
    with pytest.raises(ValueError, match=r"stack: tensor 1 has shape \(3,\) but tensor 0 has shape \(2,\)"):
        minigrad.stack([minigrad.zeros(2), minigrad.zeros(3)])


def test_integer_tensor_cannot_require_grad():
    with pytest.raises(TypeError, match="requires_grad=True needs a floating-point tensor.*int64"):
        minigrad.tensor([1, 2], requires_grad=True)


def test_integer_creation_with_requires_grad_is_rejected():
    with pytest.raises(TypeError, match="int32"):
        minigrad.zeros(2, dtype=minigrad.int32, requires_grad=True)


def test_requires_grad_on_existing_integer_tensor_is_rejected():
    with pytest.raises(TypeError, match="floating-point"):
        minigrad.arange(3).requires_grad_()


def test_backward_on_non_scalar_without_gradient_names_the_shape():
    x = minigrad.ones(2, 3, requires_grad=True)
    with pytest.raises(RuntimeError, match=r"backward: .*one element.*shape \(2, 3\).*gradient="):
        (x * 2).backward()


def test_out_of_range_index_names_op_index_and_shape():
    with pytest.raises(IndexError, match=r"getitem: index \(0, 7\) is invalid for a tensor of shape \(2, 3\)"):
        minigrad.zeros(2, 3)[0, 7]


def test_out_of_range_dim_names_op_and_dim():
    with pytest.raises(IndexError, match="mean: dim -3 is out of range for a tensor with 2 dimensions"):
        minigrad.zeros(2, 3).mean(dim=-3)


def test_pad_with_odd_length_is_rejected():
    with pytest.raises(ValueError, match=r"pad: needs an even number of values.*\(1, 2, 3\)"):
        minigrad.pad(minigrad.zeros(2, 2), (1, 2, 3))


def test_unknown_device_names_the_device():
    with pytest.raises(minigrad.backend.DeviceError, match="unknown device 'tpu'"):
        minigrad.zeros(2, device="tpu")


def test_item_on_many_elements_names_the_shape():
    with pytest.raises(ValueError, match=r"item\(\) needs a tensor with one element, got shape \(2, 2\)"):
        minigrad.zeros(2, 2).item()


def test_truth_value_of_many_elements_is_ambiguous():
    with pytest.raises(ValueError, match=r"shape \(2,\) is ambiguous"):
        bool(minigrad.tensor(numpy.array([1.0, 2.0])))


@pytest.mark.parametrize("loss", ["cross_entropy", "nll_loss"])
def test_a_list_of_labels_is_refused_naming_target_and_what_to_write(loss):
    from minigrad.nn import functional as F

    with pytest.raises(TypeError, match=rf"{loss}: target must be a Tensor .*got list; wrap it first: minigrad.tensor"):
        getattr(F, loss)(minigrad.randn(4, 5), [0, 1, 2, 3])


def test_mse_loss_refuses_a_list_target():
    from minigrad.nn import functional as F

    with pytest.raises(TypeError, match="mse_loss: target must be a Tensor"):
        F.mse_loss(minigrad.randn(3), [1.0, 2.0, 3.0])


@pytest.mark.parametrize("optimizer, options", [("SGD", {"lr": "0.1"}), ("Adam", {"lr": "1e-3"}),
                                                ("RMSprop", {"lr": "0.01"}), ("AdamW", {"lr": 1e-3, "betas": ("0.9", 0.99)}),
                                                ("SGD", {"lr": 0.1, "momentum": None})])
def test_an_optimizer_hyperparameter_that_is_not_a_number_is_named(optimizer, options):
    from minigrad import optim

    with pytest.raises(TypeError, match=rf"{optimizer}: \w+(\[\d\])? must be a number, got"):
        getattr(optim, optimizer)([minigrad.randn(2, requires_grad=True)], **options)


@pytest.mark.parametrize("layer, shape", [("Linear(3, 2)", (4, 3)), ("Conv2d(2, 3, 3)", (1, 2, 5, 5)),
                                          ("BatchNorm2d(2)", (4, 2, 3, 3)),
                                          ("BatchNorm2d(2, affine=False)", (4, 2, 3, 3))])
def test_an_input_of_another_dtype_than_the_layer_is_refused_naming_both(layer, shape):
    from minigrad import nn

    module = eval(f"nn.{layer}")                              # float32 parameters, PyTorch's default
    with pytest.raises(TypeError, match=r"input dtype float64 does not match the layer's dtype float32.*x\.to"):
        module(minigrad.tensor(numpy.zeros(shape)))
    assert module(minigrad.tensor(numpy.zeros(shape, numpy.float32))).dtype == numpy.float32
    assert module.to(numpy.float64)(minigrad.tensor(numpy.zeros(shape))).dtype == numpy.float64
