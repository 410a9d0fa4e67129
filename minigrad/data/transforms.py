"""Image transforms, written once for a whole batch and usable on one image.

Shapes: N images, C channels, H x W pixels, channels first. Every transform
has one method that does the work, ``batch(x, rng)``, on a NumPy batch
(N, C, H, W) (or (N, H, W) for images without a channel axis). Calling the
transform works as in torchvision:

    t(image)        one image (C, H, W) or (H, W)  -> one image   (a batch of one, underneath)
    t(batch)        a batch (N, C, H, W)           -> a batch
    t(tensor)       a minigrad Tensor              -> a Tensor
    t(pil_image)    a PIL image (H, W, C)          -> (C, H, W)

A dataset given ``transform=`` (as torchvision's datasets take it) and the
DataLoader call ``batch`` on a whole batch at once, so the per-image
randomness costs no Python loop::

    t = Compose([RandomCrop(32, padding=4), RandomHorizontalFlip(), ToTensor(),
                 Normalize(mean=(0.4914, 0.4822, 0.4465), std=(0.2470, 0.2435, 0.2616))])
    x = t.batch(uint8_batch, rng=numpy.random.default_rng(0))     # (N, 3, 32, 32) float32

Random transforms draw from ``rng``, a ``numpy.random.Generator``: the same
rng state gives the same augmentation, which is how the DataLoader makes runs
reproducible. Without one they draw from NumPy's global generator, so
minigrad.manual_seed applies. The randomness is per image (each image gets
its own crop offset and flip) and vectorised: one draw of N offsets and one
fancy-indexing gather.

A transform minigrad does not have can be any function of one image; Compose
and the datasets apply it image by image (Lambda names one explicitly).
"""
import math
import threading

import numpy
from numpy.lib.stride_tricks import sliding_window_view

from minigrad.data.resize import resize, resize_boxes


def _check_batch(x, who):
    """Raise a clear error unless x is a NumPy batch shaped (N, C, H, W) or (N, H, W)."""
    if not isinstance(x, numpy.ndarray):
        raise TypeError(f"{who}.batch expects a NumPy array batch, got {type(x).__name__}")
    if x.ndim not in (3, 4):
        hint = " (one image? call the transform on it: t(image))" if x.ndim == 2 else ""
        raise ValueError(f"{who}.batch expects a batch shaped (N, C, H, W) or (N, H, W), got shape "
                         f"{x.shape}{hint}")


_batch_rng = threading.local()     # .rng: the generator of the batch this thread is building (DataLoader)


class drawing_from:
    """`with drawing_from(rng):` random transforms called without an rng in this thread draw from `rng`.

    The DataLoader builds each batch inside one, so a dataset whose __getitem__ applies a random
    transform (torchvision's style) is reproducible too, even from the prefetch thread.
    """

    def __init__(self, rng):
        self.rng = rng

    def __enter__(self):
        self.previous = getattr(_batch_rng, "rng", None)
        _batch_rng.rng = self.rng

    def __exit__(self, *exc):
        _batch_rng.rng = self.previous


def _fallback_rng():
    """The batch's generator (see drawing_from), else one seeded from NumPy's global RNG, so that
    minigrad.manual_seed applies."""
    rng = getattr(_batch_rng, "rng", None)
    if rng is not None:
        return rng
    return numpy.random.default_rng(numpy.random.randint(0, 2**31 - 1, size=4))


def _is_pil_image(x):
    return type(x).__module__.startswith("PIL.") and hasattr(x, "mode") and hasattr(x, "getbands")


def _as_array(x, who):
    """(array, was_a_tensor) from an ndarray, a minigrad Tensor or a PIL image (-> channels first)."""
    from minigrad.tensor import Tensor
    if isinstance(x, Tensor):
        return x.detach().cpu().numpy(), True
    if _is_pil_image(x):
        array = numpy.asarray(x)                                   # (H, W) or (H, W, C)
        return (array if array.ndim == 2 else array.transpose(2, 0, 1)), False
    if isinstance(x, numpy.ndarray):
        return x, False
    raise TypeError(f"{who} expects an image or batch as a NumPy array, a minigrad Tensor or a PIL image, "
                    f"got {type(x).__name__}")


def _as_tensor(array):
    from minigrad.tensor import Tensor
    return Tensor(numpy.ascontiguousarray(array))


