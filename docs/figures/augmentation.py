"""Chapter 7: what the training images look like after minigrad's augmentation.

    python docs/figures/augmentation.py --data-dir ../shared/data    # writes augmentation.png

Row 0 shows six CIFAR-10 training images as stored; rows 1-3 show three draws of
the augmentation that examples/cifar_resnet.py uses,
RandomCrop(32, padding=4) then RandomHorizontalFlip() (minigrad/data/transforms.py),
each draw from its own seeded generator. Without the data folder the script
uses synthetic 32x32 images (a shape on a gradient) so it still runs anywhere.
"""
import argparse

import numpy

from common import DEFAULT_DATA_DIR, plt, save

from minigrad.data import CIFAR10, Compose, DatasetNotFoundError, RandomCrop, RandomHorizontalFlip  # noqa: E402


def synthetic_images(count=6):
    """uint8 (N, 3, 32, 32): an off-centre square on a colour gradient, easy to see shifted and flipped."""
    rows, cols = numpy.mgrid[0:32, 0:32]
    images = numpy.zeros((count, 3, 32, 32), dtype=numpy.uint8)
    for n in range(count):
        images[n, 0] = 8 * cols
        images[n, 1] = 8 * rows
        images[n, 2] = 40 * n
        square = (rows >= 6 + n) & (rows < 16 + n) & (cols >= 4) & (cols < 14)
        images[n, :, square] = 255
    return images, ["synthetic"] * count


def cifar_images(data_dir, count=6):
    train = CIFAR10(data_dir, train=True)
    indices = [0, 1, 2, 3, 4, 7]                       # the first few training images, a mix of classes
    return train.data[indices[:count]], [train.classes[train.targets[i]] for i in indices[:count]]


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", default=str(DEFAULT_DATA_DIR))
    args = parser.parse_args()
    try:
        images, names = cifar_images(args.data_dir)
        source = "CIFAR-10 training images"
    except DatasetNotFoundError:
        images, names = synthetic_images()
        source = "synthetic images (no CIFAR-10 in --data-dir)"

    augment = Compose([RandomCrop(32, padding=4), RandomHorizontalFlip()])
    rows = [images] + [augment(images, rng=numpy.random.default_rng(seed)) for seed in range(3)]
    figure, grid = plt.subplots(len(rows), len(images), figsize=(1.3 * len(images), 1.4 * len(rows)))
    for r, batch in enumerate(rows):
        for c in range(len(images)):
            axes = grid[r, c]
            axes.imshow(batch[c].transpose(1, 2, 0), interpolation="nearest")   # (3, 32, 32) -> (32, 32, 3)
            axes.set_xticks([])
            axes.set_yticks([])
            if r == 0:
                axes.set_title(names[c], fontsize=8)
        grid[r, 0].set_ylabel("original" if r == 0 else f"draw {r}", fontsize=8)
    figure.suptitle(f"RandomCrop(32, padding=4) + RandomHorizontalFlip on {source}", fontsize=9)
    figure.tight_layout()
    save(figure, "augmentation.png")


if __name__ == "__main__":
    main()
