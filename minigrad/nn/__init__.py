"""minigrad.nn: Modules (layers with parameters), containers, losses, init and functional.

    model = nn.Sequential(nn.Linear(784, 128), nn.ReLU(), nn.Linear(128, 10))
    loss = nn.CrossEntropyLoss()(model(x), y)

Reading order: parameter -> module -> containers -> layers (linear, conv, pooling,
normalization, activation, dropout, flatten) -> loss; init and functional alongside.
"""
from minigrad.nn import functional, init  # noqa: F401
from minigrad.nn.activation import GELU, LeakyReLU, LogSoftmax, ReLU, Sigmoid, Softmax, Tanh  # noqa: F401
from minigrad.nn.containers import ModuleList, Sequential  # noqa: F401
from minigrad.nn.conv import Conv2d  # noqa: F401
from minigrad.nn.dropout import Dropout  # noqa: F401
from minigrad.nn.flatten import Flatten  # noqa: F401
from minigrad.nn.linear import Identity, Linear  # noqa: F401
from minigrad.nn.loss import BCEWithLogitsLoss, CrossEntropyLoss, MSELoss, NLLLoss  # noqa: F401
from minigrad.nn.module import Module  # noqa: F401
from minigrad.nn.normalization import BatchNorm1d, BatchNorm2d  # noqa: F401
from minigrad.nn.parallel import DataParallel, DistributedDataParallel  # noqa: F401
from minigrad.nn.parameter import Parameter  # noqa: F401
from minigrad.nn.pooling import AdaptiveAvgPool2d, AvgPool2d, MaxPool2d  # noqa: F401
from minigrad.nn.sync_batchnorm import SyncBatchNorm  # noqa: F401
from minigrad.nn import utils  # noqa: F401
