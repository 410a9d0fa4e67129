"""`torch.utils.data` at PyTorch's path: `from minigrad.utils.data import DataLoader, Dataset, Subset`.

The classes live in minigrad/data/ (loader.py, dataset.py); this module only gives them the
path a PyTorch script imports them from.
"""
from minigrad.data import DataLoader, Dataset, Subset, TensorDataset, random_split

__all__ = ["DataLoader", "Dataset", "Subset", "TensorDataset", "random_split"]
