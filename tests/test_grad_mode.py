"""Grad mode (minigrad/grad_mode.py): no_grad / enable_grad, and that no graph is kept when off."""
import gc
import tracemalloc

import numpy

import minigrad
from minigrad.ops.elementwise import Exp


def _leaf(shape):
    return minigrad.tensor(numpy.ones(shape), requires_grad=True)


def test_no_grad_context_records_no_graph():
    x = _leaf(3)
    with minigrad.no_grad():
        y = x * 2
    assert not y.requires_grad and y.grad_fn is None


def test_no_grad_restores_grad_mode_on_exit():
    with minigrad.no_grad():
        assert not minigrad.is_grad_enabled()
    assert minigrad.is_grad_enabled()


def test_no_grad_restores_grad_mode_after_an_exception():
    try:
        with minigrad.no_grad():
            raise KeyError
    except KeyError:
        pass
    assert minigrad.is_grad_enabled()


def test_no_grad_as_decorator():
    @minigrad.no_grad()
    def evaluate(x):
        return x.exp()

    y = evaluate(_leaf(2))
    assert y.grad_fn is None and minigrad.is_grad_enabled()


def test_enable_grad_inside_no_grad_records_again():
    x = _leaf(2)
    with minigrad.no_grad():
        with minigrad.enable_grad():
            y = x * 2
        z = x * 2
    assert y.grad_fn is not None and z.grad_fn is None


def test_no_graph_when_no_input_requires_grad():
    y = minigrad.tensor(numpy.ones(3)).exp() * 2
    assert not y.requires_grad and y.grad_fn is None


def test_function_frees_saved_arrays_when_not_recording():
    fn = Exp()
    with minigrad.no_grad():
        fn(_leaf(3))
    assert fn.saved is None and fn.inputs == ()


def test_function_keeps_saved_arrays_when_recording():
    fn = Exp()
    y = fn(_leaf(3))
    assert fn.saved is not None and y.grad_fn is fn


def _mlp_forward(x, layers):
    for weight, bias in layers:
        x = (x @ weight + bias).relu()
    return x.log_softmax(dim=1)


def _traced_growth(iterations, layers, x):
    """Bytes of Python/NumPy memory still held after running the forward `iterations` times."""
    outputs = []
    gc.collect()
    tracemalloc.start()
    try:
        for _ in range(5):  # warm up caches before measuring
            _mlp_forward(x, layers)
        gc.collect()
        start, _ = tracemalloc.get_traced_memory()
        for _ in range(iterations):
            outputs.append(_mlp_forward(x, layers)[0, 0].item())
        gc.collect()
        end, _ = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return end - start


def _mlp_parameters():
    rng = numpy.random.default_rng(0)
    sizes = [32, 64, 64, 10]
    return [
        (minigrad.tensor(rng.standard_normal((i, o)) * 0.1, requires_grad=True),
         minigrad.tensor(numpy.zeros(o), requires_grad=True))
        for i, o in zip(sizes[:-1], sizes[1:])
    ]


def test_evaluation_loop_under_no_grad_does_not_grow_memory():
    layers = _mlp_parameters()
    x = minigrad.tensor(numpy.random.default_rng(1).standard_normal((16, 32)))
    with minigrad.no_grad():
        growth = _traced_growth(200, layers, x)
    # 200 Python floats in the outputs list plus interpreter noise; one kept graph would be ~30 kB.
    assert growth < 64 * 1024, f"memory grew by {growth} bytes over 200 no_grad forwards"


def test_outputs_under_no_grad_do_not_keep_the_graph():
    layers = _mlp_parameters()
    x = minigrad.tensor(numpy.ones((4, 32)))
    with minigrad.no_grad():
        out = _mlp_forward(x, layers)
    assert out.grad_fn is None and not out.requires_grad


def test_kept_graphs_do_grow_memory():
    """The measurement can see a leak: keeping graphs alive (grad on) does grow memory."""
    layers = _mlp_parameters()
    x = minigrad.tensor(numpy.random.default_rng(1).standard_normal((16, 32)))
    kept = []
    gc.collect()
    tracemalloc.start()
    try:
        start, _ = tracemalloc.get_traced_memory()
        for _ in range(20):
            kept.append(_mlp_forward(x, layers))
        end, _ = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert end - start > 20 * 16 * 64 * 8  # at least one hidden activation per kept graph
