"""nn.DataParallel: PyTorch's single-process multi-GPU wrapper, as the one-device pass-through it is here.

PyTorch's DataParallel splits each batch across the GPUs of one process. minigrad runs one device
per process, so the wrapper only keeps PyTorch's interface: forward goes to `module`, and the
state_dict keys carry PyTorch's "module." prefix, so checkpoints of wrapped and unwrapped models
look as they do in PyTorch.
"""
from minigrad.nn.module import Module


class DataParallel(Module):
    """Wrap `module`; device_ids, output_device and dim are accepted and unused (one device)."""

    def __init__(self, module, device_ids=None, output_device=None, dim=0):
        super().__init__()
        if not isinstance(module, Module):
            raise TypeError(f"DataParallel wraps an nn.Module, got {type(module).__name__}")
        self.module = module
        self.device_ids, self.output_device, self.dim = device_ids, output_device, dim

    def forward(self, *inputs, **kwargs):
        return self.module(*inputs, **kwargs)
