"""The fast layer's convolution (minigrad/fast/conv.py) gives the reference's numbers, however it cuts
the batch (tuning.CONV_CHUNK_BYTES), orders dW (tuning.CONV_DW_TRANSPOSED_MAX_BYTES) or keeps cols
(tuning.CONV_KEEP_COLS_MAX_GROWTH). Thresholds are set in the one tuning file, minigrad/fast/tuning.py."""
import numpy
import pytest
from hypothesis import given, settings

import minigrad
from minigrad.fast import conv as fast_conv, threads, tuning
from minigrad.ops import registry
from minigrad.ops.conv import Conv2d, conv2d, conv2d_reference
from test_ops_conv import conv_configs


def test_conv2d_runs_the_fast_layer_when_it_is_installed():
    x, w = numpy.zeros((2, 3, 5, 5)), numpy.zeros((4, 3, 3, 3))
    assert type(registry.faster(Conv2d(), x, w)) is fast_conv.Conv2dFast


def test_without_the_fast_layer_conv2d_runs_the_reference(reference_only):
    x, w = numpy.zeros((2, 3, 5, 5)), numpy.zeros((4, 3, 3, 3))
    assert type(registry.faster(Conv2d(), x, w)) is Conv2d


@settings(max_examples=30, deadline=None)
@given(conv_configs())
def test_fast_conv2d_equals_the_reference_forward_and_backward(config):
    x_np, w_np, b_np, options = config
    results = []
    for function in (Conv2d(**options), fast_conv.Conv2dFast(**options)):
        x, w, b = (minigrad.tensor(a, requires_grad=True) for a in (x_np, w_np, b_np))
        y = function(x, w, b)
        y.backward(numpy.cos(numpy.arange(y.detach().numpy().size)).reshape(y.shape))
        results.append((y.detach().numpy(), x.grad.numpy(), w.grad.numpy(), b.grad.numpy()))
    for name, fast, reference in zip(["y", "dx", "dw", "db"], results[1], results[0]):
        numpy.testing.assert_allclose(fast, reference, rtol=1e-10, atol=1e-12, err_msg=name)


@pytest.mark.parametrize("images_per_chunk", [1, 2])
def test_conv2d_in_chunks_gives_the_whole_batch_result(monkeypatch, images_per_chunk):
    """One-image chunks write y[n] in place (no transpose); 2-image chunks (2 + 1 here) transpose."""
    rng = numpy.random.default_rng(5)
    x_np, w_np, b_np = rng.standard_normal((3, 4, 6, 5)), rng.standard_normal((6, 2, 3, 2)), rng.standard_normal(6)
    dy = rng.standard_normal((3, 6, 3, 6))

    def run():
        x, w, b = (minigrad.tensor(a, requires_grad=True) for a in (x_np, w_np, b_np))
        y = conv2d(x, w, b, stride=(2, 1), padding=1, groups=2)
        y.backward(dy)
        return y.detach().numpy(), x.grad.numpy(), w.grad.numpy(), b.grad.numpy()

    whole = run()
    bytes_per_image = 4 * 3 * 2 * 3 * 6 * 8                          # C*KH*KW*OH*OW*8 bytes of float64 cols
    monkeypatch.setattr(tuning, "CONV_CHUNK_BYTES", images_per_chunk * bytes_per_image)
    monkeypatch.setattr(tuning, "CHUNKS_AT_LEAST", 1)                # the budget alone decides the chunks
    calls = []                                                        # the images of each im2col call
    real_im2col = fast_conv.im2col
    monkeypatch.setattr(fast_conv, "im2col", lambda *args: calls.append(args[0].shape[0]) or real_im2col(*args))
    chunked = run()
    forward_calls = [1, 1, 1] if images_per_chunk == 1 else [2, 1]
    assert calls[:len(forward_calls)] == forward_calls
    for name, ours, expected in zip(["y", "dx", "dw", "db"], chunked, whole):
        numpy.testing.assert_allclose(ours, expected, rtol=1e-12, atol=1e-12, err_msg=name)


