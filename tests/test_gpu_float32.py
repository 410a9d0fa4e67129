"""What training runs, in float32, on the GPU against the CPU: a whole ResNet-20 step under SGD, Adam and
RMSprop, with momentum and centered with weight decay (loss, every gradient, the parameters after the step,
batch-norm running statistics), dropout, getitem's backward, cat and split, state_dict / checkpoint
round trips on the GPU, and PyTorch weights (a torch state_dict) loaded onto the GPU.

Every comparison is written once, device against device. The GPU tests (marked gpu) compare "gpu"
with "cpu" and skip where CuPy or a device is missing; the CPU tests below run the same comparisons
"cpu" against "cpu", so the comparisons themselves are exercised everywhere.
"""
import numpy
import pytest

import minigrad
from minigrad.models import resnet20
from minigrad.utils.checkpoint import load_checkpoint, save_checkpoint
from minigrad.utils.torch_import import load_torch_state_dict

RTOL = 1e-3            # float32 on two devices: different summation orders, not different maths


def assert_close(name, ours, reference):
    """|ours - reference| <= RTOL * (largest |reference|), elementwise: float32 sums in a different order."""
    ours, reference = numpy.asarray(ours, dtype=numpy.float64), numpy.asarray(reference, dtype=numpy.float64)
    assert ours.shape == reference.shape, f"{name}: shape {ours.shape} != {reference.shape}"
    assert numpy.isfinite(ours).all(), f"{name}: not finite"
    scale = max(float(numpy.abs(reference).max()), 1e-6) if reference.size else 1.0
    worst = float(numpy.abs(ours - reference).max()) if reference.size else 0.0
    assert worst <= RTOL * scale, f"{name}: differs by {worst:.3e}, more than {RTOL} of {scale:.3e}"


OPTIMIZERS = {
    "sgd": lambda params: minigrad.optim.SGD(params, lr=0.1, momentum=0.9, nesterov=True, weight_decay=5e-4),
    "adam": lambda params: minigrad.optim.Adam(params, lr=1e-3, weight_decay=1e-4),
    "rmsprop": lambda params: minigrad.optim.RMSprop(params, lr=1e-3, momentum=0.9),
    "rmsprop-centered": lambda params: minigrad.optim.RMSprop(params, lr=1e-3, alpha=0.9, centered=True,
                                                              weight_decay=1e-4),
}


def resnet_steps(device, state, x, y, optimizer, steps=2):
    """Two training steps of ResNet-20 on `device` from `state`: what each produces, as NumPy arrays."""
    model = resnet20().to(device)
    model.load_state_dict(state)
    opt = OPTIMIZERS[optimizer](model.parameters())
    xs, ys = minigrad.tensor(x, device=device), minigrad.tensor(y, device=device)
    record = {}
    for step in range(steps):
        opt.zero_grad()
        loss = minigrad.nn.functional.cross_entropy(model(xs), ys)
        loss.backward()
        record[f"loss {step}"] = loss.item()
        for name, p in model.named_parameters():
            record[f"grad {step} {name}"] = p.grad.numpy().copy()
        opt.step()
    for name, p in model.named_parameters():
        record[f"after {name}"] = p.detach().numpy().copy()
    for name, b in model.named_buffers():
        record[f"buffer {name}"] = b.numpy().copy()
    return record


def compare_resnet_steps(device, optimizer):
    rng = numpy.random.default_rng(0)
    x = rng.standard_normal((8, 3, 32, 32)).astype(numpy.float32)
    y = rng.integers(0, 10, 8)
    minigrad.manual_seed(0)
    state = resnet20().state_dict()
    reference = resnet_steps("cpu", state, x, y, optimizer)
    ours = resnet_steps(device, state, x, y, optimizer)
    assert set(ours) == set(reference)
    for name in reference:
        assert_close(name, ours[name], reference[name])


def compare_small_ops(device):
    rng = numpy.random.default_rng(1)
    a = rng.standard_normal((6, 5)).astype(numpy.float32)
    results = {}
    for where in ("cpu", device):
        t = minigrad.tensor(a, requires_grad=True, device=where)
        picked = t[[0, 2, 2, 5]][:, 1:4]                              # fancy index (a row twice), then a slice
        parts = minigrad.split(minigrad.cat([t, t * 2], dim=0), [4, 8], dim=0)
        total = (picked * 3).sum() + (parts[0] ** 2).sum() + parts[1].mean()
        total.backward()
        results[where] = {"value": total.item(), "grad": t.grad.numpy().copy(), "split": parts[1].detach().numpy()}
    for key in results["cpu"]:
        assert_close(key, results[device][key], results["cpu"][key])


