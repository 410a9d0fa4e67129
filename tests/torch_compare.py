"""The one shared helper that compares a minigrad computation with PyTorch's.

    compare_with_torch(lambda mg, a, b: mg.matmul(a, b), [a_np, b_np])

runs the same function twice, once with the `minigrad` module and Tensors, once
with `torch` and torch tensors (float64, requires_grad on float inputs), then
compares the outputs and the gradient of sum(output * w) for a random w.
Tests that use it call `pytest.importorskip("torch")` first.
"""
import numpy

import minigrad


def compare_with_torch(fn, arrays, rtol=1e-6, atol=1e-9, torch_fn=None, grad_inputs=None, seed=0):
    """Assert that fn(minigrad, *tensors) and (torch_fn or fn)(torch, *tensors) agree, values and grads.

    arrays: NumPy arrays; floating ones become float64 leaves that require grad
    (unless grad_inputs, a list of bools, says otherwise). Returns the largest
    relative difference seen, so tests can report it.
    """
    import torch

    torch_fn = torch_fn or fn
    if grad_inputs is None:
        grad_inputs = [numpy.asarray(a).dtype.kind == "f" for a in arrays]
    ours = [
        minigrad.tensor(numpy.asarray(a, dtype=numpy.float64) if g else a, requires_grad=g)
        for a, g in zip(arrays, grad_inputs)
    ]
    theirs = [
        torch.tensor(numpy.asarray(a, dtype=numpy.float64) if g else a, requires_grad=g)
        for a, g in zip(arrays, grad_inputs)
    ]
    out_ours = fn(minigrad, *ours)
    out_theirs = torch_fn(torch, *theirs)
    worst = _assert_close("output", out_ours.detach().numpy(), out_theirs.detach().numpy(), rtol, atol)

    if not any(grad_inputs):
        return worst
    weight = numpy.random.default_rng(seed).standard_normal(out_ours.shape)
    out_ours.backward(minigrad.tensor(weight, dtype=numpy.float64))
    out_theirs.backward(torch.tensor(weight, dtype=out_theirs.dtype))
    for index, (a, b, g) in enumerate(zip(ours, theirs, grad_inputs)):
        if g:
            worst = max(worst, _assert_close(f"gradient of input {index}", a.grad.numpy(), b.grad.numpy(), rtol, atol))
    return worst


def _assert_close(what, ours, theirs, rtol, atol):
    ours, theirs = numpy.asarray(ours), numpy.asarray(theirs)
    assert ours.shape == theirs.shape, f"{what}: minigrad shape {ours.shape} but torch shape {theirs.shape}"
    difference = numpy.abs(ours - theirs)
    relative = difference / (numpy.abs(theirs) + atol)
    if difference.size and not numpy.all(difference <= atol + rtol * numpy.abs(theirs)):
        worst = numpy.unravel_index(int(numpy.argmax(relative)), relative.shape)
        raise AssertionError(
            f"{what}: minigrad {ours[worst]!r} vs torch {theirs[worst]!r} at index {worst} "
            f"(relative difference {relative[worst]:.3g}, rtol={rtol})"
        )
    return float(relative.max()) if relative.size else 0.0
