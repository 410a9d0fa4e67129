"""Idioms of PyTorch scripts that run unchanged on minigrad (issue 15: a script with only its imports changed)."""
import numpy
import pytest

import minigrad


def test_an_integer_tensor_element_indexes_a_list():
    classes = ["plane", "car", "bird"]
    labels = minigrad.tensor([2, 0])
    assert classes[labels[0]] == "bird" and classes[labels[1]] == "plane"
    with pytest.raises(TypeError, match="only an integer tensor of one element can be an index"):
        classes[minigrad.tensor(1.0)]


def test_a_one_element_tensor_formats_with_a_spec():
    accuracy = minigrad.tensor(0.987654)
    assert f"{accuracy:.4f}" == "0.9877" and f"{minigrad.tensor([3]):d}" == "3"
    assert f"{minigrad.tensor([1.0, 2.0])}" == repr(minigrad.tensor([1.0, 2.0]))


@pytest.mark.parametrize("name, expected", [("eq", [False, True, False]), ("ne", [True, False, True]),
                                            ("lt", [True, False, False]), ("le", [True, True, False]),
                                            ("gt", [False, False, True]), ("ge", [False, True, True])])
def test_comparison_methods_have_pytorchs_names(name, expected):
    predicted = minigrad.tensor([1, 2, 3])
    assert getattr(predicted, name)(minigrad.tensor([2, 2, 2])).numpy().tolist() == expected
    assert predicted.eq(2).sum().item() == 1                       # the accuracy idiom: (pred == labels).sum()


def test_set_grad_enabled_works_as_a_call_and_as_a_with_block():
    assert minigrad.is_grad_enabled()
    for phase in ("train", "val"):
        with minigrad.set_grad_enabled(phase == "train"):
            y = minigrad.tensor([1.0], requires_grad=True) * 2
            assert y.requires_grad == (phase == "train")
        assert minigrad.is_grad_enabled()                          # restored after the block
    minigrad.set_grad_enabled(False)
    try:
        assert not minigrad.is_grad_enabled()                      # the plain call sets it from now on
    finally:
        minigrad.set_grad_enabled(True)


def test_set_grad_enabled_as_a_decorator_leaves_the_mode_alone_until_called():
    @minigrad.set_grad_enabled(False)
    def inference(x):
        return x * 2

    assert minigrad.is_grad_enabled()
    assert not inference(minigrad.tensor([1.0], requires_grad=True)).requires_grad
    assert minigrad.is_grad_enabled()


def test_cat_and_stack_take_numpys_axis_as_well_as_dim():
    a, b = minigrad.tensor(numpy.ones((2, 3))), minigrad.tensor(numpy.zeros((2, 3)))
    assert minigrad.cat([a, b], axis=0).shape == (4, 3) and minigrad.cat([a, b], axis=1).shape == (2, 6)
    assert minigrad.stack([a, b], axis=1).shape == (2, 2, 3)
    assert minigrad.stack([a, b], axis=1).numpy().tolist() == numpy.stack([a.numpy(), b.numpy()], axis=1).tolist()


def test_the_data_classes_are_at_pytorchs_path():
    from minigrad import data
    from minigrad.utils.data import DataLoader, Dataset, Subset, TensorDataset, random_split

    assert (DataLoader, Dataset, Subset, TensorDataset, random_split) == (
        data.DataLoader, data.Dataset, data.Subset, data.TensorDataset, data.random_split)


def test_a_device_object_works_wherever_a_device_name_does():
    from minigrad import nn

    cpu = minigrad.device("cuda" if minigrad.cuda.is_available() else "cpu")
    assert minigrad.device("cuda", 0) == "gpu" and str(minigrad.device("cuda", 0)) == "cuda:0"
    assert minigrad.device("cuda").type == "cuda" and repr(minigrad.device("cpu")) == "device(type='cpu')"
    model = nn.Linear(2, 2).to(cpu)
    x = minigrad.tensor([[1.0, 2.0]]).to(cpu)
    assert model(x).device == cpu
    with pytest.raises(minigrad.backend.DeviceError, match="unknown device 'tpu'"):
        minigrad.device("tpu")


