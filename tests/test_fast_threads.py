"""minigrad/fast/threads.py: blocks of conv chunks on several threads give the one-thread result."""
import numpy
import pytest

import minigrad
from minigrad.fast import threads as cpu_threads, tuning
from minigrad.ops.conv import conv2d


@pytest.mark.parametrize("chunks, count, expected", [
    (list(range(7)), 2, [[0, 1, 2, 3], [4, 5, 6]]),
    (list(range(7)), 3, [[0, 1, 2], [3, 4], [5, 6]]),
    (list(range(2)), 4, [[0], [1]]),            # never more blocks than chunks
    (list(range(5)), 1, [[0, 1, 2, 3, 4]]),
])
def test_split_into_blocks_keeps_order_and_balances(chunks, count, expected):
    assert cpu_threads.split_into_blocks(chunks, count) == expected


def test_run_blocks_returns_results_in_block_order_from_several_threads(monkeypatch):
    import threading

    monkeypatch.setattr(cpu_threads, "threads_for_blocks", lambda: 3)
    if cpu_threads._controller() is None:
        pytest.skip("threadpoolctl is not installed: run_blocks uses one thread")
    names = []

    def work(block):
        names.append(threading.current_thread().name)
        return sum(block)

    assert cpu_threads.run_blocks(work, list(range(9)), "cpu") == [0 + 1 + 2, 3 + 4 + 5, 6 + 7 + 8]
    assert all(name.startswith("minigrad-conv") for name in names)


def test_run_blocks_passes_a_workers_exception_on(monkeypatch):
    monkeypatch.setattr(cpu_threads, "threads_for_blocks", lambda: 2)

    def work(block):
        raise ValueError(f"bad block {block}")

    with pytest.raises(ValueError, match="bad block"):
        cpu_threads.run_blocks(work, [1, 2], "cpu")


def test_run_blocks_uses_one_block_on_the_gpu_device_name(monkeypatch):
    monkeypatch.setattr(cpu_threads, "threads_for_blocks", lambda: 4)
    assert cpu_threads.run_blocks(len, [1, 2, 3], "gpu") == [3]


@pytest.mark.parametrize("threads", [2, 3])
def test_conv2d_on_threads_equals_one_thread(monkeypatch, threads):
    """One image per chunk, the chunks shared out to `threads` blocks: y, dx, dw and db as on one thread."""
    pytest.importorskip("threadpoolctl")           # without it run_blocks keeps one block: nothing to test
    rng = numpy.random.default_rng(7)
    x_np, w_np, b_np = rng.standard_normal((5, 4, 6, 6)), rng.standard_normal((6, 2, 3, 3)), rng.standard_normal(6)
    dy = rng.standard_normal((5, 6, 6, 6))
    monkeypatch.setattr(tuning, "CONV_CHUNK_BYTES", 1)          # every image is its own chunk

    def run():
        x, w, b = (minigrad.tensor(a, requires_grad=True) for a in (x_np, w_np, b_np))
        y = conv2d(x, w, b, padding=1, groups=2)
        y.backward(dy)
        return y.detach().numpy(), x.grad.numpy(), w.grad.numpy(), b.grad.numpy()

    monkeypatch.setattr(cpu_threads, "threads_for_blocks", lambda: 1)
    one_thread = run()
    monkeypatch.setattr(cpu_threads, "threads_for_blocks", lambda: threads)
    for name, ours, expected in zip(["y", "dx", "dw", "db"], run(), one_thread):
        numpy.testing.assert_allclose(ours, expected, rtol=1e-12, atol=1e-12, err_msg=name)


def test_without_threadpoolctl_run_blocks_stays_on_the_calling_thread(monkeypatch):
    import threading

    monkeypatch.setitem(cpu_threads._state, "controller", None)     # as if threadpoolctl were missing
    assert cpu_threads.threads_for_blocks() == 1
    caller = threading.current_thread().name
    assert cpu_threads.run_blocks(lambda block: (threading.current_thread().name, block), [1, 2, 3], "cpu") == \
        [(caller, [1, 2, 3])]


def test_one_chunk_still_runs_its_products_on_one_blas_thread(monkeypatch):
    import contextlib

    asked = []

    class FakeController:
        lib_controllers = []

        def limit(self, limits):                          # records the BLAS thread limit asked for
            asked.append(limits)
            return contextlib.nullcontext()

    monkeypatch.setitem(cpu_threads._state, "controller", FakeController())
    monkeypatch.setattr(cpu_threads, "threads_for_blocks", lambda: 2)
    assert cpu_threads.run_blocks(len, [[1, 2]], "cpu") == [1]
    assert asked == [1]


