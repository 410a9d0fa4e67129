"""ImageFolder: a data set laid out as one folder per class, as torchvision reads it.

    root/ants/001.jpg          class 0 ("ants": classes are the folder names, sorted)
    root/ants/002.png
    root/bees/abc.jpg          class 1

Images are read when asked for (ds[i]), not all at load time, because such
sets can be larger than memory and their images can differ in size; a
transform (Resize, RandomResizedCrop, CenterCrop) makes them one size before
they are stacked into a batch. Reading JPEG or PNG needs Pillow (the `vision`
extra: pip install "minigrad[vision]"); .npy files holding (C, H, W) or
(H, W) arrays need nothing. An image comes out as minigrad holds images: a
uint8 NumPy array (C, H, W), RGB.
"""
import os
from pathlib import Path

import numpy

from minigrad.data.dataset import Dataset, stack_examples
from minigrad.data.errors import DatasetFormatError, DatasetNotFoundError
from minigrad.data.transforms import Transform

IMG_EXTENSIONS = (".jpg", ".jpeg", ".png", ".ppm", ".bmp", ".pgm", ".tif", ".tiff", ".webp", ".npy")


def read_image(path):
    """An image file as a uint8 (or the file's own dtype, for .npy) array (C, H, W), RGB for pictures."""
    path = Path(path)
    if path.suffix.lower() == ".npy":
        array = numpy.load(path, allow_pickle=False)
        if array.ndim not in (2, 3):
            raise DatasetFormatError(f"{path}: an image array must be (C, H, W) or (H, W), got shape {array.shape}")
        return array if array.ndim == 3 else array[None]
    try:
        from PIL import Image
    except ImportError:
        raise ImportError(f"reading {path.name} needs Pillow: pip install pillow "
                          f"(or pip install 'minigrad[vision]'); .npy images need nothing") from None
    try:
        with Image.open(path) as image:
            rgb = numpy.asarray(image.convert("RGB"))                     # (H, W, 3) uint8
    except OSError as error:
        raise DatasetFormatError(f"{path}: not a readable image ({error})") from None
    return numpy.ascontiguousarray(rgb.transpose(2, 0, 1))               # (3, H, W)


class ImageFolder(Dataset):
    """Images in root/<class name>/<file>: ds[i] is (image, class index), as in torchvision.

    classes: the folder names, sorted; class_to_idx maps them to 0, 1, ...;
    samples (also imgs): (path, class index) pairs; targets: the indices.
    transform / target_transform apply to each image / label as it is read;
    loader (a function of a path) replaces read_image; is_valid_file (a
    function of a path) or extensions choose which files count.
    """

    def __init__(self, root, transform=None, target_transform=None, loader=None, is_valid_file=None,
                 extensions=None, allow_empty=False):
        self.root = Path(root).expanduser()
        if not self.root.is_dir():
            raise DatasetNotFoundError(f"ImageFolder: {self.root} is not a folder (expected one sub-folder "
                                       f"per class, holding that class's images)")
        if is_valid_file is not None and extensions is not None:
            raise ValueError("ImageFolder: pass extensions or is_valid_file, not both")
        extensions = tuple(e.lower() for e in (extensions or IMG_EXTENSIONS))
        valid = is_valid_file or (lambda path: str(path).lower().endswith(extensions))
        self.classes = sorted(entry.name for entry in os.scandir(self.root) if entry.is_dir())
        if not self.classes:
            raise DatasetNotFoundError(f"ImageFolder: {self.root} has no sub-folders; put each class's images "
                                       f"in a folder named after the class")
        self.class_to_idx = {name: i for i, name in enumerate(self.classes)}
        self.samples = []
        for name in self.classes:
            for folder, _, files in sorted(os.walk(self.root / name, followlinks=True)):
                for file in sorted(files):
                    path = os.path.join(folder, file)
                    if valid(path):
                        self.samples.append((path, self.class_to_idx[name]))
        if not self.samples and not allow_empty:
            raise DatasetNotFoundError(f"ImageFolder: no image files ({', '.join(extensions)}) under the class "
                                       f"folders of {self.root}")
        self.imgs = self.samples
        self.targets = [target for _, target in self.samples]
        self.loader = loader or read_image
        self.transform, self.target_transform = transform, target_transform

    def __len__(self):
        return len(self.samples)

    def __getitem__(self, index):
        return self._example(index, rng=None)

    def _example(self, index, rng):
        path, target = self.samples[index]
        image = self.loader(path)
        if isinstance(self.transform, Transform):
            image = self.transform(image, rng=rng)
        elif self.transform is not None:
            image = self.transform(image)
        if self.target_transform is not None:
            target = self.target_transform(target)
        return image, target

    def get_batch(self, indices, rng=None):
        """Read and transform each image (sizes may differ until the transform), then stack.

        A minigrad transform draws from `rng` (the DataLoader's, per batch), image after image.
        """
        examples = [self._example(int(i), rng) for i in indices]
        shapes = {tuple(numpy.shape(image)) for image, _ in examples}
        if len(shapes) > 1:
            raise ValueError(f"ImageFolder: images of different shapes {sorted(shapes)} cannot share a batch; "
                             f"give the data set a transform that makes them one size (Resize, CenterCrop, "
                             f"RandomResizedCrop)")
        return stack_examples(examples)

    def __repr__(self):
        return f"ImageFolder(root={str(self.root)!r}, n={len(self)}, classes={len(self.classes)})"
