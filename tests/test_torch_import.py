"""Importing PyTorch weights: load_torch_state_dict and torchvision_resnet18.

The round trip: a randomly initialised PyTorch ResNet-18 with torchvision's
names (written out below, since torchvision itself does not import beside this
torch) saves its state_dict as .pt and as .npz; torchvision_resnet18 loads it
and must give the same eval-mode outputs (and input gradients) in float64.
The key-set test needs no torch: it lists torchvision's names and shapes.
"""
import sys

import numpy
import pytest

import minigrad
from minigrad import nn
from minigrad.models import torchvision_resnet18
from minigrad.utils.torch_import import load_torch_state_dict
from torch_compare import compare_with_torch

# torchvision.models.resnet18().state_dict(): every parameter with its shape, in order.
STEM = [("conv1.weight", (64, 3, 7, 7)), ("bn1.weight", (64,)), ("bn1.bias", (64,))]
EXPECTED_PARAMETERS = STEM + [
    ("layer1.0.conv1.weight", (64, 64, 3, 3)), ("layer1.0.bn1.weight", (64,)), ("layer1.0.bn1.bias", (64,)),
    ("layer1.0.conv2.weight", (64, 64, 3, 3)), ("layer1.0.bn2.weight", (64,)), ("layer1.0.bn2.bias", (64,)),
    ("layer1.1.conv1.weight", (64, 64, 3, 3)), ("layer1.1.bn1.weight", (64,)), ("layer1.1.bn1.bias", (64,)),
    ("layer1.1.conv2.weight", (64, 64, 3, 3)), ("layer1.1.bn2.weight", (64,)), ("layer1.1.bn2.bias", (64,)),
    ("layer2.0.conv1.weight", (128, 64, 3, 3)), ("layer2.0.bn1.weight", (128,)), ("layer2.0.bn1.bias", (128,)),
    ("layer2.0.conv2.weight", (128, 128, 3, 3)), ("layer2.0.bn2.weight", (128,)), ("layer2.0.bn2.bias", (128,)),
    ("layer2.0.downsample.0.weight", (128, 64, 1, 1)),
    ("layer2.0.downsample.1.weight", (128,)), ("layer2.0.downsample.1.bias", (128,)),
    ("layer2.1.conv1.weight", (128, 128, 3, 3)), ("layer2.1.bn1.weight", (128,)), ("layer2.1.bn1.bias", (128,)),
    ("layer2.1.conv2.weight", (128, 128, 3, 3)), ("layer2.1.bn2.weight", (128,)), ("layer2.1.bn2.bias", (128,)),
    ("layer3.0.conv1.weight", (256, 128, 3, 3)), ("layer3.0.bn1.weight", (256,)), ("layer3.0.bn1.bias", (256,)),
    ("layer3.0.conv2.weight", (256, 256, 3, 3)), ("layer3.0.bn2.weight", (256,)), ("layer3.0.bn2.bias", (256,)),
    ("layer3.0.downsample.0.weight", (256, 128, 1, 1)),
    ("layer3.0.downsample.1.weight", (256,)), ("layer3.0.downsample.1.bias", (256,)),
    ("layer3.1.conv1.weight", (256, 256, 3, 3)), ("layer3.1.bn1.weight", (256,)), ("layer3.1.bn1.bias", (256,)),
    ("layer3.1.conv2.weight", (256, 256, 3, 3)), ("layer3.1.bn2.weight", (256,)), ("layer3.1.bn2.bias", (256,)),
    ("layer4.0.conv1.weight", (512, 256, 3, 3)), ("layer4.0.bn1.weight", (512,)), ("layer4.0.bn1.bias", (512,)),
    ("layer4.0.conv2.weight", (512, 512, 3, 3)), ("layer4.0.bn2.weight", (512,)), ("layer4.0.bn2.bias", (512,)),
    ("layer4.0.downsample.0.weight", (512, 256, 1, 1)),
    ("layer4.0.downsample.1.weight", (512,)), ("layer4.0.downsample.1.bias", (512,)),
    ("layer4.1.conv1.weight", (512, 512, 3, 3)), ("layer4.1.bn1.weight", (512,)), ("layer4.1.bn1.bias", (512,)),
    ("layer4.1.conv2.weight", (512, 512, 3, 3)), ("layer4.1.bn2.weight", (512,)), ("layer4.1.bn2.bias", (512,)),
    ("fc.weight", (1000, 512)), ("fc.bias", (1000,)),
]
# Every BatchNorm (bn1, bnK of a block, downsample.1) also saves three buffers.
BN_BUFFERS = ("running_mean", "running_var", "num_batches_tracked")


def expected_state_dict_shapes():
    shapes = {}
    for name, shape in EXPECTED_PARAMETERS:
        shapes[name] = shape
        module, leaf = name.rsplit(".", 1)
        if leaf == "bias" and module != "fc":       # every bias but fc's belongs to a BatchNorm
            for buffer in BN_BUFFERS:
                shapes[f"{module}.{buffer}"] = () if buffer == "num_batches_tracked" else shape
    return shapes