def test_one_blas_thread_limits_blas_inside_and_restores_it_after():
    """Where BLAS can be limited and has 2 threads: 1 inside the block, 2 again after it."""
    threadpoolctl = pytest.importorskip("threadpoolctl")
    with threadpoolctl.threadpool_limits(limits=2, user_api="blas"):
        controller = cpu_threads._controller()
        if controller is None or not controller.lib_controllers:
            pytest.skip("no BLAS library that threadpoolctl can limit")
        before = [lib.num_threads for lib in controller.lib_controllers]
        if min(before) < 2:
            pytest.skip("BLAS runs on one thread here already")
        with cpu_threads.one_blas_thread("cpu"):
            assert [lib.num_threads for lib in controller.lib_controllers] == [1] * len(before)
        assert [lib.num_threads for lib in controller.lib_controllers] == before


def test_one_blas_thread_is_a_no_op_on_the_gpu_and_without_threadpoolctl(monkeypatch):
    asked = []

    class FakeController:
        lib_controllers = []

        def limit(self, limits):
            asked.append(limits)
            raise AssertionError("must not be called")

    monkeypatch.setitem(cpu_threads._state, "controller", FakeController())
    monkeypatch.setattr(cpu_threads, "threads_for_blocks", lambda: 2)
    with cpu_threads.one_blas_thread("gpu"):
        pass
    monkeypatch.setitem(cpu_threads._state, "controller", None)
    with cpu_threads.one_blas_thread("cpu"):
        pass
    assert asked == []


def test_winograd_weight_transforms_run_on_one_blas_thread(monkeypatch):
    """The (16, 9) @ (9, F*C) products of the weight transforms are small: with 2 BLAS threads
    allowed they must run on one (see one_blas_thread), forward and backward."""
    from minigrad.fast import winograd

    entered = []
    real = cpu_threads.one_blas_thread

    def recording(device):
        entered.append(device)
        return real(device)

    monkeypatch.setattr(winograd, "one_blas_thread", recording)
    rng = numpy.random.default_rng(7)
    x = minigrad.tensor(rng.standard_normal((2, 16, 8, 8)).astype(numpy.float32), requires_grad=True)
    w = minigrad.tensor(rng.standard_normal((16, 16, 3, 3)).astype(numpy.float32), requires_grad=True)
    y = conv2d(x, w, padding=1)
    assert entered == ["cpu"]                         # forward: the weight transform
    y.backward(numpy.ones(y.shape, numpy.float32))
    assert entered == ["cpu", "cpu"]                  # backward: its adjoint


@pytest.mark.parametrize("n, budget, at_least, sizes", [
    (128, 1 << 30, 1, [128]),            # everything fits: one chunk
    (128, 1 << 30, 2, [64, 64]),         # ... but one per thread when two threads run blocks
    (5, 1 << 30, 2, [3, 2]),
    (1, 1 << 30, 2, [1]),                # one image cannot be split
    (10, 300, 2, [3, 2, 3, 2]),          # more chunks than threads: two parts of 5 images, each in 2 chunks
    (11, 400, 2, [3, 3, 3, 2]),          # parts of 6 and 5 images, each in 2 chunks of <= 4
    (128, 700, 1, [7] * 14 + [6] * 5),   # 19 chunks of 6 or 7, not 18 of 7 and a last one of 2
    (128, 700, 2, ([7] * 4 + [6] * 6) * 2),  # two parts of 64 images (a thread's block each), 10 chunks each
    (10, None, 2, [10]),                 # the GPU: one chunk of the whole batch
])
def test_image_chunks_gives_one_chunk_per_thread_at_least(n, budget, at_least, sizes):
    chunks = cpu_threads.image_chunks(n, 100, budget, at_least)
    assert [c.stop - c.start for c in chunks] == sizes
    assert chunks[0].start == 0 and chunks[-1].stop == n
    assert all(a.stop == b.start for a, b in zip(chunks, chunks[1:]))


@pytest.mark.parametrize("threads", [1, 2, 3, 8])
def test_parts_for_cuts_the_same_parts_whatever_the_threads(monkeypatch, threads):
    """The partition depends on the sizes only (tuning.CHUNKS_AT_LEAST parts on the CPU), never on the
    threads, so no result can depend on them; the GPU keeps one chunk."""
    monkeypatch.setattr(cpu_threads, "threads_for_blocks", lambda: threads)
    assert len(cpu_threads.parts_for(128, 100, 1 << 30, "cpu")) == tuning.CHUNKS_AT_LEAST
    assert cpu_threads.parts_for(128, 100, 700, "cpu") == cpu_threads.image_parts(128, 100, 700, tuning.CHUNKS_AT_LEAST)
    assert cpu_threads.parts_for(128, 100, None, "gpu") == [[slice(0, 128)]]


