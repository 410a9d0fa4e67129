"""minigrad's transforms; the datasets below turn their outputs into torch tensors."""
from minigrad.vision.transforms import *  # noqa: F401,F403