def _size_pair(size, who):
    pair = (size, size) if isinstance(size, (int, numpy.integer)) else tuple(size)
    if len(pair) == 1:
        pair = (pair[0], pair[0])
    if len(pair) != 2 or not all(isinstance(s, (int, numpy.integer)) and s >= 1 for s in pair):
        raise ValueError(f"{who}: size must be a positive int or (height, width), got {size!r}")
    return int(pair[0]), int(pair[1])


def apply_to_batch(transform, x, rng=None):
    """Run `transform` on a batch: its batch() method if it is a Transform, else image by image."""
    if isinstance(transform, Transform):
        return transform.batch(x, rng)
    images = []
    for image in x:
        out = transform(image)
        images.append(out.detach().cpu().numpy() if hasattr(out, "detach") else numpy.asarray(out))
    return numpy.stack(images)


class Transform:
    """Base class: subclasses write batch(x, rng); calling one on an image runs a batch of one."""

    def batch(self, x, rng=None):
        raise NotImplementedError(f"{type(self).__name__} must define batch(x, rng)")

    def __call__(self, x, rng=None):
        array, was_tensor = _as_array(x, type(self).__name__)
        if array.ndim == 4:
            out = self.batch(array, rng)
        elif array.ndim in (2, 3):
            out = self.batch(array[None], rng)[0]                  # one image = a batch of one
        else:
            raise ValueError(f"{type(self).__name__} expects one image (C, H, W) or (H, W), or a batch "
                             f"(N, C, H, W); got shape {array.shape}")
        return _as_tensor(out) if was_tensor else out

    def __repr__(self):
        args = ", ".join(f"{k}={v!r}" for k, v in vars(self).items())
        return f"{type(self).__name__}({args})"


class Compose(Transform):
    """Apply transforms in order, passing the same rng to each.

    Plain functions of one image may be mixed in: on a batch they run image by image.
    """

    def __init__(self, transforms):
        self.transforms = list(transforms)

    def batch(self, x, rng=None):
        for t in self.transforms:
            x = apply_to_batch(t, x, rng)
        return x

    def __call__(self, x, rng=None):
        for t in self.transforms:
            x = t(x, rng=rng) if isinstance(t, Transform) else t(x)
        return x

    def __repr__(self):
        inner = ",\n  ".join(repr(t) for t in self.transforms)
        return f"Compose([\n  {inner}\n])"


class Lambda(Transform):
    """A function of one image as a transform (applied image by image on a batch)."""

    def __init__(self, function):
        if not callable(function):
            raise TypeError(f"Lambda needs a callable, got {type(function).__name__}")
        self.function = function

    def batch(self, x, rng=None):
        return apply_to_batch(self.function, x)

    def __call__(self, x, rng=None):
        return self.function(x)


class ToFloat(Transform):
    """uint8 pixels 0..255 -> float32 in [0, 1]:  x / 255.  Float input is only cast to float32."""

    def batch(self, x, rng=None):
        _check_batch(x, "ToFloat")
        if x.dtype == numpy.uint8:
            return x.astype(numpy.float32) * numpy.float32(1.0 / 255.0)
        if x.dtype.kind == "f":
            return x.astype(numpy.float32, copy=False)
        raise TypeError(f"ToFloat expects uint8 or float images, got dtype {x.dtype}")


class ToTensor(ToFloat):
    """torchvision's ToTensor: an image -> a float32 Tensor (C, H, W); uint8 pixels are scaled to [0, 1].

    (H, W) images gain a channel axis: (1, H, W). minigrad's datasets hold images channels first;
    a NumPy image whose first axis is not 1, 3 or 4 channels but whose last axis is (an (H, W, C)
    image, as torchvision expects from NumPy) and a PIL image are moved to channels first. On a
    batch (the DataLoader's path) the result stays a NumPy array, float32 (N, C, H, W).
    """

    def batch(self, x, rng=None):
        _check_batch(x, "ToTensor")
        if x.ndim == 3:
            x = x[:, None]                                         # (N, H, W) -> (N, 1, H, W)
        elif _channels_last(x.shape[1:]):
            x = x.transpose(0, 3, 1, 2)                            # (N, H, W, C) -> (N, C, H, W)
        return super().batch(x)

    def __call__(self, x, rng=None):
        array, _ = _as_array(x, "ToTensor")
        if array.ndim == 3 and _channels_last(array.shape):
            array = array.transpose(2, 0, 1)                       # (H, W, C) -> (C, H, W)
        if array.ndim == 4:
            return _as_tensor(self.batch(array))
        if array.ndim not in (2, 3):
            raise ValueError(f"ToTensor expects one image (C, H, W), (H, W, C) or (H, W), or a batch "
                             f"(N, C, H, W); got shape {array.shape}")
        return _as_tensor(self.batch(array[None])[0])


