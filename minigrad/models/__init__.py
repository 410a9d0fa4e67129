"""Ready-made models: MLP, LeNet5, CIFAR ResNets (resnet20/32/56, resnet18) and AirbenchNet (the
CIFAR-10 speed-record network)."""
from minigrad.models.airbench import AirbenchNet, patch_whitening_weights  # noqa: F401
from minigrad.models.lenet import LeNet5  # noqa: F401
from minigrad.models.mlp import MLP  # noqa: F401
from minigrad.models.resnet import BasicBlock, CifarResNet, resnet18, resnet20, resnet32, resnet56  # noqa: F401
from minigrad.models.torchvision_resnet import (  # noqa: F401
    TorchvisionBasicBlock, TorchvisionResNet, torchvision_resnet18, torchvision_resnet34,
)