def test_sum_in_order_adds_left_to_right_into_the_first_part():
    parts = [numpy.array([1e16]), numpy.array([1.0]), numpy.array([-1e16])]
    total = cpu_threads.sum_in_order(parts)
    assert total is parts[0] and total.tolist() == [0.0]            # (1e16 + 1) - 1e16 rounds to 0


@pytest.mark.parametrize("threads", [2, 3])
@pytest.mark.parametrize("layer", ["im2col", "winograd"])
def test_gradients_are_bit_for_bit_the_same_on_any_number_of_threads(monkeypatch, threads, layer):
    """A layer cut into many chunks (float32, so that another order of the sums would show): y, dx and
    dW on 2 or 3 threads equal those on 1 thread exactly, not just to rounding."""
    rng = numpy.random.default_rng(11)
    channels = 16 if layer == "winograd" else 4
    x_np = rng.standard_normal((24, channels, 12, 12)).astype(numpy.float32)
    w_np = rng.standard_normal((8, channels, 3, 3)).astype(numpy.float32)
    dy = rng.standard_normal((24, 8, 12, 12)).astype(numpy.float32)
    monkeypatch.setattr(tuning, "CONV_CHUNK_BYTES", 1)                # one image a chunk: 24 partial dWs
    monkeypatch.setattr(tuning, "WINOGRAD_CHUNK_BYTES", 1)
    monkeypatch.setattr(tuning, "WINOGRAD_MIN_TILES", 1)

    def run():
        x, w = minigrad.tensor(x_np, requires_grad=True), minigrad.tensor(w_np, requires_grad=True)
        y = conv2d(x, w, padding=1)
        assert type(y.grad_fn).__name__ == ("Conv2dWinogradFast" if layer == "winograd" else "Conv2dFast")
        y.backward(dy)
        return y.detach().numpy(), x.grad.numpy(), w.grad.numpy()

    if layer == "winograd" and not minigrad.fast.winograd.suits(x_np, w_np, (1, 1), (1, 1), 1):
        pytest.skip("Winograd's Numba kernels are not available")
    monkeypatch.setattr(cpu_threads, "threads_for_blocks", lambda: 1)
    one_thread = run()
    monkeypatch.setattr(cpu_threads, "threads_for_blocks", lambda: threads)
    for name, ours, expected in zip(["y", "dx", "dw"], run(), one_thread):
        numpy.testing.assert_array_equal(ours, expected, err_msg=name)


def test_a_resnet_step_is_the_same_with_one_or_two_blas_threads():
    """End to end, with the thread pools really limited: two SGD steps of a small ResNet give the same
    loss and weights, bit for bit, on 1 and on 2 threads."""
    threadpoolctl = pytest.importorskip("threadpoolctl")
    from minigrad import nn, optim
    from minigrad.models.resnet import resnet20

    rng = numpy.random.default_rng(3)
    images = rng.standard_normal((16, 3, 16, 16)).astype(numpy.float32)
    labels = rng.integers(0, 10, 16)

    def two_steps(threads):
        minigrad.manual_seed(0)
        model = resnet20(num_classes=10)
        optimizer = optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
        losses = []
        with threadpoolctl.threadpool_limits(limits=threads, user_api="blas"):
            for _ in range(2):
                loss = nn.functional.cross_entropy(model(minigrad.tensor(images)), minigrad.tensor(labels))
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()
                losses.append(loss.item())
        return losses, [p.detach().numpy().copy() for p in model.parameters()]

    losses_1, weights_1 = two_steps(1)
    losses_2, weights_2 = two_steps(2)
    assert losses_1 == losses_2
    for index, (a, b) in enumerate(zip(weights_1, weights_2)):
        numpy.testing.assert_array_equal(a, b, err_msg=f"parameter {index}")


def test_the_kernel_limits_follow_the_tuning_file_after_install(monkeypatch):
    """The kernels' limits are handed over by minigrad.fast.install() (tuning.py says so): changing one
    and installing again reaches the kernels."""
    from minigrad.kernels import numba_cpu

    saved = dict(numba_cpu.LIMITS)
    monkeypatch.setattr(tuning, "NUMBA_SERIAL_BELOW_BYTES", 12345)
    try:
        minigrad.fast.install()
        assert numba_cpu.LIMITS["serial_below_bytes"] == 12345
    finally:
        monkeypatch.undo()
        minigrad.fast.install()
    assert numba_cpu.LIMITS == saved
