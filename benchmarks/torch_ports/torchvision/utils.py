"""make_grid on torch tensors, through minigrad.vision.utils.make_grid."""
import torch

import minigrad.vision.utils


def make_grid(tensor, **options):
    grid = minigrad.vision.utils.make_grid(tensor.detach().numpy(), **options)
    return torch.from_numpy(grid.numpy())
