"""MNIST and CIFAR10 read by minigrad.vision, giving (torch image, int label) pairs."""
import numpy
import torch

import minigrad.vision


def _torch(value):
    if hasattr(value, "detach"):                                  # a minigrad Tensor from ToTensor
        value = value.detach().numpy()
    return torch.from_numpy(numpy.ascontiguousarray(value)) if isinstance(value, numpy.ndarray) else value


class _Wrapped(torch.utils.data.Dataset):
    source = None

    def __init__(self, *args, **kwargs):
        self.inner = self.source(*args, **kwargs)
        self.classes = self.inner.classes

    def __len__(self):
        return len(self.inner)

    def __getitem__(self, index):
        image, target = self.inner[index]
        return _torch(image), target


class MNIST(_Wrapped):
    source = minigrad.vision.datasets.MNIST


class CIFAR10(_Wrapped):
    source = minigrad.vision.datasets.CIFAR10
