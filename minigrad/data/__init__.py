"""minigrad.data: datasets, the DataLoader and batch transforms.

Reading order: dataset.py (what a dataset is) -> transforms.py (augmentation,
a whole batch at a time) with resize.py (resizing as two matrix products) ->
sampler.py (which indices an epoch visits; DistributedSampler shards them across processes) ->
loader.py (batches as Tensors) -> mnist.py / cifar10.py (the real data sets)
with download.py and safe_pickle.py underneath them, and folder.py
(ImageFolder, a class per folder). minigrad.vision gives these torchvision's
paths.
"""
from minigrad.data.errors import (
    DatasetFormatError,
    DatasetNotFoundError,
    DownloadError,
    UnsafePickleError,
)
from minigrad.data.dataset import (
    ArrayDataset,
    Dataset,
    Subset,
    TensorDataset,
    fetch_batch,
    random_split,
    train_val_split,
)
from minigrad.data.transforms import (
    CenterCrop,
    Compose,
    InterpolationMode,
    Lambda,
    Normalize,
    RandomCrop,
    RandomHorizontalFlip,
    RandomResizedCrop,
    RandomVerticalFlip,
    Resize,
    ToFloat,
    ToTensor,
    Transform,
)
from minigrad.data.sampler import DistributedSampler, RandomSampler, Sampler, SequentialSampler
from minigrad.data.loader import DataLoader
from minigrad.data.download import data_root, default_data_dir, download_resource
from minigrad.data.safe_pickle import load_pickle
from minigrad.data.mnist import MNIST
from minigrad.data.cifar10 import CIFAR10
from minigrad.data.folder import ImageFolder

__all__ = [
    "ArrayDataset", "CIFAR10", "CenterCrop", "Compose", "DataLoader", "Dataset", "DatasetFormatError",
    "DatasetNotFoundError", "DistributedSampler", "DownloadError", "ImageFolder", "InterpolationMode", "Lambda",
    "MNIST", "Normalize", "RandomCrop", "RandomHorizontalFlip", "RandomResizedCrop", "RandomSampler",
    "RandomVerticalFlip", "Resize", "Sampler", "SequentialSampler", "Subset", "TensorDataset", "ToFloat", "ToTensor",
    "Transform", "UnsafePickleError", "data_root", "download_resource", "fetch_batch", "load_pickle", "random_split",
    "train_val_split",
]