def _channels_last(shape):
    """An image shape (A, B, C) read as (H, W, C): its first axis is not 1, 3 or 4 channels and its last is."""
    return shape[0] not in (1, 3, 4) and shape[2] in (1, 3, 4)


class Normalize(Transform):
    """Per-channel standardisation:  out[:, c] = (x[:, c] - mean[c]) / std[c].

    mean and std have one value per channel (or a single value for all). Use
    statistics on the same scale as the input: after ToTensor, MNIST is
    mean 0.1307, std 0.3081. Integer input is converted to float32 first.
    `inplace` is accepted for torchvision's signature; the result is always a new array.
    """

    def __init__(self, mean, std, inplace=False):
        self.mean = numpy.atleast_1d(numpy.asarray(mean, dtype=numpy.float32))
        self.std = numpy.atleast_1d(numpy.asarray(std, dtype=numpy.float32))
        if self.mean.ndim != 1 or self.mean.shape != self.std.shape:
            raise ValueError(f"Normalize: mean {mean} and std {std} must be sequences of equal length")
        if numpy.any(self.std <= 0):
            raise ValueError(f"Normalize: std must be positive, got {std}")

    def batch(self, x, rng=None):
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


class _ChannelAxis:
    """Give an (N, H, W) batch a channel axis for the body of a transform, and take it off after."""

    def __init__(self, x):
        self.squeeze = x.ndim == 3
        self.x = x[:, None] if self.squeeze else x

    def result(self, out):
        return out[:, 0] if self.squeeze else out


def _padding_ltrb(padding, who):
    """torchvision's padding: p (all sides), (left/right, top/bottom) or (left, top, right, bottom)."""
    if padding is None:
        return (0, 0, 0, 0)
    values = (padding,) if isinstance(padding, (int, numpy.integer)) else tuple(padding)
    if len(values) == 1:
        values = values * 4
    elif len(values) == 2:
        values = values * 2
    if len(values) != 4 or not all(isinstance(v, (int, numpy.integer)) and v >= 0 for v in values):
        raise ValueError(f"{who}: padding must be an int >= 0 or a sequence of 2 or 4 of them, got {padding!r}")
    return tuple(int(v) for v in values)


_PADDING_MODES = {"constant": "constant", "edge": "edge", "reflect": "reflect", "symmetric": "symmetric"}


def _pad(x, left, top, right, bottom, fill=0, mode="constant"):
    """Pad the H and W axes of (N, C, H, W)."""
    widths = ((0, 0), (0, 0), (top, bottom), (left, right))
    if mode == "constant":
        return numpy.pad(x, widths, constant_values=fill)
    return numpy.pad(x, widths, mode=_PADDING_MODES[mode])


class RandomCrop(Transform):
    """Pad each image by `padding`, then cut a random size x size window (a different one per image).

    Vectorised: pad the batch once, then view every possible window with
    sliding_window_view (no copy; shape (N, C, OH, OW, size, size) with
    OH = H + top + bottom - size + 1) and pick window (oy[n], ox[n]) for image n
    with one fancy index. padding, pad_if_needed, fill and padding_mode
    ('constant', 'edge', 'reflect', 'symmetric') mean what they mean in torchvision.
    """

    def __init__(self, size, padding=None, pad_if_needed=False, fill=0, padding_mode="constant"):
        self.size = _size_pair(size, "RandomCrop")
        self.padding = _padding_ltrb(padding, "RandomCrop")
        self.pad_if_needed = bool(pad_if_needed)
        self.fill = fill
        if padding_mode not in _PADDING_MODES:
            raise ValueError(f"RandomCrop: padding_mode must be one of {sorted(_PADDING_MODES)}, "
                             f"got {padding_mode!r}")
        self.padding_mode = padding_mode

    def batch(self, x, rng=None):
        _check_batch(x, "RandomCrop")
        rng = rng if rng is not None else _fallback_rng()
        axis = _ChannelAxis(x)
        left, top, right, bottom = self.padding
        (sh, sw), (h, w) = self.size, axis.x.shape[2:]
        if self.pad_if_needed:                                     # grow both sides up to the crop
            grow_y, grow_x = max(0, sh - (h + top + bottom)), max(0, sw - (w + left + right))
            top, bottom, left, right = top + grow_y, bottom + grow_y, left + grow_x, right + grow_x
        padded_h, padded_w = h + top + bottom, w + left + right
        if sh > padded_h or sw > padded_w:
            raise ValueError(f"RandomCrop: crop {self.size} is larger than the padded image "
                             f"({padded_h}, {padded_w}); pass pad_if_needed=True to pad up to it")
        padded = _pad(axis.x, left, top, right, bottom, self.fill, self.padding_mode)
        windows = sliding_window_view(padded, (sh, sw), axis=(2, 3))  # (N, C, OH, OW, sh, sw)
        n = len(padded)
        oy = rng.integers(0, padded_h - sh + 1, size=n)
        ox = rng.integers(0, padded_w - sw + 1, size=n)
        out = numpy.ascontiguousarray(windows[numpy.arange(n), :, oy, ox])   # (N, C, sh, sw)
        return axis.result(out)


