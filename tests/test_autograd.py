"""The backward pass (minigrad/autograd.py, Tensor.backward): order, accumulation, release, hooks."""
import numpy
import pytest

import minigrad


def _leaf(values):
    return minigrad.tensor(numpy.asarray(values, dtype=numpy.float64), requires_grad=True)


def test_scalar_backward_seeds_with_one():
    x = _leaf([2.0, 3.0])
    (x * x).sum().backward()
    numpy.testing.assert_array_equal(x.grad.numpy(), [4.0, 6.0])


def test_backward_with_explicit_gradient_on_non_scalar():
    x = _leaf([1.0, 2.0])
    (x * 3).backward(gradient=minigrad.tensor(numpy.array([1.0, 10.0])))
    numpy.testing.assert_array_equal(x.grad.numpy(), [3.0, 30.0])


def test_backward_gradient_of_wrong_shape_is_rejected():
    x = _leaf([1.0, 2.0])
    with pytest.raises(ValueError, match=r"gradient has shape \(3,\).*\(2,\)"):
        (x * 3).backward(gradient=numpy.ones(3))


def test_tensor_used_twice_gets_the_sum_of_both_paths():
    x = _leaf([3.0])
    y = x * x + x * 2  # dy/dx = 2x + 2
    y.backward()
    numpy.testing.assert_array_equal(x.grad.numpy(), [8.0])


def test_diamond_graph_counts_each_path_once():
    x = _leaf([1.5])
    a = x.exp()
    b = a * 2
    c = a * 3
    (b + c).backward()  # d/dx 5 e^x
    numpy.testing.assert_allclose(x.grad.numpy(), 5 * numpy.exp([1.5]), rtol=1e-14)


def test_chain_of_ten_thousand_ops_backpropagates():
    x = _leaf([1.0])
    y = x
    for _ in range(10_000):
        y = y + 1.0
    y.backward()
    numpy.testing.assert_array_equal(x.grad.numpy(), [1.0])
    assert y.item() == 10_001.0


def test_leaf_gradients_accumulate_across_backward_calls():
    x = _leaf([1.0, 2.0])
    (x * 2).sum().backward()
    (x * 3).sum().backward()
    numpy.testing.assert_array_equal(x.grad.numpy(), [5.0, 5.0])


def test_non_leaf_gradient_is_not_kept_by_default():
    x = _leaf([1.0])
    y = x * 2
    (y * y).backward()
    assert y.grad is None and x.grad is not None


def test_retain_grad_keeps_non_leaf_gradient():
    x = _leaf([1.0])
    y = x * 2
    y.retain_grad()
    (y * y).backward()
    numpy.testing.assert_array_equal(y.grad.numpy(), [4.0])


def test_saved_arrays_are_released_after_backward():
    x = _leaf([1.0, 2.0])
    y = x.exp()
    y.sum().backward()
    assert y.grad_fn.saved is None and y.grad_fn.released


def test_backward_frees_intermediate_tensors_that_only_the_graph_held():
    """After backward, `loss` must not keep the activations alive (a training loop would hold two graphs)."""
    import weakref

    x = _leaf(numpy.ones(4))
    hidden = (x * 3).exp()
    hidden_ref = weakref.ref(hidden)
    loss = hidden.sum()
    del hidden
    assert hidden_ref() is not None          # before backward the graph needs it
    loss.backward()
    assert hidden_ref() is None              # freed: only the released graph referred to it
    numpy.testing.assert_allclose(x.grad.numpy(), 3 * numpy.exp(3.0) * numpy.ones(4))


def test_retain_graph_keeps_intermediate_tensors():
    import weakref

    x = _leaf(numpy.ones(4))
    hidden = x.exp()
    hidden_ref = weakref.ref(hidden)
    loss = hidden.sum()
    del hidden
    loss.backward(retain_graph=True)
    assert hidden_ref() is not None


