"""Optimizer: the base class every update rule (SGD, Adam, ...) builds on.

An optimizer owns a list of *parameter groups*. Each group is a dict::

    {"params": [p0, p1, ...], "lr": 0.1, "weight_decay": 0.0, ...}

holding some parameters and the hyperparameters used to update them, so one
model can train its layers with different learning rates (fine-tuning a
pretrained body slowly and a new head quickly, for example). Hyperparameters
a group does not name are taken from the optimizer's `defaults`.

Per-parameter memory (momentum buffers, Adam's moments, step counts) lives in
`state`, a dict from parameter to dict. `step()` walks the groups, skips frozen
parameters, and calls the one method a subclass writes::

    def update(self, p, g, state, group):
        # p: the parameter Tensor, g: its gradient as a raw array,
        # state: p's own dict (empty on the first step), group: hyperparameters
        p.array -= group["lr"] * g          # plain gradient descent, in place

All maths is done on raw arrays through `xp = backend.array_module(p.array)`,
so the same code runs on the CPU (NumPy) and the GPU (CuPy).
"""
import numbers

from minigrad import backend, grad_mode
from minigrad.tensor import Tensor
from minigrad.ops.registry import find_kernel


class Optimizer:
    def __init__(self, params, defaults):
        self.defaults = dict(defaults)
        self.check_hyperparameters(self.defaults)
        self.state = {}          # parameter -> dict of arrays and counters
        self.param_groups = []

        if isinstance(params, Tensor):
            raise TypeError(
                f"{type(self).__name__}: params should be an iterable of Tensors or of dicts, "
                "but got a single Tensor; wrap it in a list: [tensor]"
            )
        groups = list(params)
        if len(groups) == 0:
            raise ValueError(f"{type(self).__name__}: got an empty parameter list")
        if not isinstance(groups[0], dict):
            groups = [{"params": groups}]
        for group in groups:
            self.add_param_group(group)

    def __repr__(self):
        lines = [f"{type(self).__name__} ("]
        for index, group in enumerate(self.param_groups):
            lines.append(f"Parameter Group {index}")
            for key in sorted(k for k in group if k != "params"):
                lines.append(f"    {key}: {group[key]}")
        lines.append(")")
        return "\n".join(lines)

    # ------------------------------------------------------------------ hyperparameters
    def check_hyperparameters(self, group):
        """Raise ValueError naming the argument and its value when a hyperparameter is invalid.

        Subclasses override this; it is called on the defaults and on every group.
        """

    def add_param_group(self, param_group):
        """Add a group of parameters (a dict with 'params' and optional hyperparameters)."""
        if not isinstance(param_group, dict):
            raise TypeError(
                f"{type(self).__name__}: a parameter group must be a dict, got {type(param_group).__name__}"
            )
        group = dict(param_group)
        if "params" not in group:
            raise ValueError(f"{type(self).__name__}: a parameter group needs a 'params' entry")
        params = group["params"]
        params = [params] if isinstance(params, Tensor) else list(params)
        for index, p in enumerate(params):
            if not isinstance(p, Tensor):
                raise TypeError(
                    f"{type(self).__name__}: params[{index}] of a parameter group is a "
                    f"{type(p).__name__}; an optimizer can only update Tensors"
                )
            if not p.is_leaf:
                raise ValueError(
                    f"{type(self).__name__}: params[{index}] is not a leaf tensor (it was computed "
                    "by an op); optimize the leaf it was computed from"
                )
        group["params"] = params

        for name, value in self.defaults.items():
            group.setdefault(name, value)
        self.check_hyperparameters(group)

        seen = set()
        for group_so_far in self.param_groups:
            seen.update(id(p) for p in group_so_far["params"])
        for index, p in enumerate(params):
            if id(p) in seen:
                raise ValueError(
                    f"{type(self).__name__}: params[{index}] of the new parameter group appears "
                    "more than once (in this group or an earlier one); each parameter may "
                    "belong to one group only"
                )
            seen.add(id(p))
        self.param_groups.append(group)

    # ------------------------------------------------------------------ the training loop
    @staticmethod
    def params_to_update(group):
        """The parameters of a group that get a step: those with requires_grad and a gradient.

        Freezing a parameter (p.requires_grad = False), or not using it in the
        loss so that p.grad stays None, leaves it unchanged.
        """
        return [p for p in group["params"] if p.requires_grad and p.grad is not None]

    def zero_grad(self, set_to_none=True):
        """Forget the gradients of the last backward before the next one accumulates.

        set_to_none=True drops them (p.grad = None, freeing memory);
        set_to_none=False fills the existing gradient arrays with zeros.
        """
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is None:
                    continue
                if set_to_none:
                    p.grad = None
                else:
                    p.grad.array[...] = 0

    def step(self, closure=None):
        """Update every parameter once.

        `closure`, if given, is called first (with grad mode on) to recompute
        the loss and gradients; its return value is returned.
        """
        loss = None
        if closure is not None:
            with grad_mode.enable_grad():
                loss = closure()
        # The update works on raw arrays, so it records no graph.
        for group in self.param_groups:
            params = self.params_to_update(group)
            fused = find_kernel(f"{type(self).__name__}.step", params[0].array) if params else None
            if fused is not None and fused(self, params, group):    # the fast layer's whole-group step (GPU)
                continue
            for p in params:
                state = self.state.setdefault(p, {})
                self.update(p, p.grad.array, state, group)
        return loss

    def update(self, p, g, state, group):
        """Update one parameter `p` in place, given its raw gradient array `g`.

        `state` is p's own dict (empty on the first step), `group` its
        hyperparameters. Each optimizer implements this.
        """
        raise NotImplementedError

    # ------------------------------------------------------------------ checkpoints
    def state_dict(self):
        """A snapshot of the optimizer (like PyTorch's): parameters are named by index.

        Parameters are numbered 0, 1, 2, ... in the order they appear across the
        groups. Returns {"state": {index: {name: value}}, "param_groups": [...]}
        where each group lists indices instead of Tensors. Arrays are copied,
        so the snapshot does not change as training goes on.
        """
        index_of = {}
        groups = []
        for group in self.param_groups:
            packed = {key: value for key, value in group.items() if key != "params"}
            packed["params"] = []
            for p in group["params"]:
                index_of[id(p)] = len(index_of)
                packed["params"].append(index_of[id(p)])
            groups.append(packed)
        state = {}
        for p, p_state in self.state.items():
            if id(p) in index_of:
                state[index_of[id(p)]] = {name: _copy_value(value) for name, value in p_state.items()}
        return {"state": state, "param_groups": groups}

    def load_state_dict(self, state_dict):
        """Restore a snapshot made by `state_dict()` of an optimizer with the same group layout.

        Hyperparameters come from the snapshot; arrays are copied onto each
        parameter's device and cast to its dtype.
        """
        saved_groups = state_dict["param_groups"]
        if len(saved_groups) != len(self.param_groups):
            raise ValueError(
                f"{type(self).__name__}.load_state_dict: the state dict has {len(saved_groups)} "
                f"parameter groups but this optimizer has {len(self.param_groups)}"
            )
        for index, (saved, group) in enumerate(zip(saved_groups, self.param_groups)):
            if len(saved["params"]) != len(group["params"]):
                raise ValueError(
                    f"{type(self).__name__}.load_state_dict: parameter group {index} has "
                    f"{len(saved['params'])} parameters in the state dict but "
                    f"{len(group['params'])} in this optimizer"
                )

        param_of = {}
        new_groups = []
        for saved, group in zip(saved_groups, self.param_groups):
            for saved_index, p in zip(saved["params"], group["params"]):
                param_of[saved_index] = p
            restored = {key: value for key, value in saved.items() if key != "params"}
            restored["params"] = group["params"]
            new_groups.append(restored)

        new_state = {}
        for saved_index, p_state in state_dict["state"].items():
            if saved_index not in param_of:
                raise ValueError(
                    f"{type(self).__name__}.load_state_dict: state for parameter index "
                    f"{saved_index} has no matching parameter in any group"
                )
            p = param_of[saved_index]
            new_state[p] = {name: _value_for_param(value, p) for name, value in p_state.items()}
        self.param_groups = new_groups
        self.state = new_state


def _copy_value(value):
    """Copy arrays (so a snapshot is independent); counters and floats are immutable already."""
    return value.copy() if hasattr(value, "copy") and hasattr(value, "dtype") else value


def _value_for_param(value, p):
    """A copy of a saved state array on p's device with p's dtype; other values unchanged."""
    if not (hasattr(value, "dtype") and hasattr(value, "shape")):
        return value
    array = backend.to_device(value, p.device)
    return array.astype(p.dtype, copy=True)


# ---------------------------------------------------------------------- argument checks
def check_number(optimizer_name, name, value):
    """A hyperparameter must be a real number (a string from a config file, say, is not)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{optimizer_name}: {name} must be a number, got {value!r} of type {type(value).__name__}")


def check_non_negative(optimizer_name, name, value):
    check_number(optimizer_name, name, value)
    if not value >= 0.0:  # also rejects NaN
        raise ValueError(f"{optimizer_name}: invalid {name}={value!r}; it must be >= 0")


def check_beta(optimizer_name, name, value):
    check_number(optimizer_name, name, value)
    if not 0.0 <= value < 1.0:
        raise ValueError(f"{optimizer_name}: invalid {name}={value!r}; it must be in [0, 1)")
