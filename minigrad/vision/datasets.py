"""`torchvision.datasets` at minigrad's path: MNIST, CIFAR10 and ImageFolder (minigrad/data/)."""
from minigrad.data.cifar10 import CIFAR10
from minigrad.data.folder import IMG_EXTENSIONS, ImageFolder, read_image
from minigrad.data.mnist import MNIST

__all__ = ["CIFAR10", "IMG_EXTENSIONS", "ImageFolder", "MNIST", "read_image"]
