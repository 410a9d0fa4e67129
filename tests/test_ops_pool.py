"""max_pool2d, avg_pool2d, adaptive_avg_pool2d: values, routing of gradients, PyTorch, errors."""
import numpy
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import minigrad
from minigrad.fast.buffers import _kept_pool_matrix as kept
from minigrad.ops import pool as pool_ops, registry
from minigrad.ops.pool import (
    adaptive_avg_pool2d, avg_pool2d, max_pool2d, max_pool2d_backward_numpy, max_pool2d_forward_numpy,
)
from torch_compare import compare_with_torch


def distinct_values(shape, seed=0):
    """Random values that are all at least 1e-2 apart, so no max-pool window has a tie."""
    rng = numpy.random.default_rng(seed)
    values = rng.permutation(int(numpy.prod(shape))) * 1e-2 + rng.uniform(0, 1e-3, int(numpy.prod(shape)))
    return values.reshape(shape) - values.mean()


@st.composite
def pool_configs(draw):
    """Kernel, stride (often smaller than the kernel: overlapping windows), padding <= kernel/2, input."""
    kernel = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    stride = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    padding = (draw(st.integers(0, kernel[0] // 2)), draw(st.integers(0, kernel[1] // 2)))
    height = draw(st.integers(max(1, kernel[0] - 2 * padding[0]), 6))
    width = draw(st.integers(max(1, kernel[1] - 2 * padding[1]), 6))
    shape = (draw(st.integers(1, 2)), draw(st.integers(1, 2)), height, width)
    return distinct_values(shape, draw(st.integers(0, 2**16))), kernel, stride, padding


# ------------------------------------------------------------------ max pooling
@given(pool_configs())
def test_max_pool2d_matches_torch_values_and_gradients(config):
    torch = pytest.importorskip("torch")
    x, kernel, stride, padding = config
    compare_with_torch(
        lambda mg, x: max_pool2d(x, kernel, stride, padding), [x],
        torch_fn=lambda t, x: torch.nn.functional.max_pool2d(x, kernel, stride, padding),
    )


@settings(max_examples=20)
@given(pool_configs())
def test_max_pool2d_gradcheck(config):
    x, kernel, stride, padding = config
    x = minigrad.tensor(x, requires_grad=True)
    assert minigrad.gradcheck(lambda x: max_pool2d(x, kernel, stride, padding), [x])


def test_max_pool2d_overlapping_windows_accumulate_at_the_shared_max():
    x = minigrad.tensor(numpy.array([[[[0.0, 1, 0], [1, 9, 1], [0, 1, 0]]]]), requires_grad=True)
    max_pool2d(x, 2, stride=1).sum().backward()  # the 9 wins all four 2x2 windows
    numpy.testing.assert_array_equal(x.grad.numpy()[0, 0], [[0, 0, 0], [0, 4, 0], [0, 0, 0]])


def test_max_pool2d_padding_never_wins():
    x = minigrad.tensor(-1 - numpy.arange(16.0).reshape(1, 1, 4, 4))  # all negative: zero padding would win
    y = max_pool2d(x, 3, stride=2, padding=1).detach().numpy()
    assert (y < 0).all()


def test_max_pool2d_stride_defaults_to_kernel_size():
    x = minigrad.tensor(numpy.arange(16.0).reshape(1, 1, 4, 4))
    numpy.testing.assert_array_equal(max_pool2d(x, 2).detach().numpy()[0, 0], [[5, 7], [13, 15]])


def test_max_pool2d_argmax_index_is_flat_index_into_padded_plane():
    x = distinct_values((2, 3, 5, 4))
    padding = (1, 1)
    y, argmax_index = max_pool2d_forward_numpy(x, 3, 2, (2, 1), padding)
    x_padded = numpy.pad(x, ((0, 0), (0, 0), (1, 1), (1, 1)), constant_values=-numpy.inf)
    planes = x_padded.reshape(2, 3, -1)                                  # (N, C, HP*WP)
    picked = numpy.take_along_axis(planes, argmax_index.reshape(2, 3, -1), axis=2).reshape(y.shape)
    numpy.testing.assert_array_equal(picked, y)


def test_max_pool2d_backward_numpy_puts_each_dy_on_its_window_max():
    x = distinct_values((1, 2, 4, 4))
    y, argmax_index = max_pool2d_forward_numpy(x, 2, 2, (2, 2), (0, 0))
    dy = numpy.arange(1.0, y.size + 1).reshape(y.shape)
    dx = max_pool2d_backward_numpy(dy, argmax_index, x.shape, 2, 2, (2, 2), (0, 0))
    window_max = y.repeat(2, axis=2).repeat(2, axis=3)                   # (N, C, H, W)
    expected = numpy.where(x == window_max, dy.repeat(2, axis=2).repeat(2, axis=3), 0.0)
    numpy.testing.assert_array_equal(dx, expected)


def test_max_pool2d_uses_a_registered_forward_kernel(monkeypatch):
    calls = []

    def fake_forward(x, kh, kw, stride, padding):
        calls.append((kh, kw, stride, padding))
        return max_pool2d_forward_numpy(x, kh, kw, stride, padding)

    # setitem restores whatever kernel was registered before (e.g. the Numba one)
    monkeypatch.setitem(registry.KERNELS, ("max_pool2d_forward", "cpu"), fake_forward)
    max_pool2d(minigrad.zeros(1, 1, 4, 4), 2)
    assert calls == [(2, 2, (2, 2), (0, 0))]


def test_max_pool2d_padding_larger_than_half_the_kernel_is_an_error():
    with pytest.raises(ValueError, match=r"max_pool2d: padding \(2, 2\) must be at most half the kernel size"):
        max_pool2d(minigrad.zeros(1, 1, 5, 5), 3, padding=2)


def test_max_pool2d_wrong_rank_is_an_error():
    with pytest.raises(ValueError, match=r"max_pool2d: input must have 4 dimensions .* got shape \(5, 5\)"):
        max_pool2d(minigrad.zeros(5, 5), 2)


def test_max_pool2d_kernel_larger_than_input_is_an_error():
    with pytest.raises(ValueError, match=r"max_pool2d: kernel_size \(4, 4\) is larger than the padded input 3x3"):
        max_pool2d(minigrad.zeros(1, 1, 3, 3), 4)


# ------------------------------------------------------------------ average pooling
@given(pool_configs())
def test_avg_pool2d_matches_torch_values_and_gradients(config):
    torch = pytest.importorskip("torch")
    x, kernel, stride, padding = config
    compare_with_torch(
        lambda mg, x: avg_pool2d(x, kernel, stride, padding), [x],
        torch_fn=lambda t, x: torch.nn.functional.avg_pool2d(x, kernel, stride, padding),
    )


@settings(max_examples=20)
@given(pool_configs())
def test_avg_pool2d_gradcheck(config):
    x, kernel, stride, padding = config
    x = minigrad.tensor(x, requires_grad=True)
    assert minigrad.gradcheck(lambda x: avg_pool2d(x, kernel, stride, padding), [x])


def test_avg_pool2d_counts_padding_in_the_divisor():
    y = avg_pool2d(minigrad.ones(1, 1, 2, 2), 2, stride=1, padding=1).detach().numpy()
    assert y[0, 0, 0, 0] == 0.25  # one real pixel, three zeros of padding, divided by 4


# ------------------------------------------------------------------ adaptive average pooling
@pytest.mark.parametrize("output_size", [1, 2, (3, 4), (5, None), (4, 3)])
def test_adaptive_avg_pool2d_matches_torch_values_and_gradients(output_size):
    torch = pytest.importorskip("torch")
    x = numpy.random.default_rng(4).standard_normal((2, 3, 5, 7))
    compare_with_torch(
        lambda mg, x: adaptive_avg_pool2d(x, output_size), [x],
        torch_fn=lambda t, x: torch.nn.functional.adaptive_avg_pool2d(x, output_size),
    )


def test_adaptive_avg_pool2d_to_one_pixel_is_the_spatial_mean():
    x = numpy.random.default_rng(5).standard_normal((2, 3, 4, 6))
    y = adaptive_avg_pool2d(minigrad.tensor(x), 1).detach().numpy()
    numpy.testing.assert_allclose(y, x.mean(axis=(2, 3), keepdims=True), rtol=1e-12)


@pytest.mark.parametrize("output_size", [(2, 3), (3, 5)])
def test_adaptive_avg_pool2d_gradcheck(output_size):
    x = minigrad.tensor(numpy.random.default_rng(6).standard_normal((1, 2, 5, 6)), requires_grad=True)
    assert minigrad.gradcheck(lambda x: adaptive_avg_pool2d(x, output_size), [x])


def test_adaptive_avg_pool2d_wrong_rank_is_an_error():
    with pytest.raises(ValueError, match=r"adaptive_avg_pool2d: input must have 4 dimensions"):
        adaptive_avg_pool2d(minigrad.zeros(3, 4, 4), 1)


# ------------------------------------------------------------------ adaptive average pooling: the kept matrices
# The fast layer keeps the averaging matrices (minigrad/fast/buffers.py, kept_pool_matrix) instead of
# building them at every call; these tests check that they are made once and give the reference's numbers.
def window_means(x, out_h, out_w):
    """adaptive_avg_pool2d the slow way: the mean of each window, PyTorch's window rule, one at a time."""
    n, c, height, width = x.shape
    y = numpy.empty((n, c, out_h, out_w), dtype=x.dtype)
    for i in range(out_h):
        top, bottom = (i * height) // out_h, -((-(i + 1) * height) // out_h)
        for j in range(out_w):
            left, right = (j * width) // out_w, -((-(j + 1) * width) // out_w)
            y[:, :, i, j] = x[:, :, top:bottom, left:right].mean(axis=(2, 3))
    return y


@pytest.fixture
def fresh_pool_matrices():
    """An empty cache of pool matrices before the test (and after it: no matrix leaks into other tests)."""
    kept.cache_clear()
    yield kept
    kept.cache_clear()


def test_adaptive_avg_pool2d_builds_its_matrices_once_and_reuses_them(fresh_pool_matrices):
    x = numpy.random.default_rng(7).standard_normal((2, 3, 5, 7))
    first, second = pool_ops.AdaptiveAvgPool2d((2, 3)), pool_ops.AdaptiveAvgPool2d((2, 3))
    y_first, y_second = first.forward(x), second.forward(x)
    assert fresh_pool_matrices.cache_info().misses == 2                   # A_h (2, 5) and A_w (3, 7), once each
    assert second.saved[0] is first.saved[0] and second.saved[1] is first.saved[1]
    numpy.testing.assert_array_equal(y_second, y_first)
    numpy.testing.assert_allclose(y_second, window_means(x, 2, 3), rtol=1e-12)


def test_adaptive_avg_pool2d_with_kept_matrices_still_passes_gradcheck(fresh_pool_matrices):
    x = minigrad.tensor(numpy.random.default_rng(8).standard_normal((1, 2, 5, 6)), requires_grad=True)
    adaptive_avg_pool2d(x, (2, 3))                                        # the matrices are made here ...
    misses = fresh_pool_matrices.cache_info().misses
    assert minigrad.gradcheck(lambda x: adaptive_avg_pool2d(x, (2, 3)), [x])    # ... and only reused here
    assert fresh_pool_matrices.cache_info().misses == misses


def test_adaptive_avg_pool2d_keeps_one_matrix_per_size_and_dtype(fresh_pool_matrices):
    rng = numpy.random.default_rng(9)
    inputs = [rng.standard_normal((1, 2, 6, 6)), rng.standard_normal((1, 2, 6, 6)).astype(numpy.float32),
              rng.standard_normal((1, 2, 9, 6))]
    seen = []
    for x in inputs:
        function = pool_ops.AdaptiveAvgPool2d(4)
        y = function.forward(x)
        rows, columns = function.saved
        assert rows.dtype == columns.dtype == y.dtype == x.dtype
        assert rows.shape == (4, x.shape[2]) and columns.shape == (4, x.shape[3])
        numpy.testing.assert_allclose(y, window_means(x, 4, 4), rtol=1e-6 if x.dtype == numpy.float32 else 1e-12)
        seen += [rows, columns]
    # (6 -> 4, float64), (6 -> 4, float32), (9 -> 4, float64): three matrices, each also used where it fits
    assert fresh_pool_matrices.cache_info().misses == 3
    assert seen[0] is seen[1] is seen[5] and seen[2] is seen[3] and seen[4] is not seen[0]


def test_adaptive_avg_pool2d_kept_matrices_cannot_be_written():
    function = pool_ops.AdaptiveAvgPool2d(2)
    function.forward(numpy.zeros((1, 1, 4, 4)))
    with pytest.raises(ValueError, match="read-only"):
        function.saved[0][0, 0] = 5.0
