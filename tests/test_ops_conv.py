"""conv2d and im2col/col2im: layout, adjointness, the loop reference, gradients, PyTorch, errors."""
import numpy
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import minigrad
from minigrad.ops import registry
from minigrad.ops.conv import conv2d, conv2d_reference
from minigrad.ops.im2col import col2im, col2im_numpy, conv_output_size, im2col, im2col_numpy
from torch_compare import compare_with_torch


@pytest.fixture(autouse=True, params=["fast layer", "reference"])
def engine(request):
    """Every test here runs twice: through the fast layer (as `import minigrad` sets it up) and on
    the reference code alone (minigrad/ops/), which must be right by itself."""
    if request.param == "reference":
        request.getfixturevalue("reference_only")
    return request.param


@st.composite
def conv_configs(draw):
    """A small random conv2d problem whose output has at least one pixel."""
    groups = draw(st.sampled_from([1, 2]))
    channels = groups * draw(st.integers(1, 2))
    filters = groups * draw(st.integers(1, 2))
    kernel = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    stride = (draw(st.integers(1, 2)), draw(st.integers(1, 2)))
    padding = (draw(st.integers(0, 2)), draw(st.integers(0, 2)))
    dilation = (draw(st.integers(1, 2)), draw(st.integers(1, 2)))
    size = []
    for axis in range(2):
        span = dilation[axis] * (kernel[axis] - 1) + 1
        smallest = max(1, span - 2 * padding[axis])
        size.append(draw(st.integers(smallest, smallest + 3)))
    seed = draw(st.integers(0, 2**16))
    rng = numpy.random.default_rng(seed)
    x = rng.standard_normal((draw(st.integers(1, 2)), channels, *size))
    weight = rng.standard_normal((filters, channels // groups, *kernel))
    bias = rng.standard_normal(filters)
    options = dict(stride=stride, padding=padding, dilation=dilation, groups=groups)
    return x, weight, bias, options


# ------------------------------------------------------------------ im2col / col2im
def test_conv_output_size_follows_the_formula():
    assert conv_output_size(7, 3, 2, 1, 1) == 4
    assert conv_output_size(5, 3, 1, 0, 2) == 1
    assert conv_output_size(4, 1, 3, 0, 1) == 2


def test_im2col_layout_rows_are_channel_tap_and_columns_are_batch_position():
    rng = numpy.random.default_rng(0)
    x = rng.standard_normal((2, 3, 5, 4))
    stride, padding, dilation = (2, 1), (1, 0), (1, 2)
    cols = im2col_numpy(x, 2, 2, stride, padding, dilation)
    out_h, out_w = conv_output_size(5, 2, 2, 1, 1), conv_output_size(4, 2, 1, 0, 2)
    assert cols.shape == (3 * 2 * 2, 2 * out_h * out_w)
    x_padded = numpy.pad(x, ((0, 0), (0, 0), (1, 1), (0, 0)))
    for c, kh, kw, n, oh, ow in [(0, 0, 0, 0, 0, 0), (2, 1, 1, 1, out_h - 1, out_w - 1), (1, 0, 1, 1, 1, 0)]:
        row = (c * 2 + kh) * 2 + kw
        column = (n * out_h + oh) * out_w + ow
        expected = x_padded[n, c, oh * 2 + kh * 1, ow * 1 + kw * 2]
        assert cols[row, column] == expected, f"cols[{row}, {column}] for (c, kh, kw, n, oh, ow)"


@given(conv_configs())
def test_col2im_is_the_adjoint_of_im2col(config):
    x, weight, _, options = config
    _, _, kernel_h, kernel_w = weight.shape
    args = (kernel_h, kernel_w, options["stride"], options["padding"], options["dilation"])
    cols = im2col(x, *args)
    c = numpy.random.default_rng(1).standard_normal(cols.shape)
    left = float((cols * c).sum())                       # <im2col(x), c>
    right = float((x * col2im(c, x.shape, *args)).sum())  # <x, col2im(c)>
    assert abs(left - right) <= 1e-10 * max(1.0, abs(left))


def test_col2im_adds_overlapping_patches():
    x_shape = (1, 1, 3, 3)
    cols = numpy.ones((4, 4))  # 2x2 kernel, stride 1: the centre pixel is in all 4 patches
    dx = col2im_numpy(cols, x_shape, 2, 2, (1, 1), (0, 0), (1, 1))
    numpy.testing.assert_array_equal(dx[0, 0], [[1, 2, 1], [2, 4, 2], [1, 2, 1]])


def test_im2col_dispatcher_uses_a_registered_kernel(monkeypatch):
    calls = []

    def fake_kernel(x, *args):
        calls.append(args)
        return im2col_numpy(x, *args)

    # setitem restores whatever kernel was registered before (e.g. the Numba one)
    monkeypatch.setitem(registry.KERNELS, ("im2col", "cpu"), fake_kernel)
    im2col(numpy.zeros((1, 1, 3, 3)), 2, 2, (1, 1), (0, 0), (1, 1))
    assert calls == [(2, 2, (1, 1), (0, 0), (1, 1))]


# ------------------------------------------------------------------ conv2d forward
@settings(max_examples=20)
@given(conv_configs())
def test_conv2d_equals_the_loop_reference(config):
    x, weight, bias, options = config
    ours = conv2d(minigrad.tensor(x), minigrad.tensor(weight), minigrad.tensor(bias), **options).detach().numpy()
    numpy.testing.assert_allclose(ours, conv2d_reference(x, weight, bias, **options), rtol=1e-10, atol=1e-12)


def test_conv2d_without_bias_equals_the_loop_reference():
    rng = numpy.random.default_rng(2)
    x, weight = rng.standard_normal((2, 3, 5, 5)), rng.standard_normal((4, 3, 3, 3))
    ours = conv2d(minigrad.tensor(x), minigrad.tensor(weight), padding=1).detach().numpy()
    numpy.testing.assert_allclose(ours, conv2d_reference(x, weight, padding=1), rtol=1e-10, atol=1e-12)


def test_conv2d_keeps_float32():
    x = minigrad.tensor(numpy.ones((1, 2, 4, 4), dtype=numpy.float32))
    w = minigrad.tensor(numpy.ones((3, 2, 3, 3), dtype=numpy.float32))
    assert conv2d(x, w, minigrad.zeros(3)).dtype == numpy.float32


# ------------------------------------------------------------------ conv2d gradients
@settings(max_examples=20)
@given(conv_configs())
def test_conv2d_gradcheck_input_weight_bias(config):
    x, weight, bias, options = config
    tensors = [minigrad.tensor(a, requires_grad=True) for a in (x, weight, bias)]
    assert minigrad.gradcheck(lambda x, w, b: conv2d(x, w, b, **options), tensors)


def test_conv2d_gradcheck_without_bias_strided_dilated():
    rng = numpy.random.default_rng(3)
    x = minigrad.tensor(rng.standard_normal((2, 2, 6, 5)), requires_grad=True)
    w = minigrad.tensor(rng.standard_normal((3, 2, 2, 3)), requires_grad=True)
    assert minigrad.gradcheck(lambda x, w: conv2d(x, w, stride=2, padding=1, dilation=(2, 1)), [x, w])


@settings(max_examples=25)
@given(conv_configs())
def test_conv2d_matches_torch_values_and_gradients(config):
    torch = pytest.importorskip("torch")
    x, weight, bias, options = config
    compare_with_torch(
        lambda mg, x, w, b: conv2d(x, w, b, **options), [x, weight, bias],
        torch_fn=lambda t, x, w, b: torch.nn.functional.conv2d(x, w, b, **options),
    )


# ------------------------------------------------------------------ errors
def test_conv2d_wrong_channel_count_names_expected_and_actual():
    x, w = minigrad.zeros(1, 3, 5, 5), minigrad.zeros(4, 2, 3, 3)
    with pytest.raises(ValueError, match=r"conv2d: weight of shape \(4, 2, 3, 3\) expects C = .*2.* has 3"):
        conv2d(x, w)


def test_conv2d_kernel_larger_than_padded_input_is_an_error():
    with pytest.raises(ValueError, match=r"conv2d: kernel of size 5x5 .* larger than the padded input of size 4x4"):
        conv2d(minigrad.zeros(1, 1, 4, 4), minigrad.zeros(1, 1, 5, 5))


def test_conv2d_wrong_input_rank_is_an_error():
    with pytest.raises(ValueError, match=r"conv2d: input must have 4 dimensions .* got shape \(3, 5, 5\)"):
        conv2d(minigrad.zeros(3, 5, 5), minigrad.zeros(1, 3, 3, 3))


def test_conv2d_wrong_weight_rank_is_an_error():
    with pytest.raises(ValueError, match=r"conv2d: weight must have 4 dimensions"):
        conv2d(minigrad.zeros(1, 3, 5, 5), minigrad.zeros(3, 3, 3))


def test_conv2d_groups_must_divide_channels():
    with pytest.raises(ValueError, match=r"conv2d: groups=2 must divide .* input channels \(3"):
        conv2d(minigrad.zeros(1, 3, 5, 5), minigrad.zeros(4, 1, 3, 3), groups=2)


def test_conv2d_bias_of_wrong_shape_is_an_error():
    with pytest.raises(ValueError, match=r"conv2d: bias must have shape \(4,\)"):
        conv2d(minigrad.zeros(1, 3, 5, 5), minigrad.zeros(4, 3, 3, 3), minigrad.zeros(3))


def test_conv2d_reference_refuses_groups_below_one():
    with pytest.raises(ValueError, match="groups >= 1, got groups=0"):
        conv2d_reference(numpy.zeros((1, 2, 4, 4)), numpy.zeros((2, 2, 3, 3)), groups=0)