def test_retain_graph_keeps_saved_arrays():
    x = _leaf([1.0, 2.0])
    y = x.exp()
    y.sum().backward(retain_graph=True)
    assert y.grad_fn.saved is not None and not y.grad_fn.released


def test_second_backward_through_released_graph_raises_clear_error():
    x = _leaf([1.0, 2.0])
    loss = x.exp().sum()
    loss.backward()
    with pytest.raises(RuntimeError, match="second time.*retain_graph=True"):
        loss.backward()


def test_second_backward_with_retain_graph_accumulates():
    x = _leaf([1.0, 2.0])
    loss = (x * x).sum()
    loss.backward(retain_graph=True)
    loss.backward()
    numpy.testing.assert_array_equal(x.grad.numpy(), [4.0, 8.0])


def test_backward_on_tensor_without_grad_raises():
    with pytest.raises(RuntimeError, match="does not require grad"):
        minigrad.tensor([1.0]).backward()


def test_only_inputs_that_require_grad_receive_grad():
    x = _leaf([1.0])
    c = minigrad.tensor(numpy.array([2.0]))
    (x * c).backward()
    assert c.grad is None and x.grad.item() == 2.0


def test_hook_sees_the_gradient():
    x = _leaf([1.0, 2.0])
    seen = []
    x.register_hook(lambda grad: seen.append(grad.detach().numpy().copy()))
    (x * 3).sum().backward()
    numpy.testing.assert_array_equal(seen[0], [3.0, 3.0])


def test_hook_return_value_replaces_the_gradient():
    x = _leaf([1.0, 2.0])
    y = x * 3
    y.register_hook(lambda grad: grad * 0.5)
    y.sum().backward()
    numpy.testing.assert_array_equal(x.grad.numpy(), [1.5, 1.5])


def test_register_hook_on_tensor_without_grad_raises():
    with pytest.raises(RuntimeError, match="register_hook"):
        minigrad.tensor([1.0]).register_hook(lambda grad: grad)


def test_gradient_of_leaf_has_leaf_dtype():
    x = minigrad.tensor([1.0, 2.0], requires_grad=True)
    (x.double() * 2).sum().backward()
    assert x.grad.dtype == numpy.float32


def test_backward_of_a_leaf_itself():
    x = _leaf([4.0])
    x.backward()
    numpy.testing.assert_array_equal(x.grad.numpy(), [1.0])


def test_topological_order_puts_inputs_before_outputs():
    from minigrad.autograd import topological_order

    x = _leaf([1.0])
    a = x * 2
    b = a + x
    c = b * a
    order = topological_order(c)
    position = {id(t): i for i, t in enumerate(order)}
    assert position[id(x)] < position[id(a)] < position[id(b)] < position[id(c)]


def test_a_big_leaf_gradient_is_its_own_memory():
    """A leaf's gradient is its own memory: a gradient the user still holds is never written again by a
    later backward, and it does not alias dy."""
    x = minigrad.tensor(numpy.ones((512, 1024), numpy.float32), requires_grad=True)   # 2 MiB
    (x * 2).sum().backward()
    first = x.grad.numpy()
    x.grad = None
    (x * 3).sum().backward()
    assert (first == 2).all() and (x.grad.numpy() == 3).all()
    (x * 4).sum().backward()                                                          # accumulates
    assert (x.grad.numpy() == 7).all() and (first == 2).all()


# ------------------------------------------------------------------ fresh gradients (Function.fresh_gradients)
def _capture_backward(monkeypatch, function_class):
    """Record the arrays that function_class.backward returns."""
    returned = []
    real_backward = function_class.backward

    def recording_backward(self, dy):
        grads = real_backward(self, dy)
        returned.append(grads)
        return grads

    monkeypatch.setattr(function_class, "backward", recording_backward)
    return returned


