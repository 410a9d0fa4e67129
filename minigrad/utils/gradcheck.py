"""Gradient checking: compare backward() with finite differences, in float64.

Central difference: for a scalar function f of one number,

    f'(x) ~= (f(x + eps) - f(x - eps)) / (2 eps)       error O(eps^2)

For a function with array inputs and an array output, we check the gradient of
the scalar  L = sum(f(x) * w)  for a fixed random weight w (so every output
element matters), one input element at a time. That costs two forward passes
per element, so for large inputs we check a random DIRECTION d instead:

    dL/dt (x + t d) at t = 0  ~=  (L(x + eps d) - L(x - eps d)) / (2 eps)
                             ==  sum(grad * d)       (the analytic side)

which costs two forward passes in total. Float64 matters: in float32 the
rounding error of f is ~1e-7 relative, and dividing by 2 eps = 2e-6 would
amplify it to ~1e-1. See docs/02_checking_gradients.md.
"""
import numpy

from minigrad import backend


class GradcheckError(AssertionError):
    """The analytic and numerical gradients disagree."""


def gradcheck(fn, inputs, eps=1e-6, atol=1e-5, rtol=1e-3, max_elements=2000, seed=0, raise_exception=True):
    """Check the gradients of fn(*inputs) with respect to every input that requires grad.

    inputs: Tensors (others, e.g. integer labels, are passed through). Floating
    inputs are cast to float64 copies first. Inputs with at most `max_elements`
    elements are checked element by element; bigger ones along 3 random directions.
    Returns True, or raises GradcheckError naming the input, the worst index and
    both values (returns False instead when raise_exception=False).
    """
    from minigrad.tensor import Tensor

    rng = numpy.random.default_rng(seed)
    inputs = [_as_float64(x) for x in inputs]
    output = fn(*inputs)
    if not isinstance(output, Tensor):
        raise TypeError(f"gradcheck: fn must return a Tensor, got {type(output).__name__}")
    xp = backend.array_module(output.array)
    weight = xp.asarray(rng.standard_normal(output.shape))

    def loss_value():
        out = fn(*inputs)
        return backend.to_python((out.array.astype(numpy.float64) * weight).sum())

    for x in inputs:
        if isinstance(x, Tensor):
            x.grad = None
    if not output.requires_grad:
        raise GradcheckError("gradcheck: the output does not require grad; no input requires grad?")
    output.backward(weight)

    for position, x in enumerate(inputs):
        if not (isinstance(x, Tensor) and x.requires_grad):
            continue
        analytic = backend.to_numpy(x.grad.array) if x.grad is not None else numpy.zeros(x.shape)
        if x.numel() <= max_elements:
            ok, message = _check_elementwise(x, analytic, loss_value, eps, atol, rtol)
        else:
            ok, message = _check_directions(x, analytic, loss_value, eps, atol, rtol, rng)
        if not ok:
            if raise_exception:
                raise GradcheckError(f"gradcheck failed for input {position} (shape {x.shape}): {message}")
            return False
    return True


def _as_float64(x):
    from minigrad.tensor import Tensor

    if isinstance(x, Tensor) and x.dtype.kind == "f":
        return Tensor(x.array.astype(numpy.float64), requires_grad=x.requires_grad, device=x.device)
    return x


def _check_elementwise(x, analytic, loss_value, eps, atol, rtol):
    numeric = numpy.zeros(x.shape)
    flat = x.array.reshape(-1)  # a view: changing it changes x
    for i in range(flat.size):
        original = backend.to_python(flat[i])
        flat[i] = original + eps
        up = loss_value()
        flat[i] = original - eps
        down = loss_value()
        flat[i] = original
        numeric.reshape(-1)[i] = (up - down) / (2 * eps)
    error = numpy.abs(analytic - numeric) - (atol + rtol * numpy.abs(numeric))
    if error.size and error.max() > 0:
        worst = numpy.unravel_index(int(error.argmax()), x.shape)
        return False, (
            f"at index {tuple(int(i) for i in worst)} the analytic gradient is {analytic[worst]:.8g} "
            f"but the numerical one is {numeric[worst]:.8g} (atol={atol}, rtol={rtol})"
        )
    return True, ""


def _check_directions(x, analytic, loss_value, eps, atol, rtol, rng, count=3):
    xp = backend.array_module(x.array)
    original = x.array.copy()
    for trial in range(count):
        direction = rng.standard_normal(x.shape)
        direction /= numpy.linalg.norm(direction)
        step = xp.asarray(direction * eps)
        x.array[...] = original + step
        up = loss_value()
        x.array[...] = original - step
        down = loss_value()
        x.array[...] = original
        numeric = (up - down) / (2 * eps)
        expected = float((analytic * direction).sum())
        if abs(expected - numeric) > atol + rtol * abs(numeric):
            return False, (
                f"along random direction {trial} the analytic directional derivative is "
                f"{expected:.8g} but the numerical one is {numeric:.8g} (atol={atol}, rtol={rtol})"
            )
    return True, ""