def compare_dropout(device):
    minigrad.manual_seed(3)
    x = minigrad.ones(2000, 50, requires_grad=True, device=device)
    y = minigrad.nn.functional.dropout(x, p=0.3, training=True)
    y.sum().backward()
    out, grad = y.detach().numpy(), x.grad.numpy()
    kept = out != 0
    assert abs(kept.mean() - 0.7) < 0.01                            # 100,000 coins
    numpy.testing.assert_allclose(out[kept], 1 / 0.7, rtol=1e-6)
    numpy.testing.assert_array_equal(grad != 0, kept)               # the backward uses forward's mask
    numpy.testing.assert_allclose(grad[kept], 1 / 0.7, rtol=1e-6)


def compare_round_trips(device, tmp_path):
    minigrad.manual_seed(4)
    model = resnet20().to(device)
    opt = minigrad.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    x = minigrad.tensor(numpy.random.default_rng(5).standard_normal((4, 3, 32, 32)).astype(numpy.float32), device=device)
    minigrad.nn.functional.cross_entropy(model(x), minigrad.tensor([0, 1, 2, 3], device=device)).backward()
    opt.step()
    on_cpu = resnet20()
    on_cpu.load_state_dict(model.state_dict())                      # a GPU state_dict loads on the CPU ...
    for (name, a), (_, b) in zip(model.state_dict().items(), on_cpu.state_dict().items()):
        numpy.testing.assert_array_equal(minigrad.backend.to_numpy(getattr(a, "array", a)),
                                         minigrad.backend.to_numpy(getattr(b, "array", b)), err_msg=name)
    save_checkpoint(tmp_path / "gpu.ckpt", model, opt, epoch=0)     # ... and a checkpoint comes back exactly
    again = resnet20().to(device)
    again_opt = minigrad.optim.SGD(again.parameters(), lr=0.1, momentum=0.9)
    load_checkpoint(tmp_path / "gpu.ckpt", again, again_opt)
    for (name, p), q in zip(model.named_parameters(), again.parameters()):
        assert q.device == p.device, name
        numpy.testing.assert_array_equal(q.detach().numpy(), p.detach().numpy(), err_msg=name)
    state, again_state = opt.state_dict()["state"], again_opt.state_dict()["state"]
    assert sorted(state) == sorted(again_state)


def compare_torch_import(device):
    """A torch state_dict (torch tensors) loaded through load_torch_state_dict into a model on `device`
    computes what the same weights compute on the CPU (eval mode: the running statistics are used too)."""
    torch = pytest.importorskip("torch")
    minigrad.manual_seed(6)
    source = resnet20()
    for name, b in source.named_buffers():                           # running statistics away from 0 and 1
        if b.dtype.kind == "f":
            b.array[...] = numpy.random.default_rng(len(name)).uniform(0.5, 1.5, b.shape).astype(b.dtype)
    torch_state = {name: torch.from_numpy(numpy.array(getattr(v, "array", v))) for name, v in source.state_dict().items()}
    x = numpy.random.default_rng(7).standard_normal((4, 3, 32, 32)).astype(numpy.float32)
    outputs = {}
    for where in ("cpu", device):
        model = resnet20().to(where)
        model.load_state_dict(load_torch_state_dict(torch_state))
        model.eval()
        for p in model.parameters():
            assert p.device == minigrad.backend.normalize_device(where)
        with minigrad.no_grad():
            outputs[where] = model(minigrad.tensor(x, device=where)).numpy()
    assert_close("logits after a torch state_dict", outputs[device], outputs["cpu"])


# ------------------------------------------------------------------ on the GPU
@pytest.mark.gpu
@pytest.mark.parametrize("optimizer", sorted(OPTIMIZERS))
def test_a_float32_resnet_step_on_the_gpu_matches_the_cpu(optimizer):
    compare_resnet_steps("gpu", optimizer)


@pytest.mark.gpu
def test_getitem_cat_and_split_on_the_gpu_match_the_cpu_in_float32():
    compare_small_ops("gpu")


@pytest.mark.gpu
def test_dropout_on_the_gpu_keeps_the_right_share_and_scales():
    compare_dropout("gpu")


@pytest.mark.gpu
def test_state_dicts_and_checkpoints_round_trip_on_the_gpu(tmp_path):
    compare_round_trips("gpu", tmp_path)


@pytest.mark.gpu
def test_torch_weights_load_onto_the_gpu():
    compare_torch_import("gpu")


# ------------------------------------------------------------------ the same comparisons, CPU against CPU
def test_the_torch_import_comparison_runs_on_the_cpu():
    compare_torch_import("cpu")


@pytest.mark.parametrize("optimizer", sorted(OPTIMIZERS))
def test_the_resnet_step_comparison_runs_on_the_cpu(optimizer):
    compare_resnet_steps("cpu", optimizer)


def test_the_small_op_dropout_and_round_trip_comparisons_run_on_the_cpu(tmp_path):
    compare_small_ops("cpu")
    compare_dropout("cpu")
    compare_round_trips("cpu", tmp_path)


def test_the_comparison_catches_a_difference():
    with pytest.raises(AssertionError, match="differs by"):
        assert_close("x", [1.0, 2.0], [1.0, 2.01])
    with pytest.raises(AssertionError, match="not finite"):
        assert_close("x", [numpy.nan], [1.0])
