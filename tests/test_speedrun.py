"""examples/cifar_speedrun.py: a smoke run on a tiny CIFAR-10 folder, and its augmentation functions.

The script is linear (it trains when imported), so the augmentation functions are taken out of its
source with `ast` and run on their own.
"""
import ast
import math
import os
import subprocess
import sys

import numpy
import pytest
from numpy.lib.stride_tricks import sliding_window_view

from test_examples import EXAMPLES, REPO, write_cifar

SCRIPT = EXAMPLES / "cifar_speedrun.py"


def script_functions(*names):
    """The named top-level functions of the script, compiled alone (with numpy in their globals)."""
    tree = ast.parse(SCRIPT.read_text(encoding="utf-8"))
    wanted = [node for node in tree.body if isinstance(node, ast.FunctionDef) and node.name in names]
    assert sorted(node.name for node in wanted) == sorted(names), "a function is missing from the script"
    namespace = {"numpy": numpy, "sliding_window_view": sliding_window_view}
    exec(compile(ast.Module(body=wanted, type_ignores=[]), str(SCRIPT), "exec"), namespace)
    return [namespace[name] for name in names]


def run_speedrun(tmp_path, *args, summary=True):
    data = tmp_path / "data"
    if not data.exists():
        data = write_cifar(data, test=True)                      # 5 x 12 training images, 12 test images
    environment = dict(os.environ, MPLBACKEND="Agg", OMP_NUM_THREADS="1")
    command = [sys.executable, str(SCRIPT), "--data-dir", str(data), "--out", str(tmp_path / "run"),
               "--epochs", "2", "--batch-size", "16", "--limit-train", "40", "--no-download", "--no-progress",
               *args]
    result = subprocess.run(command, cwd=REPO, env=environment, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, f"exit {result.returncode}\n{result.stdout}\n{result.stderr}"
    summaries = [line for line in result.stdout.splitlines() if line.startswith("summary:")]
    if not summary:
        assert not summaries and "--resume" in result.stdout, result.stdout
        return result.stdout
    assert len(summaries) == 1, f"expected one summary line, got {summaries}\n{result.stdout}"
    return summaries[0]


def test_speedrun_trains_two_epochs_and_reports_held_out_accuracy(tmp_path):
    summary = run_speedrun(tmp_path, "--val-size", "10")
    assert "val_acc=0." in summary or "val_acc=1." in summary, summary
    assert "held-out" in summary and "train_seconds=" in summary and "setup_seconds=" in summary, summary
    rows = (tmp_path / "run" / "metrics.csv").read_text().strip().splitlines()
    assert len(rows) == 1 + 2, rows                                # header + one row per epoch
    header = rows[0].split(",")
    for row in rows[1:]:
        values = dict(zip(header, row.split(",")))
        assert math.isfinite(float(values["train_loss"])) and math.isfinite(float(values["val_loss"])), row
    assert (tmp_path / "run" / "last.ckpt").is_file()


def test_speedrun_val_size_0_reports_test_accuracy(tmp_path):
    summary = run_speedrun(tmp_path, "--val-size", "0", "--tta", "0")
    assert "val_acc=n/a test_acc=" in summary and "test_batch" in summary, summary


@pytest.mark.parametrize("switch", [("--whitening", "none"), ("--no-dirac",), ("--filter-optimizer", "sgd"),
                                    ("--flip", "random"), ("--label-smoothing", "0")])
def test_each_ablation_switch_trains_and_is_recorded_in_the_summary(tmp_path, switch):
    """The switches docs/12 measures: each trains (finite losses) and lands in summary.json's config,
    so a run's log says which tricks were off."""
    import json
    run_speedrun(tmp_path, "--val-size", "10", "--tta", "0", *switch)
    config = json.loads((tmp_path / "run" / "summary.json").read_text())["config"]
    name = switch[0][2:].replace("-", "_")
    assert config[name] == (True if len(switch) == 1 else type(config[name])(switch[1])), config
    header, *rows = (tmp_path / "run" / "metrics.csv").read_text().strip().splitlines()
    losses = [float(dict(zip(header.split(","), row.split(",")))["train_loss"]) for row in rows]
    assert len(losses) == 2 and all(math.isfinite(x) for x in losses), losses


def test_the_sgd_ablation_leaves_the_filter_norms_free_and_muon_fixes_them(tmp_path):
    """With Muon each filter bank is rescaled to norm sqrt(filters) before every step; airbench94's SGD
    does no such thing, so its filters' norms move away from that."""
    from minigrad.utils.checkpoint import read_checkpoint
    norms = {}
    for optimizer in ("muon", "sgd"):
        folder = tmp_path / optimizer
        folder.mkdir()
        run_speedrun(folder, "--val-size", "10", "--tta", "0", "--filter-optimizer", optimizer)
        weights = read_checkpoint(folder / "run" / "last.ckpt")["model"]
        norms[optimizer] = [numpy.linalg.norm(w) / numpy.sqrt(w.shape[0]) for name, w in weights.items()
                            if w.ndim == 4 and not name.startswith("whiten")]
    assert len(norms["muon"]) == 6
    # Muon's last step (after the renormalisation) is small at the end of the linear decay
    numpy.testing.assert_allclose(norms["muon"], 1.0, rtol=0.05)
    assert max(abs(n - 1.0) for n in norms["sgd"]) > 0.05, norms["sgd"]


def test_alternating_flip_shows_every_image_both_ways_in_two_epochs():
    alternating_flips, = script_functions("alternating_flips")
    base = numpy.random.default_rng(0).random(1000) < 0.5
    for epoch in (0, 1, 2, 5):
        flipped = alternating_flips(base, epoch).astype(int) + alternating_flips(base, epoch + 1).astype(int)
        assert (flipped == 1).all(), f"epochs {epoch} and {epoch + 1}: some image flipped 0 or 2 times"
    assert 0.4 < alternating_flips(base, 0).mean() < 0.6         # epoch 0: a random half


def test_flip_mirrors_only_the_masked_images():
    flip, = script_functions("flip")
    images = numpy.arange(2 * 3 * 4 * 5, dtype=numpy.float32).reshape(2, 3, 4, 5)
    out = flip(images, numpy.array([True, False]))
    numpy.testing.assert_array_equal(out[0], images[0, :, :, ::-1])
    numpy.testing.assert_array_equal(out[1], images[1])


@pytest.mark.parametrize("dy, dx", [(0, 0), (2, 1), (-1, 2), (-2, -2)])
def test_translate_keeps_the_shape_and_shifts_like_roll(dy, dx):
    translate, = script_functions("translate")
    images = numpy.random.default_rng(1).random((3, 3, 8, 8)).astype(numpy.float32)
    out = translate(images, numpy.full(3, dy), numpy.full(3, dx))
    assert out.shape == images.shape and out.dtype == images.dtype
    rolled = numpy.roll(images, (dy, dx), axis=(2, 3))
    rows = slice(dy, None) if dy >= 0 else slice(None, dy)          # where the shifted image has real pixels
    cols = slice(dx, None) if dx >= 0 else slice(None, dx)
    numpy.testing.assert_array_equal(out[:, :, rows, cols], rolled[:, :, rows, cols])


def test_translate_fills_the_border_by_reflection():
    translate, = script_functions("translate")
    images = numpy.arange(8, dtype=numpy.float32).reshape(1, 1, 1, 8).repeat(8, axis=2)   # columns 0..7
    out = translate(images, numpy.array([0]), numpy.array([2]))
    numpy.testing.assert_array_equal(out[0, 0, 0], [2, 1, 0, 1, 2, 3, 4, 5])


def test_translate_applies_a_different_offset_per_image():
    translate, = script_functions("translate")
    images = numpy.random.default_rng(2).random((2, 3, 8, 8))
    out = translate(images, numpy.array([1, 0]), numpy.array([0, -1]))
    numpy.testing.assert_array_equal(out[0, :, 1:], images[0, :, :-1])
    numpy.testing.assert_array_equal(out[1, :, :, :-1], images[1, :, :, 1:])


def test_speedrun_resume_continues_exactly(tmp_path):
    """Two epochs in one go, and one epoch (--stop-after 1) then --resume for the second, end with the
    same weights, bit for bit: the optimizers' states, the step and the data generator all come back."""
    from minigrad.utils.checkpoint import read_checkpoint
    straight = tmp_path / "straight"
    straight.mkdir()
    run_speedrun(straight, "--val-size", "10")
    split = tmp_path / "split"
    split.mkdir()
    first = run_speedrun(split, "--val-size", "10", "--stop-after", "1", summary=False)
    assert "epoch 1/2" in first and "epoch 2/2" not in first, first
    (split / "run" / "one.ckpt").write_bytes((split / "run" / "last.ckpt").read_bytes())
    run_speedrun(split, "--val-size", "10", "--resume", str(split / "run" / "one.ckpt"))
    a, b = read_checkpoint(straight / "run" / "last.ckpt"), read_checkpoint(split / "run" / "last.ckpt")
    assert a["epoch"] == b["epoch"] == 1
    for name, value in a["model"].items():
        numpy.testing.assert_array_equal(value, b["model"][name], err_msg=name)
    assert a["extra"]["step"] == b["extra"]["step"]
    assert len(b["extra"]["history"]) == 2


def test_speedrun_refuses_to_resume_with_other_settings(tmp_path):
    run_speedrun(tmp_path, "--val-size", "10", "--epochs", "1")
    data = tmp_path / "data"
    command = [sys.executable, str(SCRIPT), "--data-dir", str(data), "--out", str(tmp_path / "run"),
               "--epochs", "2", "--batch-size", "8", "--limit-train", "40", "--no-download", "--no-progress",
               "--val-size", "10", "--resume", str(tmp_path / "run" / "last.ckpt")]
    result = subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=300)
    assert result.returncode == 2, result.stdout + result.stderr
    assert "batch_size" in result.stderr and "other settings" in result.stderr, result.stderr