@pytest.mark.parametrize("groups", [1, 2])
def test_conv2d_weight_gradient_in_either_product_order(monkeypatch, groups):
    """tuning.CONV_DW_TRANSPOSED_MAX_BYTES: small weights sum dW^T = cols @ dY^T and transpose it, large ones sum
    dW = dY @ cols^T. Both orders pass a float64 gradient check and give the same dW."""
    rng = numpy.random.default_rng(9)
    x_np, w_np = rng.standard_normal((2, 4, 5, 6)), rng.standard_normal((6, 4 // groups, 3, 2))
    dy = rng.standard_normal((2, 6, 3, 7))
    weight_gradients = []
    for threshold in (1 << 40, 0):                     # every weight "small", then every weight "large"
        monkeypatch.setattr(tuning, "CONV_DW_TRANSPOSED_MAX_BYTES", threshold)
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
    per thin product: with tuning.CONV_CHUNK_BYTES at 1 byte and CHUNKS_AT_LEAST 1, a batch whose cols is smaller than the
    weight goes through in one chunk (one im2col call), not in four one-image chunks."""
    rng = numpy.random.default_rng(10)
    x_np, w_np = rng.standard_normal((4, 8, 2, 2)), rng.standard_normal((64, 8, 3, 3))
    assert 4 * (8 * 9 * 2 * 2 * 8) <= w_np.nbytes                 # the batch's cols (float64) <= the weight
    calls = []
    real_im2col = fast_conv.im2col
    monkeypatch.setattr(fast_conv, "im2col", lambda *args: calls.append(args[0].shape[0]) or real_im2col(*args))
    monkeypatch.setattr(tuning, "CHUNKS_AT_LEAST", 1)
    monkeypatch.setattr(tuning, "CONV_CHUNK_BYTES", 1)
    y = fast_conv.Conv2dFast(1, 1)(minigrad.tensor(x_np), minigrad.tensor(w_np))
    assert calls == [4]
    numpy.testing.assert_allclose(y.detach().numpy(), conv2d_reference(x_np, w_np, padding=1), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("kernel, stride, kept", [(3, 2, True), (1, 2, True), (3, 1, False), (7, 2, False)])
def test_strided_conv_keeps_cols_from_forward_and_backward_uses_them(monkeypatch, kernel, stride, kept):
    """tuning.CONV_KEEP_COLS_MAX_GROWTH: a 3x3 or 1x1 layer at stride 2 keeps each chunk's cols (2.25x and 0.25x x),
    so backward runs no im2col; a 7x7 layer at stride 2 (12.25x) and stride-1 layers rebuild it.
    The gradients are the same either way, and a second backward (retain_graph) rebuilds cols."""
    calls = []
    real_im2col = fast_conv.im2col

    def counting_im2col(*args):
        calls.append(args[0].shape[0])
        return real_im2col(*args)

    monkeypatch.setattr(fast_conv, "im2col", counting_im2col)
    monkeypatch.setattr(tuning, "CONV_CHUNK_BYTES", 1)                # one image per chunk: 3 chunks
    rng = numpy.random.default_rng(6)
    x_np, w_np = rng.standard_normal((3, 2, 9, 9)), rng.standard_normal((4, 2, kernel, kernel))
    x, w = minigrad.tensor(x_np, requires_grad=True), minigrad.tensor(w_np, requires_grad=True)
    y = fast_conv.Conv2dFast(stride, kernel // 2)(x, w)          # im2col for every stride (no Winograd)
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
    numpy.testing.assert_allclose(y.detach().numpy(), expected, rtol=1e-12, atol=1e-12)


def test_kept_cols_of_other_chunks_are_not_used(monkeypatch):
    """If backward cuts the batch into other chunks than forward did (the tuning changed in between),
    the kept cols do not fit: backward rebuilds cols and the gradients stay right."""
    monkeypatch.setattr(tuning, "CHUNKS_AT_LEAST", 1)             # the budget alone decides the chunks
    rng = numpy.random.default_rng(8)
    x_np, w_np = rng.standard_normal((4, 2, 7, 7)), rng.standard_normal((3, 2, 3, 3))
    dy = rng.standard_normal((4, 3, 4, 4))

    def gradients(chunk_bytes_backward):
        x, w = minigrad.tensor(x_np, requires_grad=True), minigrad.tensor(w_np, requires_grad=True)
        monkeypatch.setattr(tuning, "CONV_CHUNK_BYTES", 1)              # forward: one image per chunk
        y = fast_conv.Conv2dFast(2, 1)(x, w)
        monkeypatch.setattr(tuning, "CONV_CHUNK_BYTES", chunk_bytes_backward)
        y.backward(dy)
        return x.grad.numpy(), w.grad.numpy()

    calls = []
    real_im2col = fast_conv.im2col
    monkeypatch.setattr(fast_conv, "im2col", lambda *args: calls.append(args[0].shape[0]) or real_im2col(*args))
    same_chunks = gradients(1)
    assert calls == [1, 1, 1, 1]                     # forward's four chunks; backward used the kept cols
    calls.clear()
    other_chunks = gradients(1 << 30)                                      # backward: one chunk of 4
    assert calls[:4] == [1, 1, 1, 1] and sum(calls[4:]) == 4   # then backward rebuilt all four images' cols
    for name, a, b in zip(["dx", "dw"], other_chunks, same_chunks):
        numpy.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-12, err_msg=name)


@pytest.mark.parametrize("case", ["no_grad", "frozen weight"])
def test_strided_conv_keeps_no_cols_when_no_weight_gradient_will_be_asked(monkeypatch, case):
    """Under no_grad nothing is recorded, and with a frozen weight backward needs no cols for dW:
    forward must not hold every chunk's cols (for inference that would be 2.25x the input, wasted)."""
    decisions = []                                   # what forward decided, seen while it runs
    real_keeps_cols = fast_conv.Conv2dFast._keeps_cols
    monkeypatch.setattr(fast_conv.Conv2dFast, "_keeps_cols",
                        lambda self, x: decisions.append(real_keeps_cols(self, x)) or decisions[-1])
    rng = numpy.random.default_rng(9)
    x = minigrad.tensor(rng.standard_normal((2, 3, 9, 9)), requires_grad=(case == "frozen weight"))
    w = minigrad.tensor(rng.standard_normal((4, 3, 3, 3)), requires_grad=False)
    function = fast_conv.Conv2dFast(2, 1)
    if case == "no_grad":
        with minigrad.no_grad():
            function(x, w)
    else:
        y = function(x, w)
        assert function.saved[-1] is None              # kept_cols: nothing kept
        y.backward(numpy.ones(y.shape))
        assert x.grad is not None and w.grad is None
    assert decisions == [False]
    assert function.saved is None or function.saved[-1] is None


def test_a_transposed_weight_gradient_is_copied_into_contiguous_memory():
    """A small weight's dW is summed as dW^T and returned as a transposed view: the leaf cannot adopt
    a non-contiguous array, so it gets a contiguous copy with the same numbers."""
    rng = numpy.random.default_rng(0)
    x = minigrad.tensor(rng.standard_normal((2, 3, 6, 6)), requires_grad=True)
    w = minigrad.tensor(rng.standard_normal((4, 3, 3, 3)), requires_grad=True)
    y = fast_conv.Conv2dFast(2, 1)(x, w)
    y.backward(numpy.ones(y.shape))
    assert w.grad.array.flags.c_contiguous
    reference_w = minigrad.tensor(w.detach().numpy(), requires_grad=True)
    Conv2d(2, 1)(minigrad.tensor(x.detach().numpy()), reference_w).backward(numpy.ones(y.shape))
    numpy.testing.assert_allclose(w.grad.numpy(), reference_w.grad.numpy(), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("dtypes", [("float32", "float32", "float64"), ("int64", "int64", "float64"),
                                    ("float64", "float32", "float32")])
@pytest.mark.parametrize("channels", [4, 16])                       # 16: the fast layer picks Winograd
def test_fast_conv2d_gives_the_reference_dtype_for_every_mix_of_input_weight_and_bias(dtypes, channels):
    rng = numpy.random.default_rng(4)
    x_np = rng.integers(-3, 4, (2, channels, 8, 8)).astype(dtypes[0])
    w_np = rng.integers(-3, 4, (5, channels, 3, 3)).astype(dtypes[1])
    b_np = (rng.standard_normal(5) / 3).astype(dtypes[2])
    fast = conv2d(minigrad.tensor(x_np), minigrad.tensor(w_np), minigrad.tensor(b_np), padding=1)
    with_reference = Conv2d(padding=1)(minigrad.tensor(x_np), minigrad.tensor(w_np), minigrad.tensor(b_np))
    assert fast.dtype == with_reference.dtype == numpy.result_type(x_np, w_np, b_np)
    numpy.testing.assert_allclose(fast.detach().numpy(), with_reference.detach().numpy(), rtol=1e-5, atol=1e-5)


def test_a_leaf_adopts_the_pooled_dx_of_the_fast_conv_and_a_later_step_does_not_overwrite_it(monkeypatch):
    """Conv2dFast's dx comes from the buffer pool (a view of a pooled buffer): the leaf takes it without a
    copy, and the pool hands that buffer out again only once the gradient is dropped."""
    returned = []
    real_backward = fast_conv.Conv2dFast.backward
    monkeypatch.setattr(fast_conv.Conv2dFast, "backward", lambda self, dy: returned.append(real_backward(self, dy)) or returned[-1])
    rng = numpy.random.default_rng(2)
    x = minigrad.tensor(rng.standard_normal((64, 16, 16, 16)).astype(numpy.float32), requires_grad=True)  # 1 MiB dx
    w = minigrad.tensor(rng.standard_normal((16, 16, 3, 3)).astype(numpy.float32), requires_grad=True)
    y = fast_conv.Conv2dFast(2, 1)(x, w)
    y.backward(numpy.ones(y.shape, numpy.float32))
    assert x.grad.array is returned[0][0]
    first = x.grad.numpy().copy()
    x2 = minigrad.tensor(x.detach().numpy() * 2, requires_grad=True)
    y2 = fast_conv.Conv2dFast(2, 1)(x2, w)
    y2.backward(numpy.full(y2.shape, 3.0, numpy.float32))
    numpy.testing.assert_array_equal(x.grad.numpy(), first)       # the pool did not reuse x.grad's buffer


# ------------------------------------------------------------------ the direct loops (Conv2dDirect)
needs_numba = pytest.mark.skipif(not fast_conv.cpu_kernels.numba_cpu.numba_available(),
                                 reason="conv2d picks the direct loops only where their Numba kernels can run")


@needs_numba
@pytest.mark.parametrize("x_shape, w_shape", [((128, 3, 32, 32), (6, 3, 5, 5)),      # LeNet conv1
                                              ((128, 6, 14, 14), (16, 6, 5, 5)),     # LeNet conv2
                                              ((4, 1, 28, 28), (6, 1, 5, 5))])       # the classic MNIST LeNet-5
def test_conv2d_picks_the_direct_loops_for_lenets_layers(x_shape, w_shape):
    x, w = numpy.zeros(x_shape, numpy.float32), numpy.zeros(w_shape, numpy.float32)
    assert type(registry.faster(Conv2d(), x, w)) is fast_conv.Conv2dDirect


@pytest.mark.parametrize("x_shape, w_shape, stride", [((128, 3, 32, 32), (16, 3, 3, 3), 1),      # ResNet-20's stem
                                                      ((128, 16, 32, 32), (16, 16, 3, 3), 1),
                                                      ((128, 16, 32, 32), (32, 16, 3, 3), 2),
                                                      ((128, 32, 16, 16), (32, 32, 3, 3), 1),
                                                      ((128, 32, 16, 16), (64, 32, 3, 3), 2),
                                                      ((128, 64, 8, 8), (64, 64, 3, 3), 1),
                                                      ((128, 16, 32, 32), (32, 16, 1, 1), 2),     # a 1x1 shortcut
                                                      ((8, 6, 14, 14), (16, 6, 5, 5), 2),          # strided 5x5
                                                      ((8, 32, 14, 14), (16, 32, 5, 5), 1)])       # many channels
def test_conv2d_keeps_im2col_or_winograd_where_the_direct_loops_do_not_suit(x_shape, w_shape, stride):
    x, w = numpy.zeros(x_shape, numpy.float32), numpy.zeros(w_shape, numpy.float32)
    assert type(registry.faster(Conv2d(stride, padding=w_shape[2] // 2), x, w)) is not fast_conv.Conv2dDirect


@needs_numba
@pytest.mark.parametrize("padding", [0, 2, (1, 3)])
def test_direct_conv2d_equals_the_reference_forward_and_backward(padding):
    rng = numpy.random.default_rng(9)
    x_np, w_np, b_np = rng.standard_normal((3, 4, 11, 10)), rng.standard_normal((5, 4, 5, 5)), rng.standard_normal(5)
    results = []
    for function in (Conv2d(padding=padding), fast_conv.Conv2dDirect(padding=padding)):
        x, w, b = (minigrad.tensor(a, requires_grad=True) for a in (x_np, w_np, b_np))
        y = function(x, w, b)
        y.backward(numpy.sin(numpy.arange(y.detach().numpy().size)).reshape(y.shape))
        results.append((y.detach().numpy(), x.grad.numpy(), w.grad.numpy(), b.grad.numpy()))
    for name, fast, reference in zip(["y", "dx", "dw", "db"], results[1], results[0]):
        numpy.testing.assert_allclose(fast, reference, rtol=1e-10, atol=1e-11, err_msg=name)


@needs_numba
def test_gradcheck_through_conv2d_with_the_direct_loops():
    from minigrad.utils.gradcheck import gradcheck
    rng = numpy.random.default_rng(10)
    x, w, b = (minigrad.tensor(rng.standard_normal(s), requires_grad=True) for s in ((2, 3, 7, 6), (4, 3, 5, 5), (4,)))
    assert type(registry.faster(Conv2d(padding=1), x, w)) is fast_conv.Conv2dDirect
    assert gradcheck(lambda x, w, b: conv2d(x, w, b, padding=1), [x, w, b])


@needs_numba
@pytest.mark.parametrize("dtypes", [("float32", "float32", "float64"), ("float64", "float64", "float32"),
                                    ("float32", "float32", "float32")])
def test_direct_conv2d_gives_the_reference_dtype(dtypes):
    rng = numpy.random.default_rng(11)
    x_np = rng.standard_normal((2, 3, 9, 9)).astype(dtypes[0])
    w_np = rng.standard_normal((4, 3, 5, 5)).astype(dtypes[1])
    b_np = rng.standard_normal(4).astype(dtypes[2])
    assert type(registry.faster(Conv2d(), x_np, w_np)) is fast_conv.Conv2dDirect
    fast = conv2d(minigrad.tensor(x_np), minigrad.tensor(w_np), minigrad.tensor(b_np))
    with_reference = Conv2d()(minigrad.tensor(x_np), minigrad.tensor(w_np), minigrad.tensor(b_np))
    assert fast.dtype == with_reference.dtype == numpy.result_type(x_np, w_np, b_np)
    numpy.testing.assert_allclose(fast.detach().numpy(), with_reference.detach().numpy(), rtol=1e-4, atol=1e-4)
    grads = []
    for function in (lambda *t: conv2d(*t), lambda *t: Conv2d()(*t)):            # fast, then the reference
        tensors = [minigrad.tensor(a, requires_grad=True) for a in (x_np, w_np, b_np)]
        function(*tensors).sum().backward()
        grads.append([t.grad for t in tensors])
    for ours, reference in zip(*grads):
        assert ours.dtype == reference.dtype, (ours.dtype, reference.dtype)
        numpy.testing.assert_allclose(ours.numpy(), reference.numpy(), rtol=1e-4, atol=1e-4)