def test_backends_and_accelerator_answer_as_pytorchs_do():
    minigrad.backends.cudnn.benchmark = True                       # accepted: minigrad does not use cuDNN
    assert minigrad.accelerator.is_available() == minigrad.cuda.is_available()
    expected = minigrad.device("cuda") if minigrad.cuda.is_available() else None
    assert minigrad.accelerator.current_accelerator() == expected
    assert minigrad.cuda.device_count() == (1 if minigrad.cuda.is_available() else 0)


def test_save_and_load_a_training_checkpoint_as_pytorch_scripts_do(tmp_path):
    """The dict a ResNet-18 CIFAR script saves ({'net', 'acc', 'epoch'}), with an optimizer's state
    and a tensor: loaded back, it restores the model and the optimizer, and the tensor is a Tensor."""
    from minigrad import nn, optim

    net = nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4), nn.Linear(4, 2))
    optimizer = optim.SGD(net.parameters(), lr=0.1, momentum=0.9)
    loss = net(minigrad.randn(5, 3)).sum()
    loss.backward()
    optimizer.step()
    scale = minigrad.tensor([1.5, 2.5], requires_grad=True)
    minigrad.save({"net": net.state_dict(), "acc": 93.5, "epoch": 7, "optimizer": optimizer.state_dict(),
                   "scale": scale, "notes": ("best", None)}, tmp_path / "ckpt.pth")
    checkpoint = minigrad.load(tmp_path / "ckpt.pth")
    assert checkpoint["acc"] == 93.5 and checkpoint["epoch"] == 7 and checkpoint["notes"] == ("best", None)
    assert isinstance(checkpoint["scale"], minigrad.Tensor) and checkpoint["scale"].requires_grad
    assert checkpoint["scale"].detach().numpy().tolist() == [1.5, 2.5]
    restored = nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4), nn.Linear(4, 2))
    restored.load_state_dict(checkpoint["net"])
    for (name, a), b in zip(net.state_dict().items(), restored.state_dict().values()):
        numpy.testing.assert_array_equal(numpy.asarray(a), numpy.asarray(b), err_msg=name)
    optim.SGD(restored.parameters(), lr=0.1, momentum=0.9).load_state_dict(checkpoint["optimizer"])


def test_save_and_load_work_with_open_files_and_map_location(tmp_path):
    path = tmp_path / "x.pth"
    with open(path, "wb") as file:
        minigrad.save({"w": minigrad.ones(2)}, file)
    with open(path, "rb") as file:
        loaded = minigrad.load(file, map_location=minigrad.device("cpu"))
    assert loaded["w"].device == "cpu" and loaded["w"].detach().numpy().tolist() == [1.0, 1.0]


def test_save_refuses_a_whole_model_and_says_to_save_its_state_dict(tmp_path):
    from minigrad import nn

    with pytest.raises(TypeError, match=r"cannot save a Linear at obj\['model'\].*state_dict\(\)"):
        minigrad.save({"model": nn.Linear(2, 2)}, tmp_path / "model.pth")
    assert not (tmp_path / "model.pth").exists()


def test_load_refuses_a_pickle_that_would_run_code_and_runs_nothing(tmp_path):
    import pickle

    marker = tmp_path / "ran"

    class RunsShell:
        def __reduce__(self):
            import os
            return os.system, (f"touch {marker}",)

    path = tmp_path / "evil.pth"
    path.write_bytes(pickle.dumps({"format": "minigrad-save", "version": 1, "object": RunsShell()}, protocol=4))
    with pytest.raises(ValueError, match="unsafe or corrupt.*nothing in it was run"):
        minigrad.load(path)
    assert not marker.exists()
    with pytest.raises(ValueError, match="weights_only=False would allow a file to run code"):
        minigrad.load(path, weights_only=False)


