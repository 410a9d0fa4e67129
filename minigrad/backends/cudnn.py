"""`torch.backends.cudnn`: the switches scripts set, kept and unused (minigrad does not call cuDNN)."""

benchmark = False
deterministic = False
enabled = True


def is_available():
    """False: minigrad's GPU convolutions are its own kernels and cuBLAS, never cuDNN."""
    return False


def version():
    return None
