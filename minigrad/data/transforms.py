"""Transforms that work on a whole batch of images at once.

Shapes: N images, C channels, H x W pixels. A batch is (N, C, H, W) or, for
single-channel data without a channel axis, (N, H, W). Every transform takes
the batch and returns a new one; random ones draw from ``rng``, a
``numpy.random.Generator``::

    t = Compose([ToFloat(), RandomCrop(32, padding=4), RandomHorizontalFlip(),
                 Normalize(mean=(0.4914, 0.4822, 0.4465), std=(0.2470, 0.2435, 0.2616))])
    x = t(uint8_batch, rng=numpy.random.default_rng(0))     # (N, 3, 32, 32) float32

Passing the same rng state gives the same augmentation, which is how the
DataLoader makes training runs reproducible. The randomness is per image
(each image gets its own crop offset and flip) but the work is vectorised:
one draw of N offsets and one fancy-indexing gather, no loop over images.
"""
import numpy
from numpy.lib.stride_tricks import sliding_window_view


def _check_batch(x, who):
    """Raise a clear error unless x is a batch shaped (N, C, H, W) or (N, H, W)."""
    if not isinstance(x, numpy.ndarray):
        raise TypeError(f"{who} expects a NumPy array batch, got {type(x).__name__}")
    if x.ndim not in (3, 4):
        hint = " (one image? add a batch axis: x[None])" if x.ndim == 2 else ""
        raise ValueError(
            f"{who} expects a batch shaped (N, C, H, W) or (N, H, W), got shape {x.shape}{hint}"
        )


def _fallback_rng():
    """A Generator seeded from NumPy's global RNG, so minigrad.manual_seed still applies."""
    return numpy.random.default_rng(numpy.random.randint(0, 2**31 - 1, size=4))


class Transform:
    """Base class: __call__(x, rng=None) returns the transformed batch."""

    def __call__(self, x, rng=None):
        raise NotImplementedError

    def __repr__(self):
        args = ", ".join(f"{k}={v!r}" for k, v in vars(self).items())
        return f"{type(self).__name__}({args})"


class Compose(Transform):
    """Apply transforms in order, passing the same rng to each.

    Plain functions f(x) may be mixed in; they are called without the rng.
    """

    def __init__(self, transforms):
        self.transforms = list(transforms)

    def __call__(self, x, rng=None):
        for t in self.transforms:
            x = t(x, rng=rng) if isinstance(t, Transform) else t(x)
        return x

    def __repr__(self):
        inner = ",\n  ".join(repr(t) for t in self.transforms)
        return f"Compose([\n  {inner}\n])"


class ToFloat(Transform):
    """uint8 pixels 0..255 -> float32 in [0, 1]:  x / 255.  Float input is only cast to float32."""

    def __call__(self, x, rng=None):
        _check_batch(x, "ToFloat")
        if x.dtype == numpy.uint8:
            return x.astype(numpy.float32) * numpy.float32(1.0 / 255.0)
        if x.dtype.kind == "f":
            return x.astype(numpy.float32, copy=False)
        raise TypeError(f"ToFloat expects uint8 or float images, got dtype {x.dtype}")


class Normalize(Transform):
    """Per-channel standardisation:  out[:, c] = (x[:, c] - mean[c]) / std[c].

    mean and std have one value per channel (or a single value for all). Use
    statistics on the same scale as the input: after ToFloat, MNIST is
    mean 0.1307, std 0.3081. Integer input is converted to float32 first.
    """

    def __init__(self, mean, std):
        self.mean = numpy.atleast_1d(numpy.asarray(mean, dtype=numpy.float32))
        self.std = numpy.atleast_1d(numpy.asarray(std, dtype=numpy.float32))
        if self.mean.ndim != 1 or self.mean.shape != self.std.shape:
            raise ValueError(f"Normalize: mean {mean} and std {std} must be sequences of equal length")
        if numpy.any(self.std <= 0):
            raise ValueError(f"Normalize: std must be positive, got {std}")

    def __call__(self, x, rng=None):
        _check_batch(x, "Normalize")
        channels = x.shape[1] if x.ndim == 4 else 1
        if self.mean.size not in (1, channels):
            raise ValueError(
                f"Normalize has {self.mean.size} channel statistics but the batch {x.shape} "
                f"has {channels} channel(s)"
            )
        shape = (1, -1, 1, 1) if x.ndim == 4 else (1, 1, 1)        # broadcast over N, H, W
        mean, std = self.mean.reshape(shape), self.std.reshape(shape)
        return ((x.astype(numpy.float32, copy=False) - mean) / std).astype(numpy.float32, copy=False)


class RandomCrop(Transform):
    """Zero-pad each image by `padding` on every side, then cut a random size x size window.

    Vectorised: pad the batch once, then view every possible window with
    sliding_window_view (no copy; shape (N, C, OH, OW, size, size) with
    OH = H + 2*padding - size + 1) and pick window (oy[n], ox[n]) for image n
    with one fancy index.
    """

    def __init__(self, size, padding=0):
        self.size = (size, size) if isinstance(size, int) else tuple(size)
        self.padding = int(padding)
        if len(self.size) != 2 or min(self.size) < 1 or self.padding < 0:
            raise ValueError(f"RandomCrop: size {size} must be positive, padding {padding} >= 0")

    def __call__(self, x, rng=None):
        _check_batch(x, "RandomCrop")
        rng = rng if rng is not None else _fallback_rng()
        squeeze = x.ndim == 3
        if squeeze:
            x = x[:, None]                                            # (N, 1, H, W)
        n, _, h, w = x.shape
        p, (sh, sw) = self.padding, self.size
        if sh > h + 2 * p or sw > w + 2 * p:
            raise ValueError(
                f"RandomCrop: crop {self.size} is larger than the padded image "
                f"({h + 2 * p}, {w + 2 * p})"
            )
        padded = numpy.pad(x, ((0, 0), (0, 0), (p, p), (p, p)))       # (N, C, H+2p, W+2p)
        windows = sliding_window_view(padded, (sh, sw), axis=(2, 3))  # (N, C, OH, OW, sh, sw)
        oy = rng.integers(0, h + 2 * p - sh + 1, size=n)
        ox = rng.integers(0, w + 2 * p - sw + 1, size=n)
        out = windows[numpy.arange(n), :, oy, ox]                      # (N, C, sh, sw)
        out = numpy.ascontiguousarray(out)
        return out[:, 0] if squeeze else out


class RandomHorizontalFlip(Transform):
    """Mirror each image left-right with probability p (an independent coin per image)."""

    def __init__(self, p=0.5):
        if not 0.0 <= p <= 1.0:
            raise ValueError(f"RandomHorizontalFlip: p must be in [0, 1], got {p}")
        self.p = float(p)

    def __call__(self, x, rng=None):
        _check_batch(x, "RandomHorizontalFlip")
        rng = rng if rng is not None else _fallback_rng()
        flip = rng.random(x.shape[0]) < self.p                        # (N,) bool
        out = x.copy()
        out[flip] = x[flip][..., ::-1]                                 # reverse the W axis
        return out