class RandomHorizontalFlip(Transform):
    """Mirror each image left-right with probability p (an independent coin per image)."""

    axis = -1

    def __init__(self, p=0.5):
        if not 0.0 <= p <= 1.0:
            raise ValueError(f"{type(self).__name__}: p must be in [0, 1], got {p}")
        self.p = float(p)

    def batch(self, x, rng=None):
        _check_batch(x, type(self).__name__)
        rng = rng if rng is not None else _fallback_rng()
        flip = rng.random(x.shape[0]) < self.p                        # (N,) bool
        out = x.copy()
        out[flip] = numpy.flip(x[flip], axis=self.axis)               # reverse W (or H)
        return out


class RandomVerticalFlip(RandomHorizontalFlip):
    """Mirror each image top-bottom with probability p."""

    axis = -2


class InterpolationMode:
    """torchvision's names for the resampling filters minigrad has."""

    NEAREST = "nearest"
    BILINEAR = "bilinear"


def _check_mode(interpolation, who):
    mode = getattr(interpolation, "value", interpolation)           # an enum member or its string
    if mode not in (InterpolationMode.NEAREST, InterpolationMode.BILINEAR):
        raise ValueError(f"{who}: interpolation must be 'bilinear' or 'nearest' (InterpolationMode.BILINEAR "
                         f"or .NEAREST), got {interpolation!r}")
    return mode


class Resize(Transform):
    """Resize to `size`: (height, width), or an int for the shorter side (the aspect ratio is kept).

    Bilinear with antialiasing when shrinking, as torchvision's default; see resize.py for the
    weights (two matrix products per image). uint8 images stay uint8 (rounded).
    """

    def __init__(self, size, interpolation=InterpolationMode.BILINEAR, max_size=None, antialias=True):
        if isinstance(size, (int, numpy.integer)) or len(tuple(size)) == 1:
            self.size = int(size if isinstance(size, (int, numpy.integer)) else tuple(size)[0])
            if self.size < 1:
                raise ValueError(f"Resize: size must be positive, got {size!r}")
        else:
            self.size = _size_pair(size, "Resize")
        self.interpolation = _check_mode(interpolation, "Resize")
        if max_size is not None and isinstance(self.size, tuple):
            raise ValueError(f"Resize: max_size applies to an int size (the shorter side), not to size {size!r}")
        if max_size is not None and max_size <= self.size:
            raise ValueError(f"Resize: max_size ({max_size}) must be larger than size ({self.size})")
        self.max_size = max_size
        self.antialias = bool(antialias)

    def output_size(self, h, w):
        """(height, width) for an h x w image: torchvision's rule for an int size (and max_size)."""
        if isinstance(self.size, tuple):
            return self.size
        short, long = min(h, w), max(h, w)
        new_short, new_long = self.size, int(self.size * long / short)
        if self.max_size is not None and new_long > self.max_size:
            new_short, new_long = int(self.max_size * new_short / new_long), self.max_size
        return (new_short, new_long) if h <= w else (new_long, new_short)

    def batch(self, x, rng=None):
        _check_batch(x, "Resize")
        axis = _ChannelAxis(x)
        out_h, out_w = self.output_size(*axis.x.shape[2:])
        return axis.result(resize(axis.x, out_h, out_w, self.interpolation, self.antialias))


