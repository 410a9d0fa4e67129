"""minigrad.data: datasets, the DataLoader and batch transforms.

Reading order: dataset.py (what a dataset is) -> transforms.py (batch
augmentation) -> loader.py (batches as Tensors) -> mnist.py / cifar10.py (the
real data sets) with download.py and safe_pickle.py underneath them.
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
    Compose,
    Normalize,
    RandomCrop,
    RandomHorizontalFlip,
    ToFloat,
    Transform,
)
from minigrad.data.loader import DataLoader
from minigrad.data.download import data_root, default_data_dir, download_resource
from minigrad.data.safe_pickle import load_pickle
from minigrad.data.mnist import MNIST
from minigrad.data.cifar10 import CIFAR10

__all__ = [
    "ArrayDataset", "CIFAR10", "Compose", "DataLoader", "Dataset", "DatasetFormatError",
    "DatasetNotFoundError", "DownloadError", "MNIST", "Normalize", "RandomCrop",
    "RandomHorizontalFlip", "Subset", "TensorDataset", "ToFloat", "Transform",
    "UnsafePickleError", "data_root", "download_resource", "fetch_batch", "load_pickle",
    "random_split", "train_val_split",
]
