"""Batch transforms: values, per-image randomness, reproducibility and clear errors."""
import numpy
import pytest
from hypothesis import given
from hypothesis import strategies as st

from minigrad.data import Compose, Normalize, RandomCrop, RandomHorizontalFlip, ToFloat


def _batch(n=8, c=3, h=6, w=6, seed=0):
    return numpy.random.default_rng(seed).integers(0, 256, size=(n, c, h, w), dtype=numpy.uint8)


def _rng(seed=0):
    return numpy.random.default_rng(seed)


def test_to_float_scales_uint8_to_unit_interval():
    x = numpy.array([[[0, 255], [51, 102]]], dtype=numpy.uint8)  # (1, 2, 2)
    y = ToFloat()(x)
    assert y.dtype == numpy.float32
    numpy.testing.assert_allclose(y, [[[0.0, 1.0], [0.2, 0.4]]], rtol=1e-6)


def test_to_float_rejects_int32():
    with pytest.raises(TypeError, match="uint8 or float"):
        ToFloat()(numpy.zeros((1, 2, 2), numpy.int32))


def test_normalize_is_per_channel():
    x = numpy.ones((2, 3, 2, 2), numpy.float32) * numpy.array([1, 2, 3], numpy.float32)[None, :, None, None]
    y = Normalize(mean=(1, 1, 1), std=(1, 2, 4))(x)
    numpy.testing.assert_allclose(y[0, :, 0, 0], [0.0, 0.5, 0.5])
    assert y.dtype == numpy.float32


def test_normalize_single_channel_nhw():
    y = Normalize(0.5, 0.25).batch(numpy.full((2, 3, 3), 1.0, numpy.float32))
    numpy.testing.assert_allclose(y, 2.0)


def test_normalize_wrong_channel_count_is_clear():
    with pytest.raises(ValueError, match=r"3 channel statistics.*has 1 channel"):
        Normalize((0.1, 0.2, 0.3), (1, 1, 1))(numpy.zeros((2, 1, 4, 4), numpy.float32))


@pytest.mark.parametrize("transform", [ToFloat(), Normalize(0, 1), RandomCrop(2), RandomHorizontalFlip()])
def test_batch_of_a_single_image_says_to_call_the_transform(transform):
    with pytest.raises(ValueError, match=r"\(N, C, H, W\) or \(N, H, W\).*t\(image\)"):
        transform.batch(numpy.zeros((28, 28), numpy.uint8), rng=_rng())


@pytest.mark.parametrize("transform", [ToFloat(), Normalize(0, 1), RandomCrop(2), RandomHorizontalFlip()])
def test_calling_a_transform_on_one_image_gives_one_image(transform):
    assert transform(numpy.zeros((28, 28), numpy.uint8), rng=_rng()).ndim == 2
    assert transform(numpy.zeros((3, 28, 28), numpy.uint8), rng=_rng()).shape[0] == 3


def test_random_crop_without_padding_matches_slicing_each_image():
    x = _batch()
    y = RandomCrop(4)(x, rng=_rng(1))
    # Redraw the same offsets and cut each image with a plain slice: the reference.
    rng = _rng(1)
    oy, ox = rng.integers(0, 3, size=8), rng.integers(0, 3, size=8)
    for n in range(8):
        expected = x[n, :, oy[n]:oy[n] + 4, ox[n]:ox[n] + 4]
        numpy.testing.assert_array_equal(y[n], expected, err_msg=f"image {n}")


def test_random_crop_pads_with_zeros():
    x = numpy.full((64, 1, 2, 2), 7, numpy.uint8)
    y = RandomCrop(2, padding=2)(x, rng=_rng(0))
    assert y.shape == (64, 1, 2, 2)
    assert (y == 0).any() and (y == 7).any() and set(numpy.unique(y)) <= {0, 7}


def test_random_crop_offsets_differ_per_image():
    x = numpy.broadcast_to(numpy.arange(36, dtype=numpy.uint8).reshape(1, 1, 6, 6), (16, 1, 6, 6)).copy()
    y = RandomCrop(3, padding=1)(x, rng=_rng(0))
    assert len({y[n].tobytes() for n in range(16)}) > 1


def test_random_crop_keeps_nhw_layout_and_dtype():
    y = RandomCrop(24, padding=2).batch(_batch(c=1, h=28, w=28)[:, 0], rng=_rng())
    assert y.shape == (8, 24, 24) and y.dtype == numpy.uint8 and y.flags["C_CONTIGUOUS"]


def test_random_crop_too_large_is_clear():
    with pytest.raises(ValueError, match="larger than the padded image"):
        RandomCrop(10, padding=1)(_batch(h=6, w=6), rng=_rng())


def test_flip_mirrors_exactly_the_chosen_images():
    x = _batch(n=32)
    y = RandomHorizontalFlip(0.5)(x, rng=_rng(2))
    flipped = _rng(2).random(32) < 0.5
    for n in range(32):
        expected = x[n, ..., ::-1] if flipped[n] else x[n]
        numpy.testing.assert_array_equal(y[n], expected, err_msg=f"image {n}")
    assert 0 < flipped.sum() < 32


def test_flip_probability_extremes():
    x = _batch()
    numpy.testing.assert_array_equal(RandomHorizontalFlip(0.0)(x, rng=_rng()), x)
    numpy.testing.assert_array_equal(RandomHorizontalFlip(1.0)(x, rng=_rng()), x[..., ::-1])


def test_compose_same_rng_state_same_output():
    t = Compose([ToFloat(), RandomCrop(4, padding=1), RandomHorizontalFlip(),
                 Normalize((0.5,) * 3, (0.2,) * 3)])
    a, b = t(_batch(), rng=_rng(5)), t(_batch(), rng=_rng(5))
    numpy.testing.assert_array_equal(a, b)
    assert a.dtype == numpy.float32 and a.shape == (8, 3, 4, 4)


def test_compose_accepts_plain_functions():
    y = Compose([ToFloat(), lambda x: x * 2])(numpy.full((1, 2, 2), 255, numpy.uint8))
    numpy.testing.assert_allclose(y, 2.0)


def test_random_transform_without_rng_follows_numpy_global_seed():
    saved = numpy.random.get_state()
    try:
        numpy.random.seed(123)
        a = RandomCrop(4, padding=2)(_batch())
        numpy.random.seed(123)
        b = RandomCrop(4, padding=2)(_batch())
    finally:
        numpy.random.set_state(saved)
    numpy.testing.assert_array_equal(a, b)


@given(n=st.integers(1, 5), c=st.integers(1, 3), h=st.integers(1, 7), w=st.integers(1, 7),
       padding=st.integers(0, 3), data=st.data())
def test_random_crop_equals_pad_then_slice_for_any_shape(n, c, h, w, padding, data):
    size_h = data.draw(st.integers(1, h + 2 * padding), label="size_h")
    size_w = data.draw(st.integers(1, w + 2 * padding), label="size_w")
    x = _batch(n, c, h, w)
    y = RandomCrop((size_h, size_w), padding)(x, rng=_rng(4))
    rng = _rng(4)
    oy = rng.integers(0, h + 2 * padding - size_h + 1, size=n)
    ox = rng.integers(0, w + 2 * padding - size_w + 1, size=n)
    padded = numpy.pad(x, ((0, 0), (0, 0), (padding, padding), (padding, padding)))
    for i in range(n):
        expected = padded[i, :, oy[i]:oy[i] + size_h, ox[i]:ox[i] + size_w]
        numpy.testing.assert_array_equal(y[i], expected, err_msg=f"image {i}")
