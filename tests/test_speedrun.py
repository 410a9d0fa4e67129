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


def run_speedrun(tmp_path, *args):
    data = write_cifar(tmp_path / "data", test=True)             # 5 x 12 training images, 12 test images
    environment = dict(os.environ, MPLBACKEND="Agg", OMP_NUM_THREADS="1")
    command = [sys.executable, str(SCRIPT), "--data-dir", str(data), "--out", str(tmp_path / "run"),
               "--epochs", "2", "--batch-size", "16", "--limit-train", "40", "--no-download", "--no-progress",
               *args]
    result = subprocess.run(command, cwd=REPO, env=environment, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, f"exit {result.returncode}\n{result.stdout}\n{result.stderr}"
    summaries = [line for line in result.stdout.splitlines() if line.startswith("summary:")]
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
