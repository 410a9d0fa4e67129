"""The fast layer's Winograd convolution (minigrad/fast/winograd.py): chunks and threads give the
one-chunk result, chunks follow the tuning file, and conv2d picks Winograd only where it suits."""
import numpy
import pytest

import minigrad
from minigrad.fast import conv as fast_conv, threads, tuning, winograd as fast_winograd
from minigrad.ops.conv import conv2d

needs_kernels = pytest.mark.skipif(not fast_winograd.numba_cpu.numba_available(),
                                   reason="conv2d picks Winograd only where its Numba kernels can run")


def test_winograd_chunks_and_threads_give_the_one_chunk_result(monkeypatch):
    pytest.importorskip("threadpoolctl")           # without it run_blocks keeps one block: nothing to test
    rng = numpy.random.default_rng(8)
    x_np, w_np = rng.standard_normal((5, 3, 6, 6)), rng.standard_normal((4, 3, 3, 3))
    dy = rng.standard_normal((5, 4, 6, 6))

    def run():
        x, w = minigrad.tensor(x_np, requires_grad=True), minigrad.tensor(w_np, requires_grad=True)
        y = fast_winograd.Conv2dWinogradFast(1)(x, w)
        y.backward(minigrad.tensor(dy))
        return y.detach().numpy(), x.grad.numpy(), w.grad.numpy()

    whole = run()
    monkeypatch.setattr(tuning, "WINOGRAD_CHUNK_BYTES", 1)                     # one image per chunk
    monkeypatch.setattr(tuning, "WINOGRAD_MIN_TILES", 1)                       # (no floor of tiles)
    monkeypatch.setattr(threads, "threads_for_blocks", lambda: 2)       # two blocks of chunks
    for name, ours, expected in zip(["y", "dx", "dw"], run(), whole):
        numpy.testing.assert_allclose(ours, expected, rtol=1e-12, atol=1e-12, err_msg=name)


def test_winograd_chunks_hold_the_cache_budget_or_enough_tiles(monkeypatch):
    """Narrow layers: chunks of tuning.WINOGRAD_CHUNK_BYTES of V. Wide layers: at least tuning.WINOGRAD_MIN_TILES tiles a chunk."""
    monkeypatch.setattr(tuning, "CHUNKS_AT_LEAST", 1)             # the budget alone decides the chunks
    def images_per_chunk(shape):
        function = fast_winograd.Conv2dWinogradFast(1)
        function.out_size = shape[2:]
        return [c.stop - c.start for part in function._parts(numpy.zeros(shape, numpy.float32)) for c in part]

    v_bytes_per_image = 16 * 16 * 16 * 16 * 4                               # 16 channels, 16x16 tiles
    assert images_per_chunk((8, 16, 32, 32)) == [tuning.WINOGRAD_CHUNK_BYTES // v_bytes_per_image] * 4
    assert images_per_chunk((64, 512, 4, 4)) == [tuning.WINOGRAD_MIN_TILES // 4] * 2   # 4 tiles an image


# ------------------------------------------------------------------ which algorithm conv2d picks
def _function_used(x, w, **options):
    y = conv2d(minigrad.tensor(x, requires_grad=True), minigrad.tensor(w), **options)
    return type(y.grad_fn).__name__


@needs_kernels
def test_conv2d_picks_winograd_only_where_it_suits():
    x16, w16 = numpy.zeros((1, 16, 8, 8)), numpy.zeros((8, 16, 3, 3))
    assert _function_used(x16, w16, padding=1) == "Conv2dWinogradFast"
    assert _function_used(x16, w16, stride=2, padding=1) == "Conv2dFast"                     # stride 2
    assert _function_used(x16, w16, dilation=2, padding=2) == "Conv2dFast"                   # dilated
    assert _function_used(x16, numpy.zeros((8, 8, 3, 3)), groups=2, padding=1) == "Conv2dFast"
    assert _function_used(x16, numpy.zeros((8, 16, 1, 1))) == "Conv2dFast"                   # 1x1
    assert _function_used(numpy.zeros((1, 16, 4, 4)), w16, padding=1) == "Conv2dFast"        # 4x4 images
    assert _function_used(numpy.zeros((1, 3, 6, 6)), numpy.zeros((8, 3, 3, 3)), padding=1) == "Conv2dFast"  # C < 16
    ints = numpy.zeros((1, 16, 6, 6), numpy.int64), numpy.zeros((8, 16, 3, 3), numpy.int64)
    assert not fast_winograd.suits(*ints, (1, 1), (1, 1), 1)                                  # integers: exact im2col
    fast_conv.install(use_winograd=False)                                                # a comparison's im2col
    try:
        assert _function_used(x16, w16, padding=1) == "Conv2dFast"
    finally:
        fast_conv.install()




def test_the_winograd_thresholds_come_from_the_tuning_file(monkeypatch):
    x16, w16 = numpy.zeros((1, 16, 8, 8)), numpy.zeros((8, 16, 3, 3))
    assert fast_winograd.suits(x16, w16, (1, 1), (1, 1), 1)
    monkeypatch.setattr(tuning, "WINOGRAD_MIN_CHANNELS", 17)
    assert not fast_winograd.suits(x16, w16, (1, 1), (1, 1), 1)
    monkeypatch.setattr(tuning, "WINOGRAD_MIN_CHANNELS", 16)
    monkeypatch.setattr(tuning, "WINOGRAD_MIN_PIXELS", 65)
    assert not fast_winograd.suits(x16, w16, (1, 1), (1, 1), 1)