# ---------------------------------------------------------------------------------------- no torch needed
def test_state_dict_keys_and_shapes_match_torchvision_resnet18():
    ours = {name: value.shape for name, value in torchvision_resnet18().state_dict().items()}
    expected = expected_state_dict_shapes()
    assert len(expected) == 122
    assert sorted(set(ours) - set(expected)) == [], "names torchvision does not have"
    assert sorted(set(expected) - set(ours)) == [], "torchvision names we lack"
    wrong = {name: (ours[name], shape) for name, shape in expected.items() if ours[name] != shape}
    assert wrong == {}, f"(ours, torchvision) shapes differ: {wrong}"


def test_parameter_order_matches_torchvision_resnet18():
    names = [name for name, _ in torchvision_resnet18().named_parameters()]
    assert names == [name for name, _ in EXPECTED_PARAMETERS]


def test_parameter_count_matches_torchvision_resnet18():
    assert torchvision_resnet18().num_parameters() == 11_689_512


def test_num_classes_sets_the_fc_shape():
    model = torchvision_resnet18(num_classes=7)
    assert model.fc.weight.shape == (7, 512) and model.fc.bias.shape == (7,)


def test_forward_gives_one_row_of_logits_per_image():
    model = torchvision_resnet18(num_classes=5).eval()
    x = minigrad.tensor(numpy.random.default_rng(0).standard_normal((2, 3, 32, 32)).astype(numpy.float32))
    assert model(x).shape == (2, 5)


def test_forward_rejects_a_grey_image_naming_the_shape():
    model = torchvision_resnet18()
    with pytest.raises(ValueError, match=r"TorchvisionResNet.*\(N, 3, H, W\).*\(2, 1, 32, 32\)"):
        model(minigrad.tensor(numpy.zeros((2, 1, 32, 32), dtype=numpy.float32)))


def test_npz_file_loads_into_the_model(tmp_path):
    source = torchvision_resnet18(num_classes=3)
    path = source.save(tmp_path / "weights.npz")
    target = torchvision_resnet18(num_classes=3)
    target.load_state_dict(load_torch_state_dict(path))
    loaded = target.state_dict()
    for name, value in source.state_dict().items():
        numpy.testing.assert_array_equal(loaded[name], value, err_msg=name)


def test_checkpoint_wrapper_and_data_parallel_prefix_are_removed():
    weights = {"module.fc.weight": numpy.ones((2, 3)), "module.fc.bias": numpy.zeros(2)}
    state = load_torch_state_dict({"epoch": 3, "state_dict": weights})
    assert list(state) == ["fc.weight", "fc.bias"]


def test_minigrad_tensors_in_a_dict_become_arrays():
    state = load_torch_state_dict({"w": minigrad.tensor([1.0, 2.0])})
    assert isinstance(state["w"], numpy.ndarray) and state["w"].tolist() == [1.0, 2.0]


def test_missing_file_names_the_path(tmp_path):
    with pytest.raises(FileNotFoundError, match="nothing.pth"):
        load_torch_state_dict(tmp_path / "nothing.pth")


def test_pt_file_without_torch_explains_the_npz_conversion(tmp_path, monkeypatch):
    path = tmp_path / "resnet18.pth"
    path.write_bytes(b"not read")
    monkeypatch.setitem(sys.modules, "torch", None)       # `import torch` now raises ImportError
    with pytest.raises(ImportError) as info:
        load_torch_state_dict(path)
    message = str(info.value)
    assert "pip install torch" in message
    assert 'torch.load("' in message and "weights_only=True" in message
    assert "numpy.savez(" in message and str(tmp_path / "resnet18.npz") in message


def test_value_that_is_not_an_array_is_rejected_by_name():
    with pytest.raises(TypeError, match="'fc.weight'.*object"):
        load_torch_state_dict({"fc.weight": object()})


