"""Containers: modules that hold other modules.

    Sequential   runs its children in order: y = f_n(... f_2(f_1(x)))
    ModuleList   a list of modules that registers them (so their parameters are found),
                 for models that loop over layers in their own forward

Children are registered under the names "0", "1", ..., which is why a
parameter inside a Sequential is called e.g. ``features.0.weight``.
"""
from collections import OrderedDict

from minigrad.nn.module import Module


class Sequential(Module):
    """Sequential(m0, m1, ...) or Sequential(OrderedDict(name=module, ...))."""

    def __init__(self, *modules):
        super().__init__()
        if len(modules) == 1 and isinstance(modules[0], OrderedDict):
            for name, module in modules[0].items():
                self.add_module(name, module)
        else:
            for index, module in enumerate(modules):
                self.add_module(str(index), module)

    def forward(self, x):
        for module in self._modules.values():
            x = module(x)
        return x

    def __len__(self):
        return len(self._modules)

    def __iter__(self):
        return iter(self._modules.values())

    def __getitem__(self, index):
        modules = list(self._modules.items())
        if isinstance(index, slice):
            return Sequential(OrderedDict(modules[index]))
        return modules[_check_index("Sequential", index, len(modules))][1]

    def __setitem__(self, index, module):
        name = list(self._modules)[_check_index("Sequential", index, len(self))]
        self.add_module(name, module)

    def append(self, module):
        self.add_module(str(len(self)), module)
        return self


class ModuleList(Module):
    """A Python list of modules whose parameters the parent module can see."""

    def __init__(self, modules=None):
        super().__init__()
        if modules is not None:
            self.extend(modules)

    def __len__(self):
        return len(self._modules)

    def __iter__(self):
        return iter(self._modules.values())

    def __getitem__(self, index):
        modules = list(self._modules.values())
        if isinstance(index, slice):
            return ModuleList(modules[index])
        return modules[_check_index("ModuleList", index, len(modules))]

    def __setitem__(self, index, module):
        self.add_module(str(_check_index("ModuleList", index, len(self))), module)

    def __iadd__(self, modules):
        return self.extend(modules)

    def append(self, module):
        self.add_module(str(len(self)), module)
        return self

    def extend(self, modules):
        for module in modules:
            self.append(module)
        return self

    def insert(self, index, module):
        modules = list(self._modules.values())
        modules.insert(index, module)
        self._modules.clear()
        for position, m in enumerate(modules):
            self.add_module(str(position), m)

    def forward(self, *inputs):
        raise NotImplementedError("ModuleList has no forward(); loop over its modules in your own forward")


def _check_index(container, index, length):
    if not -length <= index < length:
        raise IndexError(f"{container}: index {index} is out of range for {length} modules")
    return index % length
