"""`torch.utils.data.distributed` at PyTorch's path: `from minigrad.utils.data.distributed import
DistributedSampler`. The class lives in minigrad/data/sampler.py."""
from minigrad.data.sampler import DistributedSampler

__all__ = ["DistributedSampler"]
