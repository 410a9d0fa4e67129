"""`torch.backends` switches that PyTorch scripts set, accepted so that the scripts run unchanged.

    minigrad.backends.cudnn.benchmark = True       # accepted; minigrad does not use cuDNN
    import minigrad.backends.cudnn as cudnn         # the import form works too

minigrad's GPU path is CuPy's cuBLAS and its own CUDA kernels (minigrad/fast/gpu.py), not cuDNN,
so these settings are kept but change nothing.
"""
from minigrad.backends import cudnn

__all__ = ["cudnn"]
