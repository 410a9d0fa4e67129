"""Winograd F(2x2, 3x3) convolution: the transforms, the op against the loop reference,
im2col and PyTorch, gradients, chunks and threads, and when conv2d picks it."""
import numpy
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import minigrad
from minigrad.fast import winograd as fast_winograd
from minigrad.ops import registry, winograd
from minigrad.ops.conv import Conv2d, conv2d, conv2d_reference
from minigrad.utils.gradcheck import gradcheck
from torch_compare import compare_with_torch


needs_kernels = pytest.mark.skipif(not fast_winograd.numba_cpu.numba_available(),
                                   reason="conv2d picks Winograd only where its Numba kernels can run")
WINOGRAD = {"class": winograd.Conv2dWinograd}


@pytest.fixture(autouse=True, params=["reference", "fast layer"])
def engine(request):
    """Each test runs the reference Conv2dWinograd (minigrad/ops/winograd.py) and the fast layer's
    chunked Conv2dWinogradFast (minigrad/fast/winograd.py): both must give these results."""
    WINOGRAD["class"] = winograd.Conv2dWinograd if request.param == "reference" else fast_winograd.Conv2dWinogradFast
    yield request.param
    WINOGRAD["class"] = winograd.Conv2dWinograd


def winograd_conv(x, weight, bias=None, padding=1):
    """conv2d by Winograd whatever the channel count (conv2d itself picks it only from tuning's minimum on)."""
    return WINOGRAD["class"](padding)(x, weight, bias)


@st.composite
def problems(draw):
    """A small 3x3 convolution at stride 1: any padding, odd or even output sizes."""
    padding = (draw(st.integers(0, 2)), draw(st.integers(0, 2)))
    size = [draw(st.integers(max(1, 3 - 2 * p), 9)) for p in padding]
    rng = numpy.random.default_rng(draw(st.integers(0, 2**16)))
    x = rng.standard_normal((draw(st.integers(1, 3)), draw(st.integers(1, 4)), *size))
    weight = rng.standard_normal((draw(st.integers(1, 4)), x.shape[1], 3, 3))
    return x, weight, rng.standard_normal(weight.shape[0]), padding


# ------------------------------------------------------------------ the 1-D identity and the transforms
def test_f23_in_one_dimension_is_the_direct_sum():
    """y = A^T [(G g) * (B^T d)]: two outputs of a 3-tap filter from four multiplications."""
    rng = numpy.random.default_rng(0)
    d, g = rng.standard_normal(4), rng.standard_normal(3)
    y = winograd.A_T @ ((winograd.G @ g) * (winograd.B_T @ d))
    numpy.testing.assert_allclose(y, [d[0:3] @ g, d[1:4] @ g], rtol=1e-14)


def test_weight_transform_is_g_g_gt_per_filter_and_channel():
    rng = numpy.random.default_rng(1)
    weight = rng.standard_normal((3, 2, 3, 3))
    u = winograd.weight_transform(weight)                                    # (16, C, F)
    assert u.shape == (16, 2, 3)
    for f, c in [(0, 0), (2, 1)]:
        expected = winograd.G @ weight[f, c] @ winograd.G.T
        numpy.testing.assert_allclose(u[:, c, f].reshape(4, 4), expected, rtol=1e-14)


def test_input_transform_reads_tiles_every_two_pixels():
    rng = numpy.random.default_rng(2)
    x = rng.standard_normal((2, 3, 6, 5))
    v = winograd.input_transform_numpy(x, (1, 1), 6, 5)                      # tiles: 3 x 3 per image
    assert v.shape == (16, 2 * 3 * 3, 3)
    x_padded = numpy.pad(x, ((0, 0), (0, 0), (1, 1), (1, 2)))               # one extra column: OW = 5 is odd
    for n, c, th, tw in [(0, 0, 0, 0), (1, 2, 2, 1), (1, 1, 1, 2)]:
        tile = x_padded[n, c, 2 * th:2 * th + 4, 2 * tw:2 * tw + 4]
        expected = winograd.B_T @ tile @ winograd.B_T.T
        numpy.testing.assert_allclose(v[:, (n * 3 + th) * 3 + tw, c].reshape(4, 4), expected, rtol=1e-14)


@pytest.mark.parametrize("transform, adjoint", [("input", "input_adjoint"), ("output_adjoint", "output"),
                                                ("weight", "weight_adjoint")])
