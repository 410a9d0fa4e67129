"""Models: parameter counts, shapes, gradients reaching every parameter, a save/load round trip for
each, and a residual block against a torch block written the same way."""
import math

import numpy
import pytest

import minigrad
from minigrad import models, nn
from test_nn_layers import compare_module, randn


@pytest.mark.parametrize("build, count", [
    (lambda: models.resnet20(), 272_474),
    (lambda: models.resnet32(), 466_906),
    (lambda: models.resnet56(), 855_770),
    (lambda: models.resnet18(), 11_173_962),
    (lambda: models.LeNet5(), 61_706),
    (lambda: models.MLP(784, [256, 128], 10), 235_146),
])
def test_parameter_count(build, count):
    assert sum(p.numel() for p in build().parameters()) == count


def test_resnet20_forward_gives_logits_and_backward_fills_every_grad():
    minigrad.manual_seed(0)
    model = models.resnet20()
    logits = model(minigrad.randn(2, 3, 32, 32))
    assert logits.shape == (2, 10)
    nn.CrossEntropyLoss()(logits, minigrad.tensor([3, 7])).backward()
    missing = [name for name, p in model.named_parameters() if p.grad is None or not p.grad.numpy().any()]
    assert missing == []


def test_resnet18_forward_on_a_tiny_batch():
    model = models.resnet18(num_classes=5).eval()      # eval: one image is enough for BN
    with minigrad.no_grad():
        assert model(minigrad.randn(1, 3, 8, 8)).shape == (1, 5)


ROUND_TRIP = {
    "mlp": (lambda: models.MLP(12, [8, 6], 3, dropout=0.2), (4, 3, 2, 2)),
    "lenet5": (lambda: models.LeNet5(), (2, 1, 28, 28)),
    "resnet20": (lambda: models.resnet20(), (2, 3, 8, 8)),
    "resnet32": (lambda: models.resnet32(), (2, 3, 8, 8)),
    "resnet56": (lambda: models.resnet56(), (2, 3, 8, 8)),
    "resnet18": (lambda: models.resnet18(), (2, 3, 8, 8)),
}


@pytest.mark.parametrize("name", list(ROUND_TRIP))
def test_state_dict_round_trip_gives_identical_outputs(name, tmp_path):
    build, shape = ROUND_TRIP[name]
    minigrad.manual_seed(0)
    model = build()
    x = minigrad.randn(*shape)
    model(x)                                  # one training step moves the BN running statistics
    model.eval()
    path = tmp_path / f"{name}.npz"
    model.save(path)
    minigrad.manual_seed(1)
    fresh = build().eval()
    fresh.load(path)
    numpy.testing.assert_array_equal(fresh(x).detach().numpy(), model(x).detach().numpy())


def test_basic_block_identity_shortcut_has_no_parameters():
    block = models.BasicBlock(16, 16)
    assert isinstance(block.shortcut, nn.Identity)
    assert not any(name.startswith("shortcut") for name, _ in block.named_parameters())


def test_basic_block_projection_shortcut_is_1x1_conv_and_bn():
    block = models.BasicBlock(16, 32, stride=2)
    conv, bn = block.shortcut[0], block.shortcut[1]
    assert conv.kernel_size == (1, 1) and conv.stride == (2, 2) and isinstance(bn, nn.BatchNorm2d)
    assert block(minigrad.randn(1, 16, 8, 8)).shape == (1, 32, 4, 4)


@pytest.mark.parametrize("in_planes, planes, stride", [(4, 4, 1), (4, 6, 2)])
def test_basic_block_matches_torch(in_planes, planes, stride):
    torch = pytest.importorskip("torch")
    tnn = torch.nn

    class TorchBlock(tnn.Module):
        def __init__(self):
            super().__init__()
            self.conv1 = tnn.Conv2d(in_planes, planes, 3, stride, 1, bias=False)
            self.bn1 = tnn.BatchNorm2d(planes)
            self.conv2 = tnn.Conv2d(planes, planes, 3, 1, 1, bias=False)
            self.bn2 = tnn.BatchNorm2d(planes)
            self.shortcut = tnn.Identity()
            if stride != 1 or in_planes != planes:
                self.shortcut = tnn.Sequential(tnn.Conv2d(in_planes, planes, 1, stride, bias=False),
                                               tnn.BatchNorm2d(planes))

        def forward(self, x):
            out = torch.relu(self.bn1(self.conv1(x)))
            return torch.relu(self.bn2(self.conv2(out)) + self.shortcut(x))

    compare_module(models.BasicBlock(in_planes, planes, stride), TorchBlock(), randn(2, in_planes, 6, 6))


def test_resnet_convs_are_kaiming_normal_fan_out_and_bn_is_one_zero():
    minigrad.manual_seed(0)
    model = models.resnet20()
    conv = model.layer3[1].conv1.weight                     # (64, 64, 3, 3)
    assert float(conv.detach().numpy().std()) == pytest.approx(math.sqrt(2 / (64 * 9)), rel=0.03)
    assert (model.layer2[0].bn1.weight.detach().numpy() == 1).all() and not model.layer2[0].bn1.bias.detach().numpy().any()


def test_resnet_names_follow_common_cifar_code():
    names = list(models.resnet20().state_dict())
    for key in ("conv1.weight", "bn1.running_mean", "layer1.0.conv1.weight", "layer2.0.shortcut.0.weight",
                "layer3.2.bn2.num_batches_tracked", "fc.weight", "fc.bias"):
        assert key in names


def test_lenet5_rejects_a_cifar_image():
    with pytest.raises(ValueError, match=r"LeNet5.*\(N, 1, 28, 28\).*\(2, 3, 32, 32\)"):
        models.LeNet5()(minigrad.randn(2, 3, 32, 32))


def test_mlp_accepts_one_hidden_size_and_inserts_dropout():
    model = models.MLP(6, 5, 2, dropout=0.5)
    assert [type(m).__name__ for m in model.layers] == ["Flatten", "Linear", "ReLU", "Dropout", "Linear"]
    assert model(minigrad.randn(3, 6)).shape == (3, 2)


def test_models_take_num_classes():
    assert models.resnet20(num_classes=7).fc.out_features == 7
    assert models.LeNet5(num_classes=4).classifier[-1].out_features == 4


def test_wide_lenet5_with_batch_norm_has_the_expected_layers_and_parameter_count():
    model = models.LeNet5(channels=(32, 64), hidden=(256,), batch_norm=True, dropout=0.25)
    # conv 32*25 + bn 2*32 + conv 64*32*25 + bn 2*64 + fc 1600*256+256 + fc 256*10+10
    assert model.num_parameters() == 464_618
    assert model(minigrad.randn(2, 1, 28, 28)).shape == (2, 10)