def test_a_leaf_takes_a_fresh_gradient_without_a_copy(monkeypatch):
    """conv2d (im2col and Winograd) and linear return new arrays for every input (fresh_gradients): a
    leaf's first gradient is that array itself, as in PyTorch, when it is contiguous."""
    from minigrad.fast.winograd import Conv2dWinogradFast
    from minigrad.ops.conv import Conv2d
    from minigrad.ops.matmul import Linear

    rng = numpy.random.default_rng(0)
    returned = _capture_backward(monkeypatch, Conv2d)
    x = minigrad.tensor(rng.standard_normal((2, 3, 6, 6)), requires_grad=True)
    w = minigrad.tensor(rng.standard_normal((4, 3, 3, 3)), requires_grad=True)
    y = minigrad.ops.conv.Conv2d(2, 1)(x, w)
    y.backward(numpy.ones(y.shape))
    (dx, dw, _), = returned
    assert x.grad.array is dx and w.grad.array is dw

    returned.clear()
    b = minigrad.tensor(rng.standard_normal(4), requires_grad=True)
    y = minigrad.ops.conv.Conv2d(1, 1)(x, w, b)
    y.backward(numpy.ones(y.shape))
    (_, _, db), = returned
    assert b.grad.array is db

    returned = _capture_backward(monkeypatch, Conv2dWinogradFast)   # 3x3, stride 1, 16 channels, 8x8: Winograd
    x16 = minigrad.tensor(rng.standard_normal((2, 16, 8, 8)).astype(numpy.float32), requires_grad=True)
    w16 = minigrad.tensor(rng.standard_normal((16, 16, 3, 3)).astype(numpy.float32), requires_grad=True)
    y = minigrad.nn.functional.conv2d(x16, w16, padding=1)
    y.backward(numpy.ones(y.shape, numpy.float32))
    (dx16, dw16, _), = returned
    assert x16.grad.array is dx16 and w16.grad.array is dw16

    returned = _capture_backward(monkeypatch, Linear)
    a = minigrad.tensor(rng.standard_normal((5, 3)), requires_grad=True)
    weight = minigrad.tensor(rng.standard_normal((2, 3)), requires_grad=True)
    bias = minigrad.tensor(rng.standard_normal(2), requires_grad=True)
    minigrad.nn.functional.linear(a, weight, bias).sum().backward()
    (da, dweight, dbias), = returned
    assert a.grad.array is da and weight.grad.array is dweight and bias.grad.array is dbias
    numpy.testing.assert_allclose(weight.grad.numpy(), numpy.ones((5, 2)).T @ a.detach().numpy())


@pytest.mark.parametrize("shape", [(2, 3, 4, 4), (8, 32, 32, 32)])     # the NumPy reference, the Numba kernels
def test_a_leaf_takes_relus_and_max_pools_fresh_gradient_without_a_copy(monkeypatch, shape):
    """ReLU's and max pooling's dx are new arrays on every path (a product, a bincount, a kernel's pooled
    output): a leaf takes each as it is, and the values are the reference's."""
    from minigrad.ops.activation import ReLU
    from minigrad.ops.pool import MaxPool2d

    rng = numpy.random.default_rng(3)
    for function_class, op in ((ReLU, minigrad.nn.functional.relu),
                               (MaxPool2d, lambda t: minigrad.nn.functional.max_pool2d(t, 2))):
        returned = _capture_backward(monkeypatch, function_class)
        x = minigrad.tensor(rng.standard_normal(shape).astype(numpy.float32), requires_grad=True)
        y = op(x)
        seed = rng.standard_normal(y.shape).astype(numpy.float32)
        y.backward(seed)
        dx, = returned                                       # one input: backward returns one array
        assert x.grad.array is dx, function_class.__name__
        assert not numpy.shares_memory(x.grad.array, seed)
        if function_class is ReLU:
            numpy.testing.assert_array_equal(x.grad.numpy(), seed * (x.detach().numpy() > 0))