def test_each_adjoint_is_the_transpose_of_its_transform(transform, adjoint):
    """<T a, b> = <a, T^T b>: what backward needs from every linear step."""
    rng = numpy.random.default_rng(3)
    n, c, height, width, padding = 2, 3, 5, 6, (1, 0)
    out_h, out_w = height + 2 * padding[0] - 2, width + 2 * padding[1] - 2
    tiles = n * ((out_h + 1) // 2) * ((out_w + 1) // 2)
    if transform == "input":
        a = rng.standard_normal((n, c, height, width))
        b = rng.standard_normal((16, tiles, c))
        forward = winograd.input_transform_numpy(a, padding, out_h, out_w)
        backward = winograd.input_transform_adjoint_numpy(b, padding, numpy.empty_like(a))
    elif transform == "output_adjoint":
        a = rng.standard_normal((n, c, out_h, out_w))
        b = rng.standard_normal((16, tiles, c))
        forward = winograd.output_transform_adjoint_numpy(a)
        backward = winograd.output_transform_numpy(b, numpy.empty_like(a))
    else:
        a = rng.standard_normal((4, c, 3, 3))
        b = rng.standard_normal((16, c, 4))
        forward = winograd.weight_transform(a)
        backward = winograd.weight_transform_adjoint(b)
    numpy.testing.assert_allclose(numpy.vdot(forward, b), numpy.vdot(a, backward), rtol=1e-12)


# ------------------------------------------------------------------ the op
@settings(max_examples=40, deadline=None)
@given(problems())
def test_winograd_forward_equals_the_loop_reference_in_float64(problem):
    x, weight, bias, padding = problem
    y = winograd_conv(minigrad.tensor(x), minigrad.tensor(weight), minigrad.tensor(bias), padding)
    numpy.testing.assert_allclose(y.detach().numpy(), conv2d_reference(x, weight, bias, padding=padding),
                                  rtol=1e-10, atol=1e-12)


@settings(max_examples=25, deadline=None)
@given(problems())
def test_winograd_gradients_equal_im2col_gradients(problem):
    x_np, w_np, b_np, padding = problem
    rng = numpy.random.default_rng(4)

    def run(function):
        x, w, b = (minigrad.tensor(a, requires_grad=True) for a in (x_np, w_np, b_np))
        y = function(x, w, b)
        y.backward(minigrad.tensor(numpy.asarray(rng.standard_normal(y.shape))))
        return y.detach().numpy(), x.grad.numpy(), w.grad.numpy(), b.grad.numpy()

    seed_state = rng.bit_generator.state
    ours = run(lambda x, w, b: winograd_conv(x, w, b, padding))
    rng.bit_generator.state = seed_state
    expected = run(lambda x, w, b: Conv2d(1, padding)(x, w, b))
    for name, a, b in zip(["y", "dx", "dw", "db"], ours, expected):
        numpy.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-11, err_msg=name)


@pytest.mark.parametrize("shape, padding", [((2, 3, 5, 6), 1), ((1, 2, 4, 4), 0), ((2, 2, 3, 5), (2, 1))])
def test_winograd_gradcheck_float64(shape, padding):
    rng = numpy.random.default_rng(5)
    x = minigrad.tensor(rng.standard_normal(shape), requires_grad=True)
    w = minigrad.tensor(rng.standard_normal((3, shape[1], 3, 3)), requires_grad=True)
    b = minigrad.tensor(rng.standard_normal(3), requires_grad=True)
    assert gradcheck(lambda x, w, b: winograd_conv(x, w, b, padding), [x, w, b])


@needs_kernels
def test_winograd_matches_torch_through_conv2d():
    """conv2d picks Winograd for this 16-channel layer; values and gradients as torch's."""
    pytest.importorskip("torch")
    rng = numpy.random.default_rng(6)
    x, w, b = rng.standard_normal((2, 16, 8, 9)), rng.standard_normal((4, 16, 3, 3)), rng.standard_normal(4)
    assert fast_winograd.suits(x, w, (1, 1), (1, 1), 1)
    compare_with_torch(lambda lib, x, w, b: lib.nn.functional.conv2d(x, w, b, padding=1), [x, w, b], rtol=1e-9)


def test_winograd_float32_stays_within_float32_rounding_of_float64():
    rng = numpy.random.default_rng(7)
    x, w = rng.standard_normal((4, 32, 8, 8)), rng.standard_normal((32, 32, 3, 3)) / 17
    exact = conv2d_reference(x, w, padding=1)
    y32 = winograd_conv(minigrad.tensor(x.astype(numpy.float32)), minigrad.tensor(w.astype(numpy.float32)))
    assert y32.dtype == numpy.float32
    scale = numpy.abs(exact).max()
    assert numpy.abs(y32.detach().numpy() - exact).max() < 1e-5 * scale      # float32 eps is 1.2e-7; 288 terms a sum


