"""`torch.utils.data` at PyTorch's path: `from minigrad.utils.data import DataLoader, Dataset, Subset`.

The classes live in minigrad/data/ (loader.py, dataset.py, sampler.py); this package only gives them
the paths a PyTorch script imports them from, `torch.utils.data.distributed.DistributedSampler`
included (distributed.py).
"""
from minigrad.data import (
    DataLoader, Dataset, RandomSampler, Sampler, SequentialSampler, Subset, TensorDataset, random_split,
)
from minigrad.utils.data import distributed
from minigrad.utils.data.distributed import DistributedSampler

__all__ = ["DataLoader", "Dataset", "DistributedSampler", "RandomSampler", "Sampler", "SequentialSampler",
           "Subset", "TensorDataset", "distributed", "random_split"]
