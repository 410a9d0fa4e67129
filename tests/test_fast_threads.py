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
    rng = numpy.random.default_rng(7)
    x_np, w_np, b_np = rng.standard_normal((5, 4, 6, 6)), rng.standard_normal((6, 2, 3, 3)), rng.standard_normal(6)
    dy = rng.standard_normal((5, 6, 6, 6))
    monkeypatch.setattr(tuning, "CONV_CHUNK_BYTES", 1)          # every image is its own chunk

    def run():
        x, w, b = (minigrad.tensor(a, requires_grad=True) for a in (x_np, w_np, b_np))
        y = conv2d(x, w, b, padding=1, groups=2)
        y.backward(dy)
        return y.numpy(), x.grad.numpy(), w.grad.numpy(), b.grad.numpy()

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


def test_chunks_for_asks_for_a_chunk_per_block_thread_on_the_cpu_only(monkeypatch):
    monkeypatch.setattr(cpu_threads, "threads_for_blocks", lambda: 2)
    assert len(cpu_threads.chunks_for(128, 100, 1 << 30, "cpu")) == 2
    assert len(cpu_threads.chunks_for(128, 100, None, "gpu")) == 1
    monkeypatch.setattr(cpu_threads, "threads_for_blocks", lambda: 1)
    assert len(cpu_threads.chunks_for(128, 100, 1 << 30, "cpu")) == 1
