"""Residual networks for CIFAR-10 (32x32 images), after He et al. 2016.

A residual block learns a correction F(x) to its input instead of a whole new map:

    y = relu( F(x) + shortcut(x) ),   F = conv3x3 -> BN -> relu -> conv3x3 -> BN

The shortcut is the identity when shapes agree; when a block halves the image
or changes the width, it is a 1x1 convolution with that stride followed by BN
(a "projection", option B of the paper). Because the identity path passes the
gradient straight through (dy flows into both branches and dx = dF + dy), very
deep stacks still train.

    resnet20/32/56   the paper's CIFAR nets: 3x3 stem with 16 channels, then 3
                     stages of n = 3/5/9 blocks with 16, 32, 64 channels (stride
                     2 at the start of stages 2 and 3), global average pool, fc.
                     Depth = 6n + 2. resnet20 has 272,474 parameters.
    resnet18         the ImageNet widths (64-128-256-512, [2, 2, 2, 2] blocks) with a
                     CIFAR stem (3x3 conv, no max pool): 11,173,962 parameters.

Convolutions before BN have no bias (BN's beta does that job). A BN followed by a ReLU runs
as one fused op, `bn(x, relu=True)` (minigrad/ops/norm.py), and so does the block's last
relu(out + shortcut(x)), `add_relu` (minigrad/ops/activation.py): the same numbers as the
separate ops, with fewer passes over the activations and fewer of them kept for backward. Initialisation
as in common CIFAR code: Kaiming-normal (fan_out, relu) convs, BN gamma 1 and
beta 0, the fc layer keeps Linear's default.
"""
from minigrad import nn
from minigrad.ops.activation import add_relu


class BasicBlock(nn.Module):
    expansion = 1

    def __init__(self, in_planes, planes, stride=1):
        super().__init__()
        self.conv1 = nn.Conv2d(in_planes, planes, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, stride=1, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        if stride != 1 or in_planes != planes:
            self.shortcut = nn.Sequential(
                nn.Conv2d(in_planes, planes, 1, stride=stride, bias=False),
                nn.BatchNorm2d(planes),
            )
        else:
            self.shortcut = nn.Identity()

    def forward(self, x):                              # x (N, C_in, H, W)
        out = self.bn1(self.conv1(x), relu=True)       # (N, C, H/s, W/s)  relu(bn1(.)), one fused op
        out = self.bn2(self.conv2(out))                # (N, C, H/s, W/s)
        return add_relu(out, self.shortcut(x))         # relu(out + shortcut(x)), one fused op


def make_stage(block, in_planes, planes, count, stride):
    """`count` blocks in a Sequential; the first has `stride` (it may halve H and W), the rest 1."""
    return nn.Sequential(*[block(in_planes if b == 0 else planes, planes, stride if b == 0 else 1)
                           for b in range(count)])


def init_resnet_weights(model):
    """Kaiming-normal (fan_out, relu) for every conv; gamma 1 and beta 0 for every batch norm."""
    for module in model.modules():
        if isinstance(module, nn.Conv2d):
            nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")
        elif isinstance(module, nn.BatchNorm2d):
            nn.init.ones_(module.weight)
            nn.init.zeros_(module.bias)


class CifarResNet(nn.Module):
    """Stem conv -> len(widths) stages of BasicBlocks -> global average pool -> fc."""

    def __init__(self, blocks_per_stage, widths, num_classes=10):
        super().__init__()
        self.conv1 = nn.Conv2d(3, widths[0], 3, stride=1, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(widths[0])
        in_planes = widths[0]
        for index, (count, width) in enumerate(zip(blocks_per_stage, widths)):
            stage = make_stage(BasicBlock, in_planes, width, count, stride=1 if index == 0 else 2)
            setattr(self, f"layer{index + 1}", stage)
            in_planes = width
        self.num_stages = len(widths)
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.flatten = nn.Flatten()
        self.fc = nn.Linear(in_planes, num_classes)
        init_resnet_weights(self)

    def forward(self, x):                              # x (N, 3, 32, 32)
        if x.ndim != 4 or x.shape[1] != 3:
            raise ValueError(f"{type(self).__name__}: expected input of shape (N, 3, H, W), got {tuple(x.shape)}")
        out = self.bn1(self.conv1(x), relu=True)       # (N, widths[0], 32, 32)  relu(bn1(.)), fused
        for index in range(self.num_stages):
            out = getattr(self, f"layer{index + 1}")(out)
        out = self.flatten(self.avgpool(out))          # (N, widths[-1])
        return self.fc(out)                            # (N, num_classes)


def _cifar_resnet(n, num_classes):
    return CifarResNet([n, n, n], [16, 32, 64], num_classes)


def resnet20(num_classes=10):
    return _cifar_resnet(3, num_classes)


def resnet32(num_classes=10):
    return _cifar_resnet(5, num_classes)


def resnet56(num_classes=10):
    return _cifar_resnet(9, num_classes)


def resnet18(num_classes=10):
    return CifarResNet([2, 2, 2, 2], [64, 128, 256, 512], num_classes)
