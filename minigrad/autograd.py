"""The backward pass: walk the graph in reverse topological order, applying the chain rule.

Why a topological order? A tensor's gradient is the SUM of the gradients that
flow into it from every op that used it, so it is complete only after all of
those ops have run their backward. Visiting tensors from the output towards the
leaves in reverse topological order guarantees exactly that.

The sort is iterative (an explicit stack), not recursive, so a chain of 10,000
ops does not hit Python's recursion limit.
"""
import numpy


def topological_order(root):
    """Tensors that require grad and lead to `root`, each after all of its inputs."""
    order, visited = [], set()
    stack = [(root, False)]
    while stack:
        node, inputs_done = stack.pop()
        if inputs_done:
            order.append(node)
            continue
        if id(node) in visited:
            continue
        visited.add(id(node))
        stack.append((node, True))
        if node._creator is not None:
            for parent in node._creator.inputs:
                if parent is not None and parent.requires_grad and id(parent) not in visited:
                    stack.append((parent, False))
    return order


_callbacks = []   # (function, if_failed) pairs for the end of the backward pass now running


def queue_callback(function, if_failed=None):
    """Call `function()` once, at the end of the backward pass now running (after every leaf has its
    .grad); if that backward raises instead, call `if_failed()`. Call it from a hook during backward.

    DistributedDataParallel uses it to wait for its gradient all-reduces before backward() returns.
    """
    _callbacks.append((function, if_failed))


def run_backward(root, seed, retain_graph=False):
    """Propagate `seed` = dL/d(root) back to every leaf; see Tensor.backward."""
    outer = list(_callbacks)          # a backward inside a hook of another keeps the outer one's
    _callbacks.clear()
    try:
        _propagate(root, seed, retain_graph)
    except BaseException:
        failed, _callbacks[:] = list(_callbacks), outer
        for _, if_failed in failed:
            if if_failed is not None:
                if_failed()
        raise
    finished, _callbacks[:] = list(_callbacks), outer
    for function, _ in finished:
        function()


def _propagate(root, seed, retain_graph):
    from minigrad.tensor import Tensor

    grads = {id(root): seed}  # id(tensor) -> dL/d(tensor) summed so far
    fresh = set()             # ids whose summed gradient is a new array nothing else holds
    order = topological_order(root)
    while order:
        node = order.pop()    # reverse topological order; popping lets finished tensors be freed
        dy = grads.pop(id(node), None)
        is_fresh = id(node) in fresh and not node._hooks      # a hook may keep the array it is shown
        fresh.discard(id(node))
        if dy is None:
            continue
        for hook in node._hooks:
            replaced = hook(Tensor._make(dy, node.device))
            if replaced is not None:
                dy = replaced.array if isinstance(replaced, Tensor) else replaced
        fn = node._creator
        if fn is None or node._retains_grad:
            _accumulate(node, dy, adopt=is_fresh and fn is None)
        if fn is None:
            for hook in node.__dict__.get("_post_accumulate_grad_hooks", ()):
                hook(node)                              # e.g. DistributedDataParallel: this gradient is ready
            continue
        if fn.released:
            raise RuntimeError(
                f"backward through {fn.name} a second time: its saved arrays were freed after "
                "the first backward; call backward(retain_graph=True) the first time if you "
                "need to go through the graph twice"
            )
        input_grads = fn.backward(dy)
        if not isinstance(input_grads, tuple):
            input_grads = (input_grads,)
        inputs = fn.inputs
        if not retain_graph:
            fn.release()
        for index, (parent, dx, needed) in enumerate(zip(inputs, input_grads, fn.needs_input_grad)):
            if parent is None or not needed or dx is None:
                continue
            if isinstance(dx, numpy.generic):
                dx = numpy.asarray(dx)  # NumPy maths on 0-d arrays returns scalars
            if tuple(dx.shape) != parent.shape:
                raise RuntimeError(
                    f"{fn.name}.backward returned a gradient of shape {tuple(dx.shape)} for an "
                    f"input of shape {parent.shape} (a bug in that op)"
                )
            previous = grads.get(id(parent))
            if previous is None:
                grads[id(parent)] = dx
                if index in fn.fresh_gradients:
                    fresh.add(id(parent))
            else:
                grads[id(parent)] = _as_array(previous + dx)   # 0-d + 0-d gives a NumPy scalar
                fresh.add(id(parent))                  # the sum is a new array


def _accumulate(node, dy, adopt=False):
    """Add dy into node.grad (leaves accumulate across backward calls until zero_grad).

    adopt: dy is a new array that nothing else holds (see Function.fresh_gradients), so a first
    gradient takes it as it is, as PyTorch does, instead of copying it.
    """
    from minigrad.tensor import Tensor

    dy = dy.astype(node.dtype, copy=False)
    if node.grad is None and adopt and dy.flags.c_contiguous:
        node.grad = Tensor._make(dy, node.device)
        return
    if node.grad is None:
        # copy: dy may alias an array that an op will reuse or the user may mutate
        node.grad = Tensor._make(dy.copy(), node.device)
    else:
        node.grad = Tensor._make(_as_array(node.grad.array + dy), node.device)


def _as_array(total):
    """A sum of two gradients as an array: NumPy returns a scalar (immutable, so clipping or
    zeroing it in place would fail or do nothing) when both are 0-d. CuPy returns arrays."""
    return numpy.asarray(total) if isinstance(total, numpy.generic) else total
