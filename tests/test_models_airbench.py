"""AirbenchNet (minigrad/models/airbench.py): shapes, the whitening layer, the dirac start of every 3x3
conv, the frozen parameters, the parameter split for Muon + SGD, and a few steps that lower the loss."""
import numpy
import pytest

import minigrad
from minigrad import models, nn, optim
from minigrad.models.airbench import patch_whitening_weights

SMALL = (8, 16, 16)     # narrow widths: the same shapes and rules, fast on the CPU


def correlated_images(n=64, size=12, seed=0):
    """Random images whose channels and neighbouring pixels are correlated, like photos, with a mean."""
    rng = numpy.random.default_rng(seed)
    noise = rng.standard_normal((n, 3, size + 1, size + 1))
    smooth = noise[:, :, 1:, 1:] + 0.8 * noise[:, :, :-1, 1:] + 0.6 * noise[:, :, 1:, :-1]   # (n, 3, size, size)
    mixing = numpy.array([[1.0, 0.7, 0.5], [0.0, 1.0, 0.6], [0.0, 0.0, 1.0]])
    return (numpy.einsum("dc,nchw->ndhw", mixing, smooth) + 0.3).astype(numpy.float32)


def flat_patches(images, p=2):
    """Every p x p patch as a row, in the order of a conv weight (C, KH, KW)."""
    n, c, h, w = images.shape
    rows = [images[:, :, i:i + p, j:j + p].reshape(n, -1) for i in range(h - p + 1) for j in range(w - p + 1)]
    return numpy.concatenate(rows).astype(numpy.float64)                      # (n OH OW, C p p)


def small_model(seed=0):
    minigrad.manual_seed(seed)
    model = models.AirbenchNet(widths=SMALL)
    model.init_whitening(correlated_images(size=32))
    return model


def test_output_is_one_row_of_10_logits_per_32x32_image():
    minigrad.manual_seed(0)
    model = models.AirbenchNet()
    model.init_whitening(correlated_images(n=8, size=32))
    assert model(minigrad.randn(4, 3, 32, 32)).shape == (4, 10)


def test_each_stage_has_the_documented_shape():
    model = small_model()
    x = nn.functional.conv2d(minigrad.randn(2, 3, 32, 32), model.whiten.weight, model.whiten.bias)
    assert x.shape == (2, 24, 31, 31)                 # 2x2 conv, no padding
    x = model.group1(x)
    assert x.shape == (2, SMALL[0], 15, 15)
    x = model.group2(x)
    assert x.shape == (2, SMALL[1], 7, 7)
    x = model.group3(x)
    assert x.shape == (2, SMALL[2], 3, 3)
    assert model.pool(x).shape == (2, SMALL[2], 1, 1)  # MaxPool2d(3) leaves one value per channel


def test_whitening_weights_make_the_patch_covariance_the_identity():
    images = correlated_images()
    weights = patch_whitening_weights(images, patch_size=2, eps=0.0)
    assert weights.shape == (24, 3, 2, 2) and weights.dtype == numpy.float32
    whitened = flat_patches(images) @ weights[:12].reshape(12, -1).T.astype(numpy.float64)   # (P, 12)
    numpy.testing.assert_allclose(numpy.cov(whitened, rowvar=False, bias=True), numpy.eye(12), atol=1e-3)


def test_whitening_weights_come_in_pairs_of_opposite_sign():
    weights = patch_whitening_weights(correlated_images())
    numpy.testing.assert_array_equal(weights[12:], -weights[:12])


def test_whitening_eps_shrinks_the_low_variance_directions_instead_of_amplifying_them():
    images = correlated_images()
    variances = numpy.var(flat_patches(images) @ patch_whitening_weights(images, eps=1.0)[:12].reshape(12, -1).T,
                          axis=0)
    assert numpy.all(variances < 1) and variances[0] > variances[-1]   # Lambda / (Lambda + eps), largest first


def test_init_whitening_makes_the_whitening_conv_output_decorrelated():
    """The conv layout (F, C, KH, KW) must match the order in which the patches were flattened."""
    images = correlated_images()
    model = models.AirbenchNet(widths=SMALL)
    model.init_whitening(images, eps=0.0)
    with minigrad.no_grad():
        out = nn.functional.conv2d(minigrad.tensor(images), model.whiten.weight).numpy()   # (N, 24, 11, 11)
    features = out[:, :12].transpose(0, 2, 3, 1).reshape(-1, 12).astype(numpy.float64)
    numpy.testing.assert_allclose(numpy.cov(features, rowvar=False, bias=True), numpy.eye(12), atol=1e-3)


def test_whitening_uses_a_deterministic_subset_when_given_many_images():
    images = correlated_images(n=40)
    first = patch_whitening_weights(images, max_images=10, chunk=3)
    numpy.testing.assert_array_equal(first, patch_whitening_weights(images, max_images=10, chunk=7))


def test_whitening_rejects_images_that_are_not_n_c_h_w():
    with pytest.raises(ValueError, match="expected images"):
        patch_whitening_weights(numpy.zeros((3, 32, 32)))


def test_whitening_without_eps_refuses_a_direction_of_zero_variance():
    with pytest.raises(ValueError, match="no variance"):
        patch_whitening_weights(numpy.ones((4, 3, 8, 8)), eps=0.0)


@pytest.mark.parametrize("group_name", ["group1", "group2", "group3"])
def test_the_first_filters_of_every_3x3_conv_are_dirac_and_the_rest_keep_the_default_init(group_name):
    group = getattr(small_model(), group_name)
    for conv in (group.conv1, group.conv2):
        weight = conv.weight.detach().numpy()
        k = min(weight.shape[:2])
        identity = numpy.zeros((k,) + weight.shape[1:])
        identity[numpy.arange(k), numpy.arange(k), 1, 1] = 1
        numpy.testing.assert_array_equal(weight[:k], identity, err_msg=f"{group_name} first {k} filters")
        if weight.shape[0] > k:
            assert numpy.abs(weight[k:]).max() > 0, f"{group_name}: filters {k}.. should keep the random init"