def test_data_is_a_tensor_outside_autograd_that_shares_the_memory():
    x = minigrad.tensor([[1.0, 5.0, 2.0], [7.0, 0.0, 3.0]], requires_grad=True)
    outputs = x * 2
    values, predicted = minigrad.max(outputs.data, 1)               # the CIFAR-10 tutorial's line
    assert predicted.tolist() == [1, 0] and values.tolist() == [10.0, 14.0]
    assert not outputs.data.requires_grad and outputs.data.grad_fn is None
    numpy.testing.assert_array_equal(outputs.data[1].numpy(), [14.0, 0.0, 6.0])
    outputs.data[0, 0] = 0.0                                        # .data is the same memory
    assert outputs.array[0, 0] == 0.0


def test_in_place_changes_through_data_reach_the_parameter_unseen_by_autograd():
    p = minigrad.nn.Parameter(minigrad.tensor([1.0, 2.0]))
    (p * p).sum().backward()
    p.data.add_(p.grad.data, alpha=-0.25)                           # hand-written SGD, old style
    numpy.testing.assert_allclose(p.detach().numpy(), [0.5, 1.0])
    p.data.mul_(2).sub_(1).div_(2).clamp_(min=0.25)
    numpy.testing.assert_allclose(p.detach().numpy(), [0.25, 0.5])
    assert p.requires_grad and p.grad_fn is None
    p.data = minigrad.zeros(3)                                      # swap in new values of any shape
    assert p.shape == (3,) and p.requires_grad


def test_in_place_arithmetic_on_a_tensor_that_requires_grad_says_what_to_write():
    p = minigrad.nn.Parameter(minigrad.ones(2))
    with pytest.raises(RuntimeError, match=r"mul_.*no_grad\(\).*tensor\.data"):
        p.mul_(3)
    with minigrad.no_grad():
        p.mul_(3)
    numpy.testing.assert_array_equal(p.detach().numpy(), [3.0, 3.0])


def test_item_assignment_writes_in_place_and_is_refused_where_autograd_would_miss_it():
    x = minigrad.arange(6).reshape(2, 3).float()
    x[x > 3] = 0.0
    x[0] = minigrad.tensor([9.0, 8.0, 7.0])
    x[:, 1] = numpy.array([1.0, 2.0], dtype=numpy.float32)
    assert x.tolist() == [[9.0, 1.0, 7.0], [3.0, 2.0, 0.0]]
    w = minigrad.ones(3, requires_grad=True)
    with pytest.raises(RuntimeError, match=r"requires grad \(shape \(3,\)\).*no_grad"):
        w[0] = 2.0


def test_data_parallel_passes_through_and_prefixes_the_state_dict_as_pytorch_does():
    inner = minigrad.nn.Linear(3, 2)
    net = minigrad.nn.DataParallel(inner, device_ids=[0])
    x = minigrad.randn(4, 3)
    numpy.testing.assert_array_equal(net(x).detach().numpy(), inner(x).detach().numpy())
    assert sorted(net.state_dict()) == ["module.bias", "module.weight"] and net.module is inner
    torch = pytest.importorskip("torch")
    theirs = torch.nn.DataParallel(torch.nn.Linear(3, 2))
    assert sorted(theirs.state_dict()) == sorted(net.state_dict())


def test_backends_cudnn_imports_as_a_module():
    import minigrad.backends.cudnn as cudnn
    cudnn.benchmark = True
    assert minigrad.backends.cudnn.benchmark is True and cudnn.is_available() is False


def test_the_coming_from_pytorch_page_runs_as_written():
    import doctest
    from pathlib import Path
    page = Path(__file__).resolve().parents[1] / "docs" / "coming_from_pytorch.md"
    result = doctest.testfile(str(page), module_relative=False,
                              optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    assert result.attempted >= 8 and result.failed == 0


def test_in_place_arithmetic_refuses_a_result_its_dtype_cannot_hold():
    t = minigrad.tensor([1, 2, 3])
    with pytest.raises(TypeError, match=r"div_: the result is float64.*int64"):
        t.div_(2)
    assert t.tolist() == [1, 2, 3] and t.add_(1).tolist() == [2, 3, 4]
