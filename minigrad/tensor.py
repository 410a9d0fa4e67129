"""Tensor: an array that remembers how it was made, so gradients can flow back.

A Tensor wraps a NumPy or CuPy array (`.array`). When it comes out of a
differentiable op while grad mode is on, it keeps a link to that op (its
creator Function), which keeps links to its inputs. `backward()` walks this
graph from the output back to the leaves in reverse topological order,
applying the chain rule at each op:

    dL/d(input) = backward_of_op( dL/d(output) )

and summing the contributions when a tensor feeds several ops. Leaves (tensors
made by the user, with requires_grad=True) accumulate the result in `.grad`.
See docs/01_tensors_and_graphs.md.
"""
import numpy

from minigrad import backend, grad_mode

DEFAULT_DTYPE = numpy.float32


class Tensor:
    __array_priority__ = 1000  # so numpy_array + tensor calls Tensor.__radd__

    def __init__(self, data, dtype=None, requires_grad=False, device=None):
        if isinstance(data, Tensor):
            data = data.array
        if device is None:
            device = backend.device_of(data)
        device = backend.normalize_device(device)
        xp = backend.module_for(device)
        if dtype is None and not hasattr(data, "dtype"):
            array = numpy.asarray(data)
            if array.dtype == numpy.float64:  # Python floats: use the default float dtype
                array = array.astype(DEFAULT_DTYPE)
            data = array
        data = backend.to_device(data, device)
        self.array = data.astype(dtype, copy=False) if dtype is not None else xp.asarray(data)
        self.device = device
        self.grad = None
        self._creator = None
        self._hooks = []
        self._retains_grad = False
        self.requires_grad = False
        if requires_grad:
            self.requires_grad_(True)

    @classmethod
    def _make(cls, array, device, requires_grad=False, creator=None):
        """Wrap an op's output array without copying (internal fast path)."""
        t = cls.__new__(cls)
        t.array = array
        t.device = device
        t.grad = None
        t._creator = creator
        t._hooks = []
        t._retains_grad = False
        t.requires_grad = requires_grad
        return t

    # ------------------------------------------------------------------ attributes
    @property
    def shape(self):
        return self.array.shape

    @property
    def ndim(self):
        return self.array.ndim

    @property
    def dtype(self):
        return self.array.dtype

    def size(self, dim=None):
        """The shape, like PyTorch's x.size(); x.size(d) is the length of axis d."""
        return self.array.shape if dim is None else self.array.shape[dim]

    def numel(self):
        return self.array.size

    def dim(self):
        return self.array.ndim

    def __len__(self):
        if self.ndim == 0:
            raise TypeError("len() of a 0-d tensor")
        return self.shape[0]

    @property
    def is_leaf(self):
        """True for tensors not produced by a recorded op (the user's inputs and parameters)."""
        return self._creator is None

    @property
    def grad_fn(self):
        return self._creator

    def requires_grad_(self, requires_grad=True):
        if requires_grad and self.array.dtype.kind not in "fc":
            raise TypeError(
                f"requires_grad=True needs a floating-point tensor, but this tensor has dtype "
                f"{self.array.dtype}; convert it first with .float() or .double()"
            )
        if not self.is_leaf and not requires_grad:
            raise RuntimeError("requires_grad can only be turned off on leaf tensors; use .detach()")
        self.requires_grad = bool(requires_grad)
        return self

    def __repr__(self):
        extra = f", device='{self.device}'" if self.device != backend.CPU else ""
        if self._creator is not None:
            extra += f", grad_fn={self._creator.name}"
        elif self.requires_grad:
            extra += ", requires_grad=True"
        body = numpy.array2string(backend.to_numpy(self.array), separator=", ", prefix="tensor(")
        return f"tensor({body}, dtype={self.dtype}{extra})"

    # ------------------------------------------------------------------ conversion
    def numpy(self):
        """The values as a NumPy array (copied to the host if the tensor is on the GPU).

        On the CPU the array IS this tensor's memory, so a tensor that requires grad refuses, as
        PyTorch does: writing to the array would change a value behind autograd's back. Say what you
        mean with .detach().numpy() (the same memory, outside the graph).
        """
        if self.requires_grad:
            raise RuntimeError(
                f"numpy() on a tensor that requires grad (shape {self.shape}): writing to the array would "
                f"change it behind autograd's back; use tensor.detach().numpy() instead"
            )
        return backend.to_numpy(self.array)

    def tolist(self):
        return backend.to_numpy(self.array).tolist()

    def item(self):
        if self.array.size != 1:
            raise ValueError(f"item() needs a tensor with one element, got shape {self.shape}")
        return backend.to_numpy(self.array).reshape(()).item()

    def __index__(self):
        """An integer tensor of one element indexes a Python list (classes[labels[j]])."""
        if numpy.dtype(self.dtype).kind not in "iub" or self.array.size != 1:
            raise TypeError(f"only an integer tensor of one element can be an index, got dtype {self.dtype} "
                            f"shape {self.shape}")
        return int(self.item())

    def __format__(self, spec):
        """f"{loss:.4f}" formats a one-element tensor as its number; other tensors format their repr."""
        if self.array.size == 1:
            return format(self.item(), spec)
        return format(repr(self), spec)

    def __float__(self):
        return float(self.item())

    def __int__(self):
        return int(self.item())

    def __bool__(self):
        if self.array.size != 1:
            raise ValueError(
                f"the truth value of a tensor of shape {self.shape} is ambiguous; use .any() or .all()"
            )
        return bool(self.item())

    def __array__(self, dtype=None, copy=None):
        array = self.numpy()
        return array.astype(dtype) if dtype is not None else array

    def cpu(self):
        return self.to("cpu")

    def cuda(self):
        return self.to("gpu")

    gpu = cuda

    def float(self):
        return self.to(dtype=numpy.float32)

    def double(self):
        return self.to(dtype=numpy.float64)

    def long(self):
        return self.to(dtype=numpy.int64)

    def int(self):
        return self.to(dtype=numpy.int32)

    def bool(self):
        return self.to(dtype=numpy.bool_)

    def type(self, dtype):
        return self.to(dtype=dtype)

    def detach(self):
        """The same values, cut from the graph (shares memory, like PyTorch)."""
        return Tensor._make(self.array, self.device)

    @property
    def data(self):
        """PyTorch's `.data`: the same values as a Tensor outside autograd, sharing this memory.

        It is what detach() returns, so `torch.max(outputs.data, 1)` and `p.data.mul_(0.5)` work
        as in PyTorch: an in-place change through it changes this tensor unseen by autograd. The
        raw NumPy (or CuPy) array that minigrad's own code computes with is `.array`.
        """
        return Tensor._make(self.array, self.device)

    @data.setter
    def data(self, value):
        """`p.data = t` puts new values (any shape or dtype, as in PyTorch) into this tensor."""
        array = value.array if isinstance(value, Tensor) else value
        self.array = backend.to_device(array, self.device) if hasattr(array, "dtype") \
            else backend.module_for(self.device).asarray(array)

    def zero_(self):
        self.array[...] = 0
        return self

    def fill_(self, value):
        self.array[...] = value
        return self

    def _in_place(self, name, values):
        """Write `values` into this tensor's memory; refused where autograd would miss the change."""
        if self.requires_grad and grad_mode.is_grad_enabled():
            raise RuntimeError(
                f"{name}: this tensor requires grad, and an in-place change would be invisible to "
                f"autograd; do it under minigrad.no_grad(), or on tensor.data"
            )
        result_dtype = getattr(values, "dtype", None)
        if result_dtype is not None and not numpy.can_cast(result_dtype, self.dtype, "same_kind"):
            raise TypeError(f"{name}: the result is {result_dtype}, which cannot be stored in this {self.dtype} "
                            f"tensor in place; convert it first (.float())")
        self.array[...] = values
        return self

    def add_(self, other, alpha=1):
        """In place: self += alpha * other."""
        return self._in_place("add_", self.array + alpha * _raw(other))

    def sub_(self, other, alpha=1):
        """In place: self -= alpha * other."""
        return self._in_place("sub_", self.array - alpha * _raw(other))

    def mul_(self, other):
        """In place: self *= other."""
        return self._in_place("mul_", self.array * _raw(other))

    def div_(self, other):
        """In place: self /= other."""
        return self._in_place("div_", self.array / _raw(other))

    def clamp_(self, min=None, max=None):
        """In place: clip the values to [min, max]."""
        xp = backend.array_module(self.array)
        return self._in_place("clamp_", xp.clip(self.array, min, max))

    def copy_(self, other):
        """Copy values from `other` (Tensor or array) into this tensor in place."""
        source = other.array if isinstance(other, Tensor) else other
        if tuple(source.shape) != self.shape:
            raise ValueError(f"copy_: source has shape {tuple(source.shape)}, this tensor {self.shape}")
        self.array[...] = backend.to_device(source, self.device)
        return self

    # ------------------------------------------------------------------ autograd
    def register_hook(self, hook):
        """Call `hook(grad)` when this tensor's gradient is computed; a returned Tensor replaces it."""
        if not self.requires_grad:
            raise RuntimeError("register_hook: this tensor does not require grad")
        self._hooks.append(hook)
        return hook

    def register_post_accumulate_grad_hook(self, hook):
        """Call `hook(tensor)` on this leaf each time backward has added into its `.grad`."""
        if not self.is_leaf or not self.requires_grad:
            raise RuntimeError("register_post_accumulate_grad_hook: only a leaf tensor that requires grad "
                               "accumulates a .grad")
        self.__dict__.setdefault("_post_accumulate_grad_hooks", []).append(hook)
        return hook

    def retain_grad(self):
        """Keep `.grad` on this non-leaf tensor after backward (leaves always keep theirs)."""
        self._retains_grad = True

    def backward(self, gradient=None, retain_graph=False):
        """Compute d(self)/d(leaf) for every leaf that requires grad, adding into `leaf.grad`.

        `gradient` is dL/d(self); it may be omitted only when self has one element
        (then it is 1). Saved arrays are freed afterwards unless retain_graph=True.
        """
        from minigrad.autograd import run_backward

        if not self.requires_grad:
            raise RuntimeError(
                "backward: this tensor does not require grad and has no grad_fn; did you "
                "create the inputs with requires_grad=True, or compute it under no_grad()?"
            )
        xp = backend.array_module(self.array)
        if gradient is None:
            if self.array.size != 1:
                raise RuntimeError(
                    f"backward: grad can be implicitly created only for a tensor with one element, "
                    f"but this tensor has shape {self.shape}; pass gradient= of that shape"
                )
            seed = xp.ones_like(self.array)
        else:
            seed = gradient.array if isinstance(gradient, Tensor) else xp.asarray(gradient)
            if tuple(seed.shape) != self.shape:
                raise ValueError(
                    f"backward: gradient has shape {tuple(seed.shape)} but the tensor has shape {self.shape}"
                )
            seed = seed.astype(self.dtype, copy=False)
        run_backward(self, seed, retain_graph)

    # Operators and methods are attached in minigrad/tensor_methods.py.
    __hash__ = object.__hash__


def is_tensor(obj):
    return isinstance(obj, Tensor)


def _raw(value):
    """The array inside a Tensor; numbers and arrays pass through."""
    return value.array if isinstance(value, Tensor) else value


def tensor(data, dtype=None, requires_grad=False, device=None):
    """Make a new leaf Tensor from a list, a scalar, a NumPy/CuPy array or a Tensor (copied)."""
    if isinstance(data, Tensor):
        data = data.array.copy()
    elif hasattr(data, "dtype") and hasattr(data, "copy"):
        data = data.copy()
    return Tensor(data, dtype=dtype, requires_grad=requires_grad, device=device)
