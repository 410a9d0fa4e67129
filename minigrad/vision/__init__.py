"""A torchvision-shaped package, so that `import minigrad.vision as torchvision` serves a PyTorch script.

    minigrad.vision.datasets     MNIST, CIFAR10, ImageFolder           (minigrad/data/)
    minigrad.vision.transforms   ToTensor, Normalize, RandomCrop, Resize, ... (minigrad/data/transforms.py)
    minigrad.vision.models       resnet18, resnet34 (ImageNet layout)  (minigrad/models/)
    minigrad.vision.utils        make_grid, save_image                 (here)

Everything but make_grid lives elsewhere in minigrad; these modules only give it torchvision's paths.
"""
from minigrad.vision import datasets, models, transforms, utils

__all__ = ["datasets", "models", "transforms", "utils"]
