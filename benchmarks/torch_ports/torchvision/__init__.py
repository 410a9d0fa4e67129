"""A stand-in `torchvision` for running the ports on PyTorch where torchvision is not installed.

benchmarks/ports.py runs each script of examples/pytorch_ports twice, on minigrad and on PyTorch.
torchvision has no build here that matches the installed torch, so on the PyTorch run this
package answers `import torchvision`: its datasets read the files with minigrad.vision and
hand torch tensors to torch.utils.data.DataLoader. The data pipeline is then the same on both
runs, and the network, loss, optimizer and loop are the engine under test.
"""
from torchvision import datasets, transforms, utils  # noqa: F401
