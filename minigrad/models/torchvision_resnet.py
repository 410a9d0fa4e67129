"""ResNet-18/34 for ImageNet-sized images, with torchvision's exact layer names.

The point of this file is interchange: the parameter and buffer names below
are the ones torchvision gives `torchvision.models.resnet18`, so a PyTorch
`state_dict` (for example the ImageNet weights `resnet18-f37072fd.pth`) loads
straight into it::

    from minigrad.models import torchvision_resnet18
    from minigrad.utils.torch_import import load_torch_state_dict

    model = torchvision_resnet18()                                      # 1000 classes
    model.load_state_dict(load_torch_state_dict("resnet18-f37072fd.pth"))
    model.fc = nn.Linear(model.fc.in_features, 5)                       # a new head to fine-tune

The architecture (He et al. 2016, the "ImageNet" ResNet):

    conv1    7x7 conv, 64 channels, stride 2, padding 3     (N, 64, H/2, W/2)
    bn1, relu
    maxpool  3x3, stride 2, padding 1                        (N, 64, H/4, W/4)
    layer1   2 BasicBlocks,  64 channels                     (N, 64, H/4, W/4)
    layer2   2 BasicBlocks, 128 channels, first stride 2     (N, 128, H/8, W/8)
    layer3   2 BasicBlocks, 256 channels, first stride 2     (N, 256, H/16, W/16)
    layer4   2 BasicBlocks, 512 channels, first stride 2     (N, 512, H/32, W/32)
    avgpool  global average                                  (N, 512, 1, 1)
    fc       512 -> num_classes                              (N, num_classes)

Each block computes y = relu( bn2(conv2(relu(bn1(conv1(x))))) + shortcut(x) ).
The shortcut is the identity, or, where the block changes the width or the
resolution, `downsample` = Sequential(1x1 conv with the block's stride, BN),
whose two children are therefore named `downsample.0` and `downsample.1`.

How this differs from models/resnet.py's CIFAR `resnet18`: that one has a 3x3
stride-1 stem and no max pool (32x32 images would be 1x1 after layer4 here)
and calls the projection `shortcut`. Same blocks, different names and stem,
so the two state dicts are not interchangeable.

Initialisation as torchvision's: Kaiming-normal (fan_out, relu) convolutions,
BN gamma 1 and beta 0, fc keeps Linear's default.
"""
from minigrad import nn
from minigrad.models.resnet import init_resnet_weights, make_stage


class TorchvisionBasicBlock(nn.Module):
    expansion = 1

    def __init__(self, in_planes, planes, stride=1):
        super().__init__()
        self.conv1 = nn.Conv2d(in_planes, planes, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.relu = nn.ReLU()
        self.conv2 = nn.Conv2d(planes, planes, 3, stride=1, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        if stride != 1 or in_planes != planes:
            self.downsample = nn.Sequential(
                nn.Conv2d(in_planes, planes, 1, stride=stride, bias=False),   # downsample.0
                nn.BatchNorm2d(planes),                                       # downsample.1
            )
        else:
            self.downsample = None     # torchvision's name for "identity shortcut"
        self.stride = stride

    def forward(self, x):                                   # x (N, C_in, H, W)
        out = self.relu(self.bn1(self.conv1(x)))            # (N, C, H/s, W/s)
        out = self.bn2(self.conv2(out))                     # (N, C, H/s, W/s)
        shortcut = x if self.downsample is None else self.downsample(x)
        return self.relu(out + shortcut)


class TorchvisionResNet(nn.Module):
    """ImageNet stem -> layer1..layer4 of BasicBlocks -> global average pool -> fc."""

    def __init__(self, blocks_per_stage, num_classes=1000):
        super().__init__()
        if len(blocks_per_stage) != 4:
            raise ValueError(f"TorchvisionResNet: blocks_per_stage must list 4 stages, got {blocks_per_stage!r}")
        self.conv1 = nn.Conv2d(3, 64, 7, stride=2, padding=3, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.relu = nn.ReLU()
        self.maxpool = nn.MaxPool2d(3, stride=2, padding=1)
        in_planes = 64
        for index, (count, planes) in enumerate(zip(blocks_per_stage, (64, 128, 256, 512))):
            stage = make_stage(TorchvisionBasicBlock, in_planes, planes, count, stride=1 if index == 0 else 2)
            setattr(self, f"layer{index + 1}", stage)
            in_planes = planes
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.flatten = nn.Flatten()       # torch.flatten(x, 1) in torchvision; no state
        self.fc = nn.Linear(512, num_classes)
        init_resnet_weights(self)

    def forward(self, x):                                   # x (N, 3, H, W), e.g. 224x224
        if x.ndim != 4 or x.shape[1] != 3:
            raise ValueError(f"{type(self).__name__}: expected input of shape (N, 3, H, W), got {tuple(x.shape)}")
        out = self.relu(self.bn1(self.conv1(x)))            # (N, 64, H/2, W/2)
        out = self.maxpool(out)                             # (N, 64, H/4, W/4)
        out = self.layer1(out)                              # (N, 64, H/4, W/4)
        out = self.layer2(out)                              # (N, 128, H/8, W/8)
        out = self.layer3(out)                              # (N, 256, H/16, W/16)
        out = self.layer4(out)                              # (N, 512, H/32, W/32)
        out = self.flatten(self.avgpool(out))               # (N, 512)
        return self.fc(out)                                 # (N, num_classes)


def torchvision_resnet18(num_classes=1000):
    """ResNet-18 with torchvision's names: 11,689,512 parameters for 1000 classes."""
    return TorchvisionResNet([2, 2, 2, 2], num_classes)


def torchvision_resnet34(num_classes=1000):
    """ResNet-34 with torchvision's names: 21,797,672 parameters for 1000 classes."""
    return TorchvisionResNet([3, 4, 6, 3], num_classes)
