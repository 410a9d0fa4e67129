"""Sequential and ModuleList: order, indexing, length, and registration of their members."""
from collections import OrderedDict

import numpy
import pytest

import minigrad
from minigrad import nn


def test_sequential_applies_modules_in_order():
    model = nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 2))
    x = minigrad.randn(5, 3)
    expected = model[2](model[1](model[0](x)))
    numpy.testing.assert_array_equal(model(x).detach().numpy(), expected.detach().numpy())


def test_sequential_len_negative_index_and_iteration():
    layers = [nn.Linear(2, 2), nn.ReLU(), nn.Tanh()]
    model = nn.Sequential(*layers)
    assert len(model) == 3 and model[-1] is layers[2] and list(model) == layers


def test_sequential_slice_is_a_sequential_of_the_same_modules():
    model = nn.Sequential(nn.Linear(2, 3), nn.ReLU(), nn.Linear(3, 1))
    head = model[:2]
    assert isinstance(head, nn.Sequential) and len(head) == 2 and head[0] is model[0]


def test_sequential_index_out_of_range_names_the_length():
    with pytest.raises(IndexError, match="index 3 is out of range for 2 modules"):
        nn.Sequential(nn.ReLU(), nn.ReLU())[3]


def test_sequential_from_ordered_dict_uses_the_names():
    model = nn.Sequential(OrderedDict(fc=nn.Linear(2, 2), act=nn.ReLU()))
    assert [name for name, _ in model.named_parameters()] == ["fc.weight", "fc.bias"]
    assert model[1] is model.act


def test_sequential_append_and_setitem_register_modules():
    model = nn.Sequential(nn.Linear(2, 2))
    model.append(nn.Linear(2, 3))
    model[0] = nn.Linear(2, 2, bias=False)
    assert [name for name, _ in model.named_parameters()] == ["0.weight", "1.weight", "1.bias"]


def test_module_list_registers_its_modules():
    class Stack(nn.Module):
        def __init__(self):
            super().__init__()
            self.layers = nn.ModuleList([nn.Linear(2, 2) for _ in range(3)])

        def forward(self, x):
            for layer in self.layers:
                x = layer(x)
            return x

    model = Stack()
    assert len(list(model.parameters())) == 6
    assert [n for n, _ in model.named_parameters()][:2] == ["layers.0.weight", "layers.0.bias"]
    assert model(minigrad.randn(1, 2)).shape == (1, 2)


def test_module_list_append_extend_insert_and_index():
    a, b, c, d = nn.ReLU(), nn.Tanh(), nn.Sigmoid(), nn.GELU()
    modules = nn.ModuleList([a])
    modules.append(b)
    modules.extend([c])
    modules.insert(0, d)
    assert list(modules) == [d, a, b, c] and len(modules) == 4 and modules[-1] is c
    assert [name for name, _ in modules.named_children()] == ["0", "1", "2", "3"]


def test_module_list_has_no_forward():
    with pytest.raises(NotImplementedError, match="ModuleList"):
        nn.ModuleList([nn.ReLU()])(minigrad.randn(2))


def test_sequential_repr_matches_torch():
    torch = pytest.importorskip("torch")
    ours = nn.Sequential(nn.Conv2d(1, 2, 3), nn.MaxPool2d(2), nn.Flatten(), nn.Dropout(0.1))
    theirs = torch.nn.Sequential(torch.nn.Conv2d(1, 2, 3), torch.nn.MaxPool2d(2), torch.nn.Flatten(),
                                 torch.nn.Dropout(0.1))
    ours_lines, theirs_lines = repr(ours).splitlines(), repr(theirs).splitlines()
    # torch's MaxPool2d also prints dilation and ceil_mode, which ours does not have
    assert [l for l in ours_lines if "MaxPool" not in l] == [l for l in theirs_lines if "MaxPool" not in l]
