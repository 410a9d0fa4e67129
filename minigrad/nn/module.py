"""Module: the base class of every layer and model.

A Module bundles three kinds of state with a `forward` computation:

    parameters  Parameters it trains           self.weight = Parameter(...)
    buffers     Tensors it keeps, untrained    self.register_buffer("running_mean", t)
    children    the Modules it is built from   self.conv1 = Conv2d(...)

Setting an attribute to a Parameter or a Module registers it (see __setattr__),
so a model written as plain attribute assignments is a tree that the module
can walk: `named_parameters()` yields dotted names like ``layer1.0.conv1.weight``,
the same names PyTorch gives the same structure. That walk is all that
`parameters()`, `train()/eval()`, `to(device)`, `zero_grad()` and
`state_dict()` need.

Calling a module (``model(x)``) runs ``forward(x)``; subclasses write
``forward`` only.
"""
import os
from collections import OrderedDict, namedtuple

import numpy

from minigrad import backend
from minigrad.nn.parameter import Parameter
from minigrad.tensor import Tensor
from minigrad.utils.atomic import write_atomically

IncompatibleKeys = namedtuple("IncompatibleKeys", ["missing_keys", "unexpected_keys"])


class Module:
    training = True

    def __init__(self):
        # object.__setattr__ because our own __setattr__ needs these dicts to exist
        object.__setattr__(self, "_parameters", OrderedDict())
        object.__setattr__(self, "_buffers", OrderedDict())
        object.__setattr__(self, "_non_persistent_buffers", set())
        object.__setattr__(self, "_modules", OrderedDict())
        object.__setattr__(self, "training", True)

    def forward(self, *inputs):
        raise NotImplementedError(f"{type(self).__name__} must define forward()")

    def __call__(self, *inputs, **kwargs):
        return self.forward(*inputs, **kwargs)

    # ------------------------------------------------------------------ registration
    def __setattr__(self, name, value):
        if "_parameters" not in self.__dict__ and isinstance(value, (Parameter, Module)):
            raise AttributeError(
                f"cannot assign {type(value).__name__} '{name}' before Module.__init__() "
                f"is called; add super().__init__() at the top of {type(self).__name__}.__init__"
            )
        if isinstance(value, Parameter):
            self._forget(name, keep="_parameters")
            self._parameters[name] = value
        elif isinstance(value, Module):
            self._forget(name, keep="_modules")
            self._modules[name] = value
        elif "_parameters" in self.__dict__ and name in self._parameters:
            if value is not None:
                raise TypeError(
                    f"cannot assign {type(value).__name__} to parameter '{name}' of "
                    f"{type(self).__name__}: expected a Parameter or None"
                )
            self._parameters[name] = None
        elif "_buffers" in self.__dict__ and name in self._buffers:
            if value is not None and not isinstance(value, Tensor):
                raise TypeError(
                    f"cannot assign {type(value).__name__} to buffer '{name}' of "
                    f"{type(self).__name__}: expected a Tensor or None"
                )
            self._buffers[name] = value
        elif "_modules" in self.__dict__ and name in self._modules and value is None:
            self._modules[name] = None
        else:
            object.__setattr__(self, name, value)

    def __getattr__(self, name):
        # only called when normal lookup fails: look in the registries
        for registry in ("_parameters", "_buffers", "_modules"):
            table = self.__dict__.get(registry)
            if table is not None and name in table:
                return table[name]
        raise AttributeError(f"'{type(self).__name__}' object has no attribute '{name}'")

    def __delattr__(self, name):
        if not self._forget(name):
            object.__delattr__(self, name)

    def _forget(self, name, keep=None):
        """Remove `name` from every registry but `keep` (so a replaced entry keeps its place in
        the order) and from the instance dict; True if it was registered."""
        found = False
        for registry in ("_parameters", "_buffers", "_modules"):
            table = self.__dict__[registry]
            if name in table and registry != keep:
                del table[name]
                found = True
        if keep != "_buffers":
            self._non_persistent_buffers.discard(name)
        self.__dict__.pop(name, None)
        return found

    def register_parameter(self, name, param):
        if param is not None and not isinstance(param, Parameter):
            raise TypeError(f"register_parameter '{name}': expected a Parameter or None, got {type(param).__name__}")
        self._forget(name, keep="_parameters")
        self._parameters[name] = param

    def register_buffer(self, name, tensor, persistent=True):
        """A Tensor that is part of the module's state (saved, moved by to()) but not trained."""
        if "." in name or name == "":
            raise KeyError(f"register_buffer: buffer name must be non-empty and contain no '.', got {name!r}")
        if tensor is not None and not isinstance(tensor, Tensor):
            raise TypeError(f"register_buffer '{name}': expected a Tensor or None, got {type(tensor).__name__}")
        self._forget(name, keep="_buffers")
        self._buffers[name] = tensor
        if persistent:
            self._non_persistent_buffers.discard(name)
        else:
            self._non_persistent_buffers.add(name)

    def add_module(self, name, module):
        if module is not None and not isinstance(module, Module):
            raise TypeError(f"add_module '{name}': expected a Module or None, got {type(module).__name__}")
        self._forget(name, keep="_modules")
        self._modules[name] = module

    # ------------------------------------------------------------------ walking the tree
    def named_modules(self, memo=None, prefix=""):
        """(name, module) for this module and every descendant, each once, depth first."""
        memo = set() if memo is None else memo
        if id(self) in memo:
            return
        memo.add(id(self))
        yield prefix, self
        for name, child in self._modules.items():
            if child is not None:
                yield from child.named_modules(memo, f"{prefix}.{name}" if prefix else name)

    def modules(self):
        for _, module in self.named_modules():
            yield module

    def named_children(self):
        seen = set()
        for name, child in self._modules.items():
            if child is not None and id(child) not in seen:
                seen.add(id(child))
                yield name, child

    def children(self):
        for _, child in self.named_children():
            yield child

    def _named_members(self, registry, prefix="", recurse=True):
        """(dotted name, tensor) from one registry of every module, shared tensors once."""
        seen = set()
        modules = self.named_modules(prefix=prefix) if recurse else [(prefix, self)]
        for module_name, module in modules:
            for name, value in getattr(module, registry).items():
                if value is None or id(value) in seen:
                    continue
                seen.add(id(value))
                yield (f"{module_name}.{name}" if module_name else name), value

    def named_parameters(self, prefix="", recurse=True):
        return self._named_members("_parameters", prefix, recurse)

    def parameters(self, recurse=True):
        for _, p in self.named_parameters(recurse=recurse):
            yield p

    def named_buffers(self, prefix="", recurse=True):
        return self._named_members("_buffers", prefix, recurse)

    def buffers(self, recurse=True):
        for _, b in self.named_buffers(recurse=recurse):
            yield b

    def get_submodule(self, target):
        module = self
        for part in target.split(".") if target else []:
            if part not in module._modules:
                raise AttributeError(f"{type(module).__name__} has no submodule '{part}' (looking up '{target}')")
            module = module._modules[part]
        return module

    def apply(self, fn):
        """Call fn(module) on every child (recursively) then on self; used for custom init."""
        for child in self.children():
            child.apply(fn)
        fn(self)
        return self

    def num_parameters(self):
        return sum(p.numel() for p in self.parameters())

    # ------------------------------------------------------------------ modes, grads, devices
    def train(self, mode=True):
        """Training mode: BatchNorm uses batch statistics, Dropout drops."""
        for module in self.modules():
            object.__setattr__(module, "training", bool(mode))
        return self

    def eval(self):
        """Evaluation mode: BatchNorm uses its running statistics, Dropout is the identity."""
        return self.train(False)

    def requires_grad_(self, requires_grad=True):
        for p in self.parameters():
            p.requires_grad_(requires_grad)
        return self

    def zero_grad(self, set_to_none=True):
        for p in self.parameters():
            if p.grad is None:
                continue
            if set_to_none:
                p.grad = None
            else:
                p.grad.array[...] = 0

    def to(self, device=None, dtype=None):
        """Move (and/or cast) every parameter and buffer IN PLACE, and return self.

        The Parameter objects stay the same (only their .array arrays change), so an
        optimizer built before the move still holds the right tensors. dtype only
        casts floating-point tensors (num_batches_tracked stays an integer).
        """
        if isinstance(device, (numpy.dtype, type)) and dtype is None:
            device, dtype = None, device
        device = backend.normalize_device(device) if device is not None else None

        def convert(t):
            if device is not None:
                t.array = backend.to_device(t.array, device)
                t.device = device
            if dtype is not None and t.array.dtype.kind == "f":
                t.array = t.array.astype(dtype, copy=False)

        for p in self.parameters():
            convert(p)
            if p.grad is not None:
                convert(p.grad)
        for b in self.buffers():
            convert(b)
        return self

    def cpu(self):
        return self.to("cpu")

    def cuda(self):
        return self.to("gpu")

    gpu = cuda

    def float(self):
        return self.to(dtype=numpy.float32)

    def double(self):
        return self.to(dtype=numpy.float64)

    # ------------------------------------------------------------------ saving and loading
    def state_dict(self):
        """OrderedDict of dotted name -> NumPy copy, parameters and persistent buffers, in module order."""
        state = OrderedDict()
        for module_name, module in self.named_modules():
            prefix = f"{module_name}." if module_name else ""
            for name, p in module._parameters.items():
                if p is not None:
                    state[prefix + name] = p.detach().numpy().copy()
            for name, b in module._buffers.items():
                if b is not None and name not in module._non_persistent_buffers:
                    state[prefix + name] = b.detach().numpy().copy()
        return state

    def _state_tensors(self):
        """Dotted name -> the live Tensor, for the same keys as state_dict()."""
        tensors = OrderedDict()
        for module_name, module in self.named_modules():
            prefix = f"{module_name}." if module_name else ""
            for name, p in module._parameters.items():
                if p is not None:
                    tensors[prefix + name] = p
            for name, b in module._buffers.items():
                if b is not None and name not in module._non_persistent_buffers:
                    tensors[prefix + name] = b
        return tensors

    def load_state_dict(self, state_dict, strict=True):
        """Copy values from `state_dict` into this module's parameters and buffers, in place.

        Every problem is collected first and reported in one error: keys this
        module has that the dict lacks (missing), keys it does not have
        (unexpected; both only when strict), values whose shape differs
        (always, like PyTorch), and floating-point values that are not finite or
        do not fit the model's dtype (1e300 into float32 would become inf: a
        model that silently trains on inf is worse than an error). Nothing is
        changed when there is an error.
        Returns (missing_keys, unexpected_keys).
        """
        own = self._state_tensors()
        missing = [k for k in own if k not in state_dict]
        unexpected = [k for k in state_dict if k not in own]
        mismatched, not_finite = [], []
        for key, target in own.items():
            if key in state_dict:
                shape = tuple(numpy.shape(_as_array(state_dict[key])))
                if shape != target.shape:
                    mismatched.append(f"{key}: checkpoint shape {shape}, model shape {target.shape}")
                elif numpy.dtype(target.dtype).kind == "f":
                    problem = _finite_problem(_as_array(state_dict[key]), target.dtype)
                    if problem:
                        not_finite.append(f"{key}: {problem}")
        problems = []
        if strict and missing:
            problems.append("missing keys: " + ", ".join(missing))
        if strict and unexpected:
            problems.append("unexpected keys: " + ", ".join(unexpected))
        if mismatched:
            problems.append("shape mismatch: " + "; ".join(mismatched))
        if not_finite:
            problems.append("values that are not finite in the model's dtype: " + "; ".join(not_finite))
        if problems:
            raise RuntimeError(f"load_state_dict for {type(self).__name__}: " + " | ".join(problems))
        for key, target in own.items():
            if key in state_dict:
                value = backend.to_device(_as_array(state_dict[key]), target.device)
                target.array[...] = value.astype(target.dtype, copy=False)
        return IncompatibleKeys(missing, unexpected)

    def save(self, path):
        """Write state_dict() to a .npz file, atomically: a crash never leaves a half-written file."""
        state = self.state_dict()
        write_atomically(path, lambda file: numpy.savez(file, **state))
        return os.fspath(path)

    def load(self, path, strict=True):
        """Load a file written by save() (see load_state_dict for strict)."""
        with numpy.load(os.fspath(path), allow_pickle=False) as archive:
            state = OrderedDict((key, archive[key]) for key in archive.files)
        return self.load_state_dict(state, strict=strict)

    # ------------------------------------------------------------------ printing
    def extra_repr(self):
        """The text inside the parentheses of this module's repr line; layers override it."""
        return ""

    def __repr__(self):
        lines = [f"({name}): " + _indent(repr(child)) for name, child in self._modules.items()]
        extra = self.extra_repr()
        if not lines:
            return f"{type(self).__name__}({extra})"
        body = "\n  ".join(([extra] if extra else []) + lines)
        return f"{type(self).__name__}(\n  {body}\n)"


