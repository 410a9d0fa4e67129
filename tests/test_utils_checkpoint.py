"""Checkpoints: atomic saves, exact resume, safe loading, clear errors naming the path."""
import os
import pickle

import numpy
import pytest

import minigrad
from minigrad.data import DataLoader, TensorDataset
from minigrad.optim import Adam
from minigrad.optim.lr_scheduler import StepLR
from minigrad.tensor import Tensor
from minigrad.utils import checkpoint
from minigrad.utils.checkpoint import CheckpointError, load_checkpoint, read_checkpoint, save_checkpoint


class TinySoftmaxModel:
    """logits = x @ w + b, written on Tensors directly so these tests need no nn layers."""

    def __init__(self, seed):
        rng = numpy.random.default_rng(seed)
        self.w = Tensor(rng.normal(size=(4, 3)), requires_grad=True)    # (D, K)
        self.b = Tensor(numpy.zeros(3), requires_grad=True)             # (K,)

    def __call__(self, x):
        return minigrad.matmul(x, self.w) + self.b                      # (N, D) @ (D, K) -> (N, K)

    def parameters(self):
        return [self.w, self.b]

    def state_dict(self):
        return {"w": self.w.detach().numpy().copy(), "b": self.b.detach().numpy().copy()}

    def load_state_dict(self, state):
        self.w.array[...] = state["w"]
        self.b.array[...] = state["b"]


def make_run(seed):
    """Model, optimizer, scheduler and loader; `seed` makes every fresh run different."""
    rng = numpy.random.default_rng(0)  # the data itself is the same in every run
    x = rng.normal(size=(24, 4))
    y = rng.integers(0, 3, size=24)
    model = TinySoftmaxModel(seed)
    optimizer = Adam(model.parameters(), lr=0.05)
    scheduler = StepLR(optimizer, step_size=1, gamma=0.5)
    loader = DataLoader(TensorDataset(x, y), batch_size=5, shuffle=True, seed=seed)
    return model, optimizer, scheduler, loader


def train_epoch(model, optimizer, scheduler, loader):
    """One epoch; global NumPy noise on the inputs stands in for dropout's randomness."""
    losses = []
    for x, y in loader:
        noisy = x.detach().numpy().astype(numpy.float64) + 0.1 * numpy.random.normal(size=x.shape)
        logits = model(Tensor(noisy))                                    # (B, K)
        one_hot = numpy.eye(3)[y.detach().numpy()]                                # (B, K)
        loss = -(minigrad.log_softmax(logits, dim=1) * Tensor(one_hot)).sum() / len(one_hot)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    scheduler.step()
    return losses


def test_resume_after_two_epochs_gives_exactly_the_straight_losses(tmp_path):
    minigrad.manual_seed(123)
    run = make_run(seed=1)
    straight = [train_epoch(*run) for _ in range(4)]

    minigrad.manual_seed(123)
    model, optimizer, scheduler, loader = make_run(seed=1)
    first_half = [train_epoch(model, optimizer, scheduler, loader) for _ in range(2)]
    save_checkpoint(tmp_path / "last.ckpt", model, optimizer, scheduler, epoch=1, loaders=loader)

    minigrad.manual_seed(999)                             # everything fresh and different
    model, optimizer, scheduler, loader = make_run(seed=7)
    meta = load_checkpoint(tmp_path / "last.ckpt", model, optimizer, scheduler, loaders=loader)
    second_half = [train_epoch(model, optimizer, scheduler, loader) for _ in range(2)]

    assert meta["epoch"] == 1
    assert first_half + second_half == straight          # exactly equal, not approximately


def test_resume_restores_the_learning_rate_schedule(tmp_path):
    model, optimizer, scheduler, _ = make_run(seed=1)
    for _ in range(3):
        scheduler.step()
    save_checkpoint(tmp_path / "c.ckpt", model, optimizer, scheduler)
    model, optimizer, scheduler, _ = make_run(seed=2)
    load_checkpoint(tmp_path / "c.ckpt", model, optimizer, scheduler)
    assert optimizer.param_groups[0]["lr"] == pytest.approx(0.05 * 0.5 ** 3)
    assert scheduler.last_epoch == 3