class CenterCrop(Transform):
    """Cut the central size x size window (padding with zeros first if the image is smaller)."""

    def __init__(self, size):
        self.size = _size_pair(size, "CenterCrop")

    def batch(self, x, rng=None):
        _check_batch(x, "CenterCrop")
        axis = _ChannelAxis(x)
        (ch, cw), (h, w) = self.size, axis.x.shape[2:]
        image = axis.x
        if ch > h or cw > w:                                           # torchvision pads, then crops
            grow_y, grow_x = max(0, ch - h), max(0, cw - w)
            image = _pad(image, grow_x // 2, grow_y // 2, (grow_x + 1) // 2, (grow_y + 1) // 2)
            h, w = image.shape[2:]
        top, left = int(round((h - ch) / 2.0)), int(round((w - cw) / 2.0))
        return axis.result(numpy.ascontiguousarray(image[:, :, top:top + ch, left:left + cw]))


class RandomResizedCrop(Transform):
    """Cut a random box of random area and aspect ratio from each image and resize it to `size`.

    The box (Szegedy et al. 2015, "Going deeper with convolutions", the Inception augmentation) has
    area = U(scale) x H x W and aspect ratio w / h = exp(U(log ratio)); up to ten draws are tried
    per image and the first that fits is kept, else the largest central box within the ratio
    limits, as torchvision does. All images' draws happen at once, and crop plus resize are the
    two weight matrices of resize.py, one pair per image, in one batched matmul.
    """

    def __init__(self, size, scale=(0.08, 1.0), ratio=(3.0 / 4.0, 4.0 / 3.0),
                 interpolation=InterpolationMode.BILINEAR, antialias=True):
        self.size = _size_pair(size, "RandomResizedCrop")
        self.scale, self.ratio = tuple(float(s) for s in scale), tuple(float(r) for r in ratio)
        if len(self.scale) != 2 or not 0 < self.scale[0] <= self.scale[1]:
            raise ValueError(f"RandomResizedCrop: scale must be (low, high) with 0 < low <= high, got {scale!r}")
        if len(self.ratio) != 2 or not 0 < self.ratio[0] <= self.ratio[1]:
            raise ValueError(f"RandomResizedCrop: ratio must be (low, high) with 0 < low <= high, got {ratio!r}")
        self.interpolation = _check_mode(interpolation, "RandomResizedCrop")
        self.antialias = bool(antialias)

    def boxes(self, n, h, w, rng, tries=10):
        """(top, left, height, width), each (n,): one box per image."""
        area = h * w * rng.uniform(*self.scale, size=(n, tries))
        aspect = numpy.exp(rng.uniform(math.log(self.ratio[0]), math.log(self.ratio[1]), size=(n, tries)))
        bw = numpy.rint(numpy.sqrt(area * aspect)).astype(numpy.int64)
        bh = numpy.rint(numpy.sqrt(area / aspect)).astype(numpy.int64)
        fits = (bw > 0) & (bw <= w) & (bh > 0) & (bh <= h)
        first = numpy.argmax(fits, axis=1)                             # the first draw that fits
        rows = numpy.arange(n)
        bw, bh, found = bw[rows, first], bh[rows, first], fits[rows, first]
        fallback_w, fallback_h = w, h                                  # the whole image, within the ratios
        if w / h < self.ratio[0]:
            fallback_h = int(round(w / self.ratio[0]))
        elif w / h > self.ratio[1]:
            fallback_w = int(round(h * self.ratio[1]))
        bw, bh = numpy.where(found, bw, fallback_w), numpy.where(found, bh, fallback_h)
        top = numpy.floor(rng.random(n) * (h - bh + 1)).astype(numpy.int64)
        left = numpy.floor(rng.random(n) * (w - bw + 1)).astype(numpy.int64)
        top = numpy.where(found, top, (h - bh) // 2)
        left = numpy.where(found, left, (w - bw) // 2)
        return top, left, bh, bw

    def batch(self, x, rng=None):
        _check_batch(x, "RandomResizedCrop")
        rng = rng if rng is not None else _fallback_rng()
        axis = _ChannelAxis(x)
        n, _, h, w = axis.x.shape
        top, left, height, width = self.boxes(n, h, w, rng)
        out = resize_boxes(axis.x, *self.size, top, left, height, width, self.interpolation, self.antialias)
        return axis.result(out)