def check_input_dtype(layer_name, x, parameter):
    """A layer computes in its parameters' dtype, and an input of another dtype is refused, as PyTorch
    refuses it: mixing them would silently compute (and return) the wider one, or lose precision."""
    if parameter is not None and x.dtype != parameter.dtype:
        wanted = numpy.dtype(parameter.dtype).name
        raise TypeError(
            f"{layer_name}: input dtype {numpy.dtype(x.dtype).name} does not match the layer's dtype {wanted}; "
            f"convert the input (x.to({wanted})) or the layer (layer.to({numpy.dtype(x.dtype).name}))"
        )


def _finite_problem(value, dtype):
    """Why `value` cannot be loaded into a `dtype` tensor as finite numbers, or None when it can."""
    xp = backend.array_module(value)
    value = xp.asarray(value)
    if value.dtype.kind not in "fiub":
        return f"dtype {value.dtype} is not numeric"
    if not bool(backend.to_python(xp.isfinite(value).all())):
        return "holds inf or NaN"
    with numpy.errstate(over="ignore"):
        converted = value.astype(dtype)
    if not bool(backend.to_python(xp.isfinite(converted).all())):
        largest = backend.to_python(xp.abs(value).max())
        return f"its largest magnitude {largest:.3g} overflows {numpy.dtype(dtype).name}"
    return None


def _as_array(value):
    return value.array if isinstance(value, Tensor) else value


def _indent(text):
    return text.replace("\n", "\n  ")