def test_the_pytorch_twin_follows_the_same_trajectory(tmp_path):
    """benchmarks/torch_speedrun.py is the recipe in PyTorch with the same data, initial weights, batches
    and optimisers: after two epochs (past the whitening bias's last step) its weights, running statistics
    and per-epoch losses are the example's (so the timing comparison in bench_speedrun.py --recipe compares
    engines, not recipes). Not to float32 rounding: with 16 images a step, most directions of a filter
    bank's gradient are rounding noise, and Muon's orthogonalisation scales every direction to the same
    size, so the two engines' roundings grow to about 1% of the weights' scale in four steps; changing
    Muon's learning rate by 4% (0.24 -> 0.23) moves them by 20% or more, and the losses by 0.5%."""
    pytest.importorskip("torch")
    from minigrad.utils.checkpoint import read_checkpoint
    run_speedrun(tmp_path, "--val-size", "10", "--whiten-bias-epochs", "1")
    command = [sys.executable, str(REPO / "benchmarks" / "torch_speedrun.py"), "--data-dir", str(tmp_path / "data"),
               "--out", str(tmp_path / "torch"), "--epochs", "2", "--batch-size", "16", "--limit-train", "40",
               "--val-size", "10", "--whiten-bias-epochs", "1", "--threads", "1",
               "--save-weights", str(tmp_path / "torch.npz")]
    result = subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr

    ours = read_checkpoint(tmp_path / "run" / "last.ckpt")["model"]
    with numpy.load(tmp_path / "torch.npz") as theirs:
        assert set(ours) == set(theirs.files)
        for name in ours:
            scale = max(float(numpy.abs(theirs[name]).max()), 1e-6)
            assert numpy.abs(ours[name] - theirs[name]).max() <= 5e-2 * scale, name

    def losses(path):
        header, *rows = path.read_text().strip().splitlines()
        names = header.split(",")
        return numpy.array([[float(dict(zip(names, row.split(",")))[k]) for k in ("train_loss", "val_loss")]
                            for row in rows])
    ours, theirs = losses(tmp_path / "run" / "metrics.csv"), losses(tmp_path / "torch" / "metrics.csv")
    assert ours.shape == theirs.shape == (2, 2)
    numpy.testing.assert_allclose(ours, theirs, rtol=1e-3)