def test_load_restores_global_random_state(tmp_path):
    model, *_ = make_run(seed=1)
    minigrad.manual_seed(5)
    save_checkpoint(tmp_path / "c.ckpt", model)
    expected = numpy.random.rand(3)
    numpy.random.rand(10)
    load_checkpoint(tmp_path / "c.ckpt", model)
    numpy.testing.assert_array_equal(numpy.random.rand(3), expected)


def test_failed_write_keeps_the_previous_checkpoint(tmp_path, monkeypatch):
    path = tmp_path / "last.ckpt"
    model, optimizer, scheduler, _ = make_run(seed=1)
    save_checkpoint(path, model, optimizer, scheduler, epoch=1)

    def write_half_then_die(file, payload):
        file.write(b"\x80\x04 half a pickle")
        raise KeyboardInterrupt  # as if Ctrl-C arrived mid-write

    monkeypatch.setattr(checkpoint, "_write_payload", write_half_then_die)
    with pytest.raises(KeyboardInterrupt):
        save_checkpoint(path, model, optimizer, scheduler, epoch=2)

    assert read_checkpoint(path)["epoch"] == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["last.ckpt"]  # no temporary left over


def test_extra_and_best_metric_round_trip(tmp_path):
    model, *_ = make_run(seed=1)
    extra = {"history": [{"epoch": 1, "val_acc": 0.5}], "config": {"lr": 0.1, "arch": "mlp"}}
    save_checkpoint(tmp_path / "c.ckpt", model, epoch=3, best_metric=numpy.float64(0.75), extra=extra)
    meta = load_checkpoint(tmp_path / "c.ckpt", model)
    assert meta == {"epoch": 3, "best_metric": 0.75, "extra": extra}


def test_missing_checkpoint_error_names_the_path(tmp_path):
    with pytest.raises(FileNotFoundError, match="nothing_here.ckpt not found"):
        load_checkpoint(tmp_path / "nothing_here.ckpt")


def test_truncated_checkpoint_error_names_the_path(tmp_path):
    model, *_ = make_run(seed=1)
    path = save_checkpoint(tmp_path / "c.ckpt", model)
    path.write_bytes(path.read_bytes()[:100])
    with pytest.raises(CheckpointError, match="c.ckpt is corrupt or truncated"):
        load_checkpoint(path, model)


def test_pickle_that_calls_a_function_is_refused_and_not_run(tmp_path):
    marker = tmp_path / "was_run"

    class Payload:
        def __reduce__(self):
            return (os.mkdir, (str(marker),))

    path = tmp_path / "evil.ckpt"
    path.write_bytes(pickle.dumps({"format": checkpoint.FORMAT, "model": Payload()}, protocol=4))
    with pytest.raises(CheckpointError, match="refusing to load global"):
        load_checkpoint(path)
    assert not marker.exists()


def test_other_pickle_is_not_a_checkpoint(tmp_path):
    path = tmp_path / "other.pkl"
    path.write_bytes(pickle.dumps({"weights": numpy.zeros(2)}, protocol=4))
    with pytest.raises(CheckpointError, match="not a minigrad checkpoint"):
        load_checkpoint(path)


def test_restoring_an_optimizer_that_was_not_saved_is_an_error(tmp_path):
    model, optimizer, *_ = make_run(seed=1)
    save_checkpoint(tmp_path / "c.ckpt", model)
    with pytest.raises(CheckpointError, match="holds no optimizer state"):
        load_checkpoint(tmp_path / "c.ckpt", model, optimizer)


def test_unsaveable_object_is_named():
    with pytest.raises(TypeError, match="cannot save a set"):
        checkpoint.to_plain({"bad": {1, 2}})


def test_real_nn_module_round_trips(tmp_path):
    nn = pytest.importorskip("minigrad.nn")
    minigrad.manual_seed(0)
    model = nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4), nn.Linear(4, 2))
    model(minigrad.randn(5, 3))                           # moves the BatchNorm running statistics
    save_checkpoint(tmp_path / "c.ckpt", model)
    minigrad.manual_seed(1)
    fresh = nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4), nn.Linear(4, 2))
    load_checkpoint(tmp_path / "c.ckpt", fresh)
    for key, value in model.state_dict().items():
        numpy.testing.assert_array_equal(fresh.state_dict()[key], value, err_msg=key)