# ---------------------------------------------------------------------------------------- torch round trip
def torch_resnet18(torch):
    """A ResNet-18 in plain PyTorch with torchvision's module names (no torchvision needed)."""
    tnn = torch.nn

    class Block(tnn.Module):
        def __init__(self, in_planes, planes, stride):
            super().__init__()
            self.conv1 = tnn.Conv2d(in_planes, planes, 3, stride, 1, bias=False)
            self.bn1 = tnn.BatchNorm2d(planes)
            self.relu = tnn.ReLU()
            self.conv2 = tnn.Conv2d(planes, planes, 3, 1, 1, bias=False)
            self.bn2 = tnn.BatchNorm2d(planes)
            self.downsample = None
            if stride != 1 or in_planes != planes:
                self.downsample = tnn.Sequential(tnn.Conv2d(in_planes, planes, 1, stride, bias=False),
                                                 tnn.BatchNorm2d(planes))

        def forward(self, x):
            out = self.bn2(self.conv2(self.relu(self.bn1(self.conv1(x)))))
            return self.relu(out + (x if self.downsample is None else self.downsample(x)))

    class ResNet18(tnn.Module):
        def __init__(self):
            super().__init__()
            self.conv1 = tnn.Conv2d(3, 64, 7, 2, 3, bias=False)
            self.bn1 = tnn.BatchNorm2d(64)
            self.relu = tnn.ReLU()
            self.maxpool = tnn.MaxPool2d(3, 2, 1)
            widths = [64, 64, 128, 256, 512]
            for k in range(1, 5):
                stride = 1 if k == 1 else 2
                setattr(self, f"layer{k}", tnn.Sequential(Block(widths[k - 1], widths[k], stride),
                                                          Block(widths[k], widths[k], 1)))
            self.avgpool = tnn.AdaptiveAvgPool2d(1)
            self.fc = tnn.Linear(512, 1000)

        def forward(self, x):
            x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
            x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
            return self.fc(torch.flatten(self.avgpool(x), 1))

    return ResNet18()


@pytest.fixture(scope="module")
def torch_model():
    torch = pytest.importorskip("torch")
    torch.manual_seed(0)
    model = torch_resnet18(torch).double()
    with torch.no_grad():      # BN statistics and affine away from (0, 1) so eval mode really uses them
        for module in model.modules():
            if isinstance(module, torch.nn.BatchNorm2d):
                module.weight.uniform_(0.5, 1.5)
                module.bias.uniform_(-0.2, 0.2)
                module.running_mean.uniform_(-0.2, 0.2)
                module.running_var.uniform_(0.5, 1.5)
                module.num_batches_tracked.fill_(7)
    return model.eval()


def imported(state):
    model = torchvision_resnet18().double()
    model.load_state_dict(load_torch_state_dict(state))
    return model.eval()


def assert_same_eval_outputs(ours, theirs, with_input_gradient=False):
    """Same logits for a (2, 3, 64, 64) float64 input (and the same d(sum w*logits)/dx if asked)."""
    x = numpy.random.default_rng(1).standard_normal((2, 3, 64, 64))
    compare_with_torch(lambda mg, t: ours(t), [x], torch_fn=lambda torch, t: theirs(t),
                       grad_inputs=[with_input_gradient])


def test_pt_file_round_trip_gives_torch_eval_outputs(torch_model, tmp_path):
    import torch

    path = tmp_path / "resnet18.pt"
    torch.save(torch_model.state_dict(), path)
    assert_same_eval_outputs(imported(path), torch_model, with_input_gradient=True)


def test_npz_converted_from_torch_gives_torch_eval_outputs(torch_model, tmp_path):
    path = tmp_path / "resnet18.npz"
    numpy.savez(path, **{name: t.detach().numpy() for name, t in torch_model.state_dict().items()})
    assert_same_eval_outputs(imported(path), torch_model)


def test_torch_state_dict_object_loads_without_a_file(torch_model):
    assert_same_eval_outputs(imported(torch_model.state_dict()), torch_model)


def test_buffers_come_across_including_num_batches_tracked(torch_model):
    ours = imported(torch_model.state_dict())
    numpy.testing.assert_array_equal(ours.layer2[0].downsample[1].running_var.detach().numpy(),
                                     torch_model.layer2[0].downsample[1].running_var.detach().numpy())
    assert int(ours.bn1.num_batches_tracked.detach().numpy()) == 7


def test_float32_torch_weights_load_into_a_float32_model(torch_model, tmp_path):
    import torch

    path = tmp_path / "resnet18_f32.pth"
    torch.save({name: t.float() for name, t in torch_model.state_dict().items()}, path)
    model = torchvision_resnet18()
    model.load_state_dict(load_torch_state_dict(path))
    numpy.testing.assert_allclose(model.fc.weight.detach().numpy(), torch_model.fc.weight.detach().float().detach().numpy(), rtol=0)


def test_imported_backbone_fine_tunes_with_a_new_head(torch_model):
    model = imported(torch_model.state_dict())
    model.fc = nn.Linear(model.fc.in_features, 5).double()
    model.train()
    x = minigrad.tensor(numpy.random.default_rng(2).standard_normal((2, 3, 32, 32)))
    loss = nn.functional.cross_entropy(model(x), minigrad.tensor(numpy.array([0, 4])))
    loss.backward()
    assert model.fc.weight.grad.shape == (5, 512)
    assert float(numpy.abs(model.conv1.weight.grad.numpy()).sum()) > 0


def test_pt_file_holding_a_pickled_module_is_refused(tmp_path):
    torch = pytest.importorskip("torch")
    path = tmp_path / "whole_model.pt"
    torch.save(torch.nn.Linear(2, 2), path)      # a module, not a state_dict: needs code to unpickle
    with pytest.raises(ValueError, match="weights_only=True"):
        load_torch_state_dict(path)
