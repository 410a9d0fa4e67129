"""make_grid and save_image: torchvision.utils' way to look at a batch of images."""
import math

import numpy

from minigrad import backend
from minigrad.tensor import Tensor


def _images(batch):
    """(N, C, H, W) float array from a Tensor, an array, a list of (C, H, W) images or one image."""
    if isinstance(batch, (list, tuple)):
        if not batch:
            raise ValueError("make_grid: the list of images is empty")
        batch = numpy.stack([_images(image)[0] for image in batch])
    elif isinstance(batch, Tensor):
        batch = backend.to_numpy(batch.array)
    x = numpy.asarray(batch)
    if x.ndim == 2:                                    # (H, W) -> (1, 1, H, W)
        x = x[None, None]
    elif x.ndim == 3:                                  # one image (C, H, W)
        x = x[None]
    if x.ndim != 4:
        raise ValueError(f"make_grid expects images (N, C, H, W), (C, H, W) or (H, W), got shape {x.shape}")
    if x.shape[1] == 1:                                # grey -> three equal channels, as torchvision
        x = numpy.repeat(x, 3, axis=1)
    return x.astype(numpy.float32, copy=False)


def _rescale(x, value_range):
    low, high = value_range if value_range is not None else (float(x.min()), float(x.max()))
    return (numpy.clip(x, low, high) - low) / max(high - low, 1e-5)


def make_grid(tensor, nrow=8, padding=2, normalize=False, value_range=None, scale_each=False, pad_value=0.0):
    """Tile images (N, C, H, W) into one image (C, rows * (H + padding) + padding, ...), `nrow` per row.

    normalize=True maps value_range (default: the batch's min and max, or each image's with
    scale_each=True) to [0, 1]. Returns a Tensor (C, H', W'), ready for
    plt.imshow(grid.numpy().transpose(1, 2, 0)).
    """
    x = _images(tensor)
    if normalize:
        x = numpy.stack([_rescale(image, value_range) for image in x]) if scale_each else _rescale(x, value_range)
    n, c, h, w = x.shape
    if n == 1:
        return Tensor(x[0])
    columns = min(nrow, n)
    rows = math.ceil(n / columns)
    cell_h, cell_w = h + padding, w + padding
    grid = numpy.full((c, rows * cell_h + padding, columns * cell_w + padding), pad_value, dtype=numpy.float32)
    for k in range(n):
        top, left = (k // columns) * cell_h + padding, (k % columns) * cell_w + padding
        grid[:, top:top + h, left:left + w] = x[k]
    return Tensor(grid)


def save_image(tensor, fp, **grid_options):
    """make_grid(tensor, **grid_options) written as a PNG (values in [0, 1]); needs Pillow."""
    try:
        from PIL import Image
    except ImportError:
        raise ImportError("save_image needs Pillow: pip install pillow (or 'minigrad[vision]')") from None
    grid = make_grid(tensor, **grid_options).numpy()                       # (C, H, W) in [0, 1]
    pixels = numpy.clip(grid * 255 + 0.5, 0, 255).astype(numpy.uint8).transpose(1, 2, 0)
    Image.fromarray(pixels).save(fp, format=None if isinstance(fp, (str, bytes)) or hasattr(fp, "__fspath__")
                                 else "PNG")


__all__ = ["make_grid", "save_image"]