def test_winograd_without_kernels_uses_the_numpy_references(monkeypatch):
    rng = numpy.random.default_rng(9)
    x, w = rng.standard_normal((2, 3, 5, 5)), rng.standard_normal((2, 3, 3, 3))
    with_kernels = winograd_conv(minigrad.tensor(x), minigrad.tensor(w)).detach().numpy()
    for key in [key for key in registry.KERNELS if key[0].startswith("winograd")]:
        monkeypatch.delitem(registry.KERNELS, key)
    numpy.testing.assert_allclose(winograd_conv(minigrad.tensor(x), minigrad.tensor(w)).detach().numpy(), with_kernels,
                                  rtol=1e-12, atol=1e-13)


@pytest.mark.parametrize("needs", [(True, False, False), (False, True, False), (False, False, True)],
                         ids=["only-x", "only-weight", "only-bias"])
def test_winograd_backward_computes_only_the_gradients_asked_for(needs):
    rng = numpy.random.default_rng(10)
    arrays = rng.standard_normal((2, 3, 5, 5)), rng.standard_normal((4, 3, 3, 3)), rng.standard_normal(4)
    tensors = [minigrad.tensor(a, requires_grad=need) for a, need in zip(arrays, needs)]
    y = winograd_conv(*tensors)
    dy = rng.standard_normal(y.shape)
    y.backward(minigrad.tensor(dy))
    for tensor, need, name in zip(tensors, needs, ["x", "weight", "bias"]):
        assert (tensor.grad is not None) == need, name
    wanted = needs.index(True)
    reference = minigrad.tensor(arrays[wanted], requires_grad=True)
    others = [minigrad.tensor(a) for a in arrays]
    others[wanted] = reference
    Conv2d(1, 1)(*others).backward(minigrad.tensor(dy))
    numpy.testing.assert_allclose(tensors[wanted].grad.numpy(), reference.grad.numpy(), rtol=1e-12, atol=1e-12)


def test_winograd_edge_cases_zero_batch_mixed_dtypes_wide_padding():
    rng = numpy.random.default_rng(11)
    empty = winograd_conv(minigrad.tensor(numpy.zeros((0, 3, 5, 5))), minigrad.tensor(numpy.ones((2, 3, 3, 3))))
    assert empty.shape == (0, 2, 5, 5)
    x32, w64 = rng.standard_normal((2, 3, 4, 5)).astype(numpy.float32), rng.standard_normal((2, 3, 3, 3))
    mixed = winograd_conv(minigrad.tensor(x32), minigrad.tensor(w64))
    assert mixed.dtype == numpy.float64                          # as numpy.result_type (and im2col) give
    numpy.testing.assert_allclose(mixed.detach().numpy(), conv2d_reference(x32, w64, padding=1), rtol=1e-6, atol=1e-6)
    wide = winograd_conv(minigrad.tensor(x32.astype(numpy.float64)), minigrad.tensor(w64), padding=3)
    numpy.testing.assert_allclose(wide.detach().numpy(), conv2d_reference(x32, w64, padding=3), rtol=1e-10, atol=1e-12)


def test_conv2d_of_integers_with_16_channels_stays_exact():
    rng = numpy.random.default_rng(12)
    x, w = rng.integers(-3, 4, (1, 16, 4, 4)), rng.integers(-3, 4, (2, 16, 3, 3))
    y = conv2d(minigrad.tensor(x), minigrad.tensor(w), padding=1)
    numpy.testing.assert_array_equal(y.detach().numpy(), conv2d_reference(x, w, padding=1))


def test_winograd_refuses_integer_input_with_a_clear_error():
    x, w = numpy.ones((1, 2, 4, 4), numpy.int64), numpy.ones((2, 2, 3, 3), numpy.int64)
    with pytest.raises(TypeError, match="floating-point.*int64 and int64"):
        winograd_conv(minigrad.tensor(x), minigrad.tensor(w))


def test_winograd_errors_name_the_shapes():
    with pytest.raises(ValueError, match=r"3x3 kernel.*\(2, 3, 5, 5\)"):
        winograd_conv(minigrad.tensor(numpy.zeros((1, 3, 6, 6))), minigrad.tensor(numpy.zeros((2, 3, 5, 5))))
    with pytest.raises(ValueError, match="expects C = 4"):
        winograd_conv(minigrad.tensor(numpy.zeros((1, 3, 6, 6))), minigrad.tensor(numpy.zeros((2, 4, 3, 3))))
    with pytest.raises(ValueError, match="padding >= 0"):
        winograd.Conv2dWinograd(-1)