def test_gradients_that_are_not_fresh_are_still_copied():
    """Add hands dy itself to both inputs, and dy here is the user's seed array: each leaf gets its own
    copy, so changing the seed, or one gradient, changes no other."""
    a, b = _leaf([1.0, 2.0]), _leaf([3.0, 4.0])
    seed = numpy.array([1.0, 1.0])
    (a + b).backward(seed)
    seed[...] = 5.0
    a.grad.array[...] = 7.0
    assert b.grad.numpy().tolist() == [1.0, 1.0]


def test_a_leaf_with_a_hook_or_a_kept_non_leaf_gradient_is_copied(monkeypatch):
    """A hook is shown the gradient and may keep it; a non-leaf's gradient (retain_grad) also flows on
    into its op's backward. Neither is taken without a copy, even when fresh."""
    from minigrad.ops.matmul import Linear

    rng = numpy.random.default_rng(1)
    returned = _capture_backward(monkeypatch, Linear)
    x = minigrad.tensor(rng.standard_normal((4, 3)), requires_grad=True)
    w1 = minigrad.tensor(rng.standard_normal((3, 3)), requires_grad=True)
    w2 = minigrad.tensor(rng.standard_normal((2, 3)), requires_grad=True)
    seen = []
    x.register_hook(lambda grad: seen.append(grad))
    hidden = minigrad.nn.functional.linear(x, w1)
    hidden.retain_grad()
    minigrad.nn.functional.linear(hidden, w2).sum().backward()
    (dhidden, _, _), (dx, _, _) = returned                    # the second layer's backward runs first
    assert hidden.grad.array is not dhidden and not numpy.shares_memory(hidden.grad.array, dhidden)
    assert x.grad.array is not dx and not numpy.shares_memory(x.grad.array, seen[0].array)
    numpy.testing.assert_array_equal(x.grad.numpy(), dx)


def test_a_leaf_used_twice_gets_the_sum_of_fresh_gradients_in_memory_of_its_own(monkeypatch):
    """Two fresh contributions are summed into a new array, which the leaf takes: the right values,
    and no memory shared with either contribution."""
    from minigrad.ops.matmul import Linear

    returned = _capture_backward(monkeypatch, Linear)
    rng = numpy.random.default_rng(2)
    x = minigrad.tensor(rng.standard_normal((4, 3)), requires_grad=True)
    w = minigrad.tensor(rng.standard_normal((2, 3)), requires_grad=True)
    out = minigrad.nn.functional.linear(x, w) * minigrad.nn.functional.linear(x, w)
    out.sum().backward()
    y = x.detach().numpy() @ w.detach().numpy().T                          # d(sum y*y)/dy = 2y, through both linears
    numpy.testing.assert_allclose(x.grad.numpy(), 2 * y @ w.detach().numpy(), rtol=1e-12)
    numpy.testing.assert_allclose(w.grad.numpy(), 2 * y.T @ x.detach().numpy(), rtol=1e-12)
    for dx, dw, _ in returned:
        assert not numpy.shares_memory(x.grad.array, dx) and not numpy.shares_memory(w.grad.array, dw)


def test_a_0d_leaf_used_twice_gets_an_array_gradient_that_clipping_and_zero_grad_can_change():
    """Two 0-d gradients add up to a NumPy scalar, which is immutable: as a .grad it would make
    zero_grad(set_to_none=False) fail and clip_grad_norm_ do nothing. The sum is made an array,
    on the first backward and on an accumulating second one."""
    from minigrad.nn.utils import clip_grad_norm_

    w = minigrad.tensor(2.0, requires_grad=True)
    x = minigrad.tensor([1.0, 2.0, 3.0])
    for expected in (12.0, 24.0):                                   # d/dw of 2 * sum(w * x) = 12
        ((w * x).sum() + (w * x).sum()).backward()
        assert isinstance(w.grad.array, numpy.ndarray) and w.grad.array.shape == ()
        assert float(w.grad.array) == expected
    clip_grad_norm_([w], 1.0)
    assert abs(float(w.grad.array) - 1.0) < 1e-6
    w.grad.array[...] = 0                                            # what zero_grad(set_to_none=False) does
    assert float(w.grad.array) == 0.0
