"""conv2d and im2col/col2im: layout, adjointness, the loop reference, gradients, PyTorch, errors."""
import numpy
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import minigrad
from minigrad.ops import registry
from minigrad.ops.cpu_threads import image_chunks
from minigrad.ops.conv import conv2d, conv2d_reference
from minigrad.ops.im2col import col2im, col2im_numpy, conv_output_size, im2col, im2col_numpy
from torch_compare import compare_with_torch


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
    ours = conv2d(minigrad.tensor(x), minigrad.tensor(weight), minigrad.tensor(bias), **options).numpy()
    numpy.testing.assert_allclose(ours, conv2d_reference(x, weight, bias, **options), rtol=1e-10, atol=1e-12)


def test_conv2d_without_bias_equals_the_loop_reference():
    rng = numpy.random.default_rng(2)
    x, weight = rng.standard_normal((2, 3, 5, 5)), rng.standard_normal((4, 3, 3, 3))
    ours = conv2d(minigrad.tensor(x), minigrad.tensor(weight), padding=1).numpy()
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


@pytest.mark.parametrize("images_per_chunk", [1, 2])
def test_conv2d_in_chunks_gives_the_whole_batch_result(monkeypatch, images_per_chunk):
    """One-image chunks write y[n] in place (no transpose); 2-image chunks (2 + 1 here) transpose."""
    from minigrad.ops import conv as conv_module

    rng = numpy.random.default_rng(5)
    x_np, w_np, b_np = rng.standard_normal((3, 4, 6, 5)), rng.standard_normal((6, 2, 3, 2)), rng.standard_normal(6)
    dy = rng.standard_normal((3, 6, 3, 6))

    def run():
        x, w, b = (minigrad.tensor(a, requires_grad=True) for a in (x_np, w_np, b_np))
        y = conv2d(x, w, b, stride=(2, 1), padding=1, groups=2)
        y.backward(dy)
        return y.numpy(), x.grad.numpy(), w.grad.numpy(), b.grad.numpy()

    whole = run()
    bytes_per_image = 4 * 3 * 2 * 3 * 6 * 8                          # C*KH*KW*OH*OW*8 bytes of float64 cols
    monkeypatch.setitem(conv_module.CHUNK_BYTES, "cpu", images_per_chunk * bytes_per_image)
    chunks = image_chunks(3, bytes_per_image, conv_module.CHUNK_BYTES["cpu"])
    assert [c.stop - c.start for c in chunks] == ([1, 1, 1] if images_per_chunk == 1 else [2, 1])
    for name, chunked, expected in zip(["y", "dx", "dw", "db"], run(), whole):
        numpy.testing.assert_allclose(chunked, expected, rtol=1e-12, atol=1e-12, err_msg=name)