def test_dirac_false_keeps_the_default_init_everywhere():
    """The ablation switch: no 3x3 conv starts as the identity, and its init is the layer's default
    (the same draw of the seeded generator as with dirac, outside the identity filters)."""
    minigrad.manual_seed(3)
    plain = models.AirbenchNet(widths=SMALL, dirac=False)
    minigrad.manual_seed(3)
    dirac = models.AirbenchNet(widths=SMALL)
    for name in ("group1", "group2", "group3"):
        for conv in ("conv1", "conv2"):
            a = getattr(getattr(plain, name), conv).weight.detach().numpy()
            b = getattr(getattr(dirac, name), conv).weight.detach().numpy()
            k = min(a.shape[:2])
            assert a[numpy.arange(k), numpy.arange(k), 1, 1].std() > 0, f"{name}.{conv} starts as the identity"
            assert not numpy.allclose(a[:k], b[:k]), f"{name}.{conv}"
            numpy.testing.assert_array_equal(a[k:], b[k:], err_msg=f"{name}.{conv}")


def test_a_groups_first_conv_passes_its_input_channels_through_before_pooling():
    group = small_model().group2                      # 8 -> 16 channels
    x = minigrad.randn(2, SMALL[0], 6, 6)
    with minigrad.no_grad():
        y = group.conv1(x).numpy()
    numpy.testing.assert_allclose(y[:, :SMALL[0]], x.numpy(), rtol=1e-6, atol=1e-6)


def test_whitening_weight_and_batch_norm_scales_are_frozen_and_sgd_leaves_them_unchanged():
    model = small_model()
    frozen = [model.whiten.weight] + [m.weight for m in model.modules() if isinstance(m, nn.BatchNorm2d)]
    assert len(frozen) == 7 and not any(p.requires_grad for p in frozen)
    before = [p.detach().numpy().copy() for p in frozen]
    optimizer = optim.SGD(model.parameters(), lr=0.1, momentum=0.9, weight_decay=1e-3)
    nn.CrossEntropyLoss()(model(minigrad.randn(4, 3, 32, 32)), minigrad.tensor([0, 1, 2, 3])).backward()
    optimizer.step()
    for p, old in zip(frozen, before):
        numpy.testing.assert_array_equal(p.detach().numpy(), old)
    assert model.whitening_bias is model.whiten.bias and model.whitening_bias.requires_grad


def test_the_parameter_split_covers_every_trainable_parameter_exactly_once():
    model = small_model()
    muon, other = model.muon_parameters(), model.other_parameters()
    trainable = {id(p) for p in model.parameters() if p.requires_grad}
    assert len(muon) + len(other) == len(trainable) and {id(p) for p in muon + other} == trainable
    assert len(muon) == 6 and all(p.ndim == 4 for p in muon)           # the six 3x3 convs
    assert any(p is model.whitening_bias for p in other) and any(p is model.head.weight for p in other)


def test_muon_takes_the_filters_and_sgd_the_rest():
    model = small_model()
    optimizers = [optim.Muon(model.muon_parameters(), lr=0.05, momentum=0.6),
                  optim.SGD(model.other_parameters(), lr=0.05, momentum=0.85, nesterov=True)]
    nn.CrossEntropyLoss()(model(minigrad.randn(4, 3, 32, 32)), minigrad.tensor([0, 1, 2, 3])).backward()
    for optimizer in optimizers:
        optimizer.step()


def test_without_whiten_bias_grad_the_whitening_bias_gets_no_gradient():
    model = small_model()
    nn.CrossEntropyLoss()(model(minigrad.randn(4, 3, 32, 32), whiten_bias_grad=False),
                          minigrad.tensor([0, 1, 2, 3])).backward()
    assert model.whitening_bias.grad is None
    assert model.group1.norm1.bias.grad is not None


def test_a_few_sgd_steps_lower_the_loss_on_the_same_batch():
    model = small_model()
    images, labels = minigrad.randn(16, 3, 32, 32), minigrad.tensor(numpy.arange(16) % 10)
    optimizer = optim.SGD(model.muon_parameters() + model.other_parameters(), lr=0.2, momentum=0.9)
    losses = []
    for _ in range(5):
        optimizer.zero_grad()
        loss = nn.CrossEntropyLoss()(model(images), labels)
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert losses[-1] < losses[0], f"losses {losses}"


@pytest.mark.parametrize("shape, message", [((2, 1, 32, 32), "expected images"), ((2, 3, 64, 64), "32x32")])
def test_wrong_images_are_refused_with_a_clear_message(shape, message):
    with pytest.raises(ValueError, match=message):
        small_model()(minigrad.randn(*shape))


def test_widths_must_be_three_numbers():
    with pytest.raises(ValueError, match="widths"):
        models.AirbenchNet(widths=(64, 256))


def test_head_weight_std_rescales_the_head_weight_keeping_its_direction():
    minigrad.manual_seed(3)
    default = models.AirbenchNet()
    minigrad.manual_seed(3)
    muon_style = models.AirbenchNet(head_scale=1 / 256, head_weight_std=1.0)
    w, v = default.head.weight.array, muon_style.head.weight.array
    assert abs(float(v.std()) - 1.0) < 1e-5
    numpy.testing.assert_allclose(v, w * (1.0 / w.std()), rtol=1e-5)      # the same direction, rescaled
