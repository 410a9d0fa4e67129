"""examples/finetune.py run as a subprocess on a tiny synthetic CIFAR-10 in the official format.

The images are noise, so nothing is learned: these tests check the plumbing
(exit codes, the table, the files, reusing or importing a backbone, the
frozen linear probe, clear one-line errors), each run taking a few seconds.
"""
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

import minigrad
from minigrad import models
from test_data_formats import write_cifar

REPO = Path(__file__).resolve().parents[1]
SCRIPT = REPO / "examples" / "finetune.py"
TINY = ("--val-size", 40, "--limit-pretrain", 16, "--pretrain-epochs", 1, "--pretrain-batch-size", 8,
        "--shots", 2, "--epochs", 2, "--batch-size", 8, "--limit-val", 10)
METHOD_ROWS = ("(a) from scratch", "(b) linear probe (frozen)", "(c) full fine-tune")


def run_finetune(*args, timeout=120):
    environment = dict(os.environ, MPLBACKEND="Agg", OMP_NUM_THREADS="1")
    command = [sys.executable, str(SCRIPT), "--no-progress", *map(str, args)]
    return subprocess.run(command, cwd=REPO, env=environment, capture_output=True, text=True, timeout=timeout)


def succeeded(result):
    assert result.returncode == 0, f"exit {result.returncode}\n{result.stdout}\n{result.stderr}"
    return result


def one_line_error(result):
    assert result.returncode == 2, f"exit {result.returncode}\n{result.stdout}\n{result.stderr}"
    assert "Traceback" not in result.stderr
    lines = [line for line in result.stderr.strip().splitlines()
             if not line.startswith("minigrad: compiling")]      # the first run's notice is not an error
    assert len(lines) == 1, result.stderr
    return lines[0]


@pytest.fixture(scope="module")
def cifar_dir(tmp_path_factory):
    root = tmp_path_factory.mktemp("cifar")
    write_cifar(root, n_per_batch=20, test=False)          # 100 images, random labels 0-9
    return root


@pytest.fixture(scope="module")
def first_run(cifar_dir, tmp_path_factory):
    """One full run that pre-trains its own backbone; several tests read what it wrote."""
    out = tmp_path_factory.mktemp("run")
    return succeeded(run_finetune("--data-dir", cifar_dir, "--out", out, *TINY)), out


def test_run_prints_a_table_with_the_three_ways(first_run):
    result, _ = first_run
    for row in METHOD_ROWS:
        assert any(line.startswith(row) for line in result.stdout.splitlines()), f"no row {row!r}\n{result.stdout}"


def test_run_ends_with_one_summary_line_naming_results_and_plot(first_run):
    result, out = first_run
    lines = result.stdout.strip().splitlines()
    assert lines[-1].startswith("summary: finetune resnet20")
    assert str(out / "results.json") in lines[-1] and str(out / "finetune.png") in lines[-1]


def test_run_writes_results_curves_plot_and_backbone(first_run):
    _, out = first_run
    for name in ("results.json", "results.csv", "curves.csv", "curves.json", "finetune.png", "pretrained.ckpt"):
        assert (out / name).is_file() and (out / name).stat().st_size > 0, f"{name} missing or empty"


def test_curves_have_one_row_per_method_and_epoch(first_run):
    _, out = first_run
    rows = json.loads((out / "curves.json").read_text())
    assert [(row["method"], row["epoch"]) for row in rows] == [
        (method, epoch) for method in ("scratch", "linear_probe", "finetune") for epoch in (1, 2)]


def test_linear_probe_trains_only_the_new_head(first_run):
    _, out = first_run
    methods = json.loads((out / "results.json").read_text())["methods"]
    full = models.resnet20(num_classes=5).num_parameters()
    assert methods["linear_probe"]["trainable_parameters"] == 64 * 5 + 5      # fc: (5, 64) + (5,)
    assert methods["finetune"]["trainable_parameters"] == full
    assert methods["scratch"]["trainable_parameters"] == full


def test_second_run_reuses_the_saved_backbone(first_run, cifar_dir):
    _, out = first_run
    result = succeeded(run_finetune("--data-dir", cifar_dir, "--out", out, *TINY))
    assert "backbone: reusing" in result.stdout and "pre-training" not in result.stdout


def test_state_dict_npz_is_accepted_as_pretrained_backbone(cifar_dir, tmp_path):
    minigrad.manual_seed(0)
    weights = models.resnet20(num_classes=5).save(tmp_path / "backbone.npz")
    result = succeeded(run_finetune("--data-dir", cifar_dir, "--out", tmp_path / "run",
                                    "--pretrained", weights, *TINY))
    assert f"weights from {weights}" in result.stdout and "pre-training" not in result.stdout


def test_backbone_of_another_architecture_is_refused_in_one_line(cifar_dir, tmp_path):
    weights = models.resnet20(num_classes=5).save(tmp_path / "resnet20.npz")
    line = one_line_error(run_finetune("--data-dir", cifar_dir, "--out", tmp_path / "run", "--arch", "resnet18",
                                       "--pretrained", weights, *TINY))
    assert "do not fit resnet18" in line


def test_missing_pretrained_file_is_one_line_error(cifar_dir, tmp_path):
    line = one_line_error(run_finetune("--data-dir", cifar_dir, "--out", tmp_path / "run",
                                       "--pretrained", tmp_path / "nothing.ckpt", *TINY))
    assert "nothing.ckpt" in line


def test_missing_data_is_a_clear_error_without_traceback(tmp_path):
    result = run_finetune("--data-dir", tmp_path / "empty", "--out", tmp_path / "run", "--no-download", *TINY)
    assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr
    assert result.stderr.startswith("finetune.py: error: CIFAR-10") and "download" in result.stderr


def test_gpu_without_cuda_is_one_line_error(cifar_dir, tmp_path):
    from minigrad import backend

    if backend.gpu_available():
        pytest.skip("this machine has a GPU")
    line = one_line_error(run_finetune("--device", "gpu", "--data-dir", cifar_dir, "--out", tmp_path / "run"))
    assert "GPU" in line