@pytest.mark.parametrize("groups", [1, 2])
def test_conv2d_weight_gradient_in_either_product_order(monkeypatch, groups):
    """DW_TRANSPOSED_UP_TO: small weights sum dW^T = cols @ dY^T and transpose it, large ones sum
    dW = dY @ cols^T. Both orders pass a float64 gradient check and give the same dW."""
    from minigrad.ops import conv as conv_module

    rng = numpy.random.default_rng(9)
    x_np, w_np = rng.standard_normal((2, 4, 5, 6)), rng.standard_normal((6, 4 // groups, 3, 2))
    dy = rng.standard_normal((2, 6, 3, 7))
    weight_gradients = []
    for threshold in (1 << 40, 0):                     # every weight "small", then every weight "large"
        monkeypatch.setattr(conv_module, "DW_TRANSPOSED_UP_TO", threshold)
        x, w = minigrad.tensor(x_np, requires_grad=True), minigrad.tensor(w_np, requires_grad=True)

        def layer(x, w):
            return conv2d(x, w, stride=(2, 1), padding=1, groups=groups)

        assert minigrad.gradcheck(layer, [x, w])
        x.grad, w.grad = None, None
        layer(x, w).backward(dy)
        assert w.grad.shape == w_np.shape
        weight_gradients.append(w.grad.numpy())
    numpy.testing.assert_allclose(weight_gradients[1], weight_gradients[0], rtol=1e-12, atol=1e-12)


def test_conv2d_chunk_budget_is_never_below_the_weight_size(monkeypatch):
    """The chunk budget is at least the weight's bytes, so a large weight is not packed by the BLAS once
    per thin product: with CHUNK_BYTES at 1 byte and one thread, a batch whose cols is smaller than the
    weight goes through in one chunk (one im2col call), not in four one-image chunks."""
    from minigrad.ops import conv as conv_module
    from minigrad.ops import cpu_threads

    rng = numpy.random.default_rng(10)
    x_np, w_np = rng.standard_normal((4, 8, 2, 2)), rng.standard_normal((64, 8, 3, 3))
    assert 4 * (8 * 9 * 2 * 2 * 8) <= w_np.nbytes                 # the batch's cols (float64) <= the weight
    calls = []
    real_im2col = conv_module.im2col
    monkeypatch.setattr(conv_module, "im2col", lambda *args: calls.append(args[0].shape[0]) or real_im2col(*args))
    monkeypatch.setattr(cpu_threads, "threads_for_blocks", lambda: 1)
    monkeypatch.setitem(conv_module.CHUNK_BYTES, "cpu", 1)
    y = conv_module.Conv2d(1, 1)(minigrad.tensor(x_np), minigrad.tensor(w_np))
    assert calls == [4]
    numpy.testing.assert_allclose(y.numpy(), conv2d_reference(x_np, w_np, padding=1), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("kernel, stride, kept", [(3, 2, True), (1, 2, True), (3, 1, False), (7, 2, False)])
def test_strided_conv_keeps_cols_from_forward_and_backward_uses_them(monkeypatch, kernel, stride, kept):
    """KEEP_COLS_UP_TO: a 3x3 or 1x1 layer at stride 2 keeps each chunk's cols (2.25x and 0.25x x),
    so backward runs no im2col; a 7x7 layer at stride 2 (12.25x) and stride-1 layers rebuild it.
    The gradients are the same either way, and a second backward (retain_graph) rebuilds cols."""
    from minigrad.ops import conv as conv_module

    calls = []
    real_im2col = conv_module.im2col

    def counting_im2col(*args):
        calls.append(args[0].shape[0])
        return real_im2col(*args)

    monkeypatch.setattr(conv_module, "im2col", counting_im2col)
    monkeypatch.setitem(conv_module.CHUNK_BYTES, "cpu", 1)                # one image per chunk: 3 chunks
    rng = numpy.random.default_rng(6)
    x_np, w_np = rng.standard_normal((3, 2, 9, 9)), rng.standard_normal((4, 2, kernel, kernel))
    x, w = minigrad.tensor(x_np, requires_grad=True), minigrad.tensor(w_np, requires_grad=True)
    y = conv_module.Conv2d(stride, kernel // 2)(x, w)          # im2col for every stride (no Winograd)
    assert len(calls) == 3
    dy = rng.standard_normal(y.shape)
    y.backward(dy, retain_graph=True)
    assert len(calls) == (3 if kept else 6)
    first = (x.grad.numpy().copy(), w.grad.numpy().copy())
    x.grad, w.grad = None, None
    y.backward(dy)                                              # kept cols were used up: rebuilt
    assert len(calls) == (6 if kept else 9)
    for name, again, once in zip(["dx", "dw"], (x.grad.numpy(), w.grad.numpy()), first):
        numpy.testing.assert_array_equal(again, once, err_msg=name)
    expected = conv2d_reference(x_np, w_np, stride=stride, padding=kernel // 2)
    numpy.testing.assert_allclose(y.numpy(), expected, rtol=1e-12, atol=1e-12)


def test_kept_cols_of_other_chunks_are_not_used(monkeypatch):
    """If backward cuts the batch into other chunks than forward did (the thread count changed in
    between), the kept cols do not fit: backward rebuilds cols and the gradients stay right."""
    from minigrad.ops import conv as conv_module

    rng = numpy.random.default_rng(8)
    x_np, w_np = rng.standard_normal((4, 2, 7, 7)), rng.standard_normal((3, 2, 3, 3))
    dy = rng.standard_normal((4, 3, 4, 4))

    def gradients(chunk_bytes_backward):
        x, w = minigrad.tensor(x_np, requires_grad=True), minigrad.tensor(w_np, requires_grad=True)
        monkeypatch.setitem(conv_module.CHUNK_BYTES, "cpu", 1)              # forward: one image per chunk
        y = conv_module.Conv2d(2, 1)(x, w)
        monkeypatch.setitem(conv_module.CHUNK_BYTES, "cpu", chunk_bytes_backward)
        y.backward(dy)
        return x.grad.numpy(), w.grad.numpy()

    calls = []
    real_im2col = conv_module.im2col
    monkeypatch.setattr(conv_module, "im2col", lambda *args: calls.append(args[0].shape[0]) or real_im2col(*args))
    same_chunks = gradients(1)
    assert calls == [1, 1, 1, 1]                     # forward's four chunks; backward used the kept cols
    calls.clear()
    other_chunks = gradients(1 << 30)                                      # backward: one chunk of 4
    assert calls[:4] == [1, 1, 1, 1] and sum(calls[4:]) == 4   # then backward rebuilt all four images' cols
    for name, a, b in zip(["dx", "dw"], other_chunks, same_chunks):
        numpy.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-12, err_msg=name)


@pytest.mark.parametrize("case", ["no_grad", "frozen weight"])
def test_strided_conv_keeps_no_cols_when_no_weight_gradient_will_be_asked(case):
    """Under no_grad nothing is recorded, and with a frozen weight backward needs no cols for dW:
    forward must not hold every chunk's cols (for inference that would be 2.25x the input, wasted)."""
    from minigrad.ops import conv as conv_module

    rng = numpy.random.default_rng(9)
    x = minigrad.tensor(rng.standard_normal((2, 3, 9, 9)), requires_grad=(case == "frozen weight"))
    w = minigrad.tensor(rng.standard_normal((4, 3, 3, 3)), requires_grad=False)
    function = conv_module.Conv2d(2, 1)
    if case == "no_grad":
        with minigrad.no_grad():
            function(x, w)
    else:
        y = function(x, w)
        assert function.saved[-1] is None              # kept_cols: nothing kept
        y.backward(numpy.ones(y.shape))
        assert x.grad is not None and w.grad is None
    assert function.saved is None or function.saved[-1] is None
