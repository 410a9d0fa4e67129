"""The example scripts, run as subprocesses on tiny synthetic data sets in the official formats.

MNIST: gzip-compressed IDX files (big-endian header, magic 2051 for images, 2049 for
labels). CIFAR-10: pickled dicts data_batch_1..5 and batches.meta, `data` (n, 3072)
uint8 and `labels` a list of ints. The images are random noise, so nothing is
learned; these tests check the plumbing: exit codes, the summary line, the
files written, exact resume, Ctrl-C, and the GPU message.
"""
import gzip
import json
import os
import pickle
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy
import pytest

REPO = Path(__file__).resolve().parents[1]
EXAMPLES = REPO / "examples"
# Columns that must match exactly between a straight run and a resumed one (not timings).
EXACT_COLUMNS = ("epoch", "train_loss", "train_acc", "val_loss", "val_acc", "lr")


def write_idx(path, array, magic):
    header = magic.to_bytes(4, "big") + b"".join(d.to_bytes(4, "big") for d in array.shape)
    path.write_bytes(gzip.compress(header + array.astype(numpy.uint8).tobytes()))


@pytest.fixture(scope="module")
def mnist_dir(tmp_path_factory):
    root = tmp_path_factory.mktemp("data")
    folder = root / "mnist"
    folder.mkdir()
    rng = numpy.random.default_rng(0)
    for prefix, n in (("train", 80), ("t10k", 20)):
        write_idx(folder / f"{prefix}-images-idx3-ubyte.gz", rng.integers(0, 256, (n, 28, 28)), 2051)
        write_idx(folder / f"{prefix}-labels-idx1-ubyte.gz", rng.integers(0, 10, n), 2049)
    return root


def write_cifar(root, images_per_batch=12, test=False):
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    rng = numpy.random.default_rng(1)
    names = [f"data_batch_{k}" for k in range(1, 6)] + (["test_batch"] if test else [])
    for name in names:
        # bytes keys, as Python 2's cPickle wrote them in the official files
        batch = {b"batch_label": name.encode(),
                 b"data": rng.integers(0, 256, (images_per_batch, 3072), dtype=numpy.uint8),
                 b"labels": [int(v) for v in rng.integers(0, 10, images_per_batch)]}
        (folder / name).write_bytes(pickle.dumps(batch, protocol=4))
    meta = {b"label_names": [b"airplane", b"automobile", b"bird", b"cat", b"deer", b"dog", b"frog",
                             b"horse", b"ship", b"truck"], b"num_vis": 3072}
    (folder / "batches.meta").write_bytes(pickle.dumps(meta, protocol=4))
    return root


@pytest.fixture(scope="module")
def cifar_dir(tmp_path_factory):
    return write_cifar(tmp_path_factory.mktemp("cifar"))


def run_example(script, *args, env=None, timeout=120):
    environment = dict(os.environ, MPLBACKEND="Agg", OMP_NUM_THREADS="1", **(env or {}))
    command = [sys.executable, str(EXAMPLES / script), "--no-progress", *map(str, args)]
    return subprocess.run(command, cwd=REPO, env=environment, capture_output=True, text=True, timeout=timeout)


def summary_line(result):
    lines = [line for line in result.stdout.splitlines() if line.startswith("summary:")]
    assert result.returncode == 0, f"exit {result.returncode}\n{result.stdout}\n{result.stderr}"
    assert len(lines) == 1, result.stdout
    return lines[0]


def assert_run_files(out):
    for name in ("last.ckpt", "metrics.csv", "metrics.json", "curves.png", "confusion.png", "samples.png"):
        path = out / name
        assert path.is_file() and path.stat().st_size > 0, f"{path} missing or empty"


def exact_columns(out):
    rows = json.loads((out / "metrics.json").read_text())
    return [{k: row[k] for k in EXACT_COLUMNS if k in row} for row in rows]


TINY_MNIST = ("--val-size", 20, "--batch-size", 16, "--hidden", 32)
TINY_CIFAR = ("--val-size", 8, "--limit-train", 16, "--batch-size", 8, "--arch", "resnet20")


# ---------------------------------------------------------------------------------------- mnist_mlp
def test_mnist_mlp_runs_and_writes_checkpoint_log_and_plots(mnist_dir, tmp_path):
    out = tmp_path / "run"
    line = summary_line(run_example("mnist_mlp.py", "--data-dir", mnist_dir, "--out", out,
                                    "--epochs", 2, *TINY_MNIST))
    assert "test_acc=" in line and "epochs=2" in line and str(out / "last.ckpt") in line
    assert_run_files(out)
    assert len(exact_columns(out)) == 2


def test_mnist_mlp_resume_continues_exactly(mnist_dir, tmp_path):
    straight, resumed = tmp_path / "straight", tmp_path / "resumed"
    summary_line(run_example("mnist_mlp.py", "--data-dir", mnist_dir, "--out", straight,
                             "--epochs", 3, *TINY_MNIST))
    summary_line(run_example("mnist_mlp.py", "--data-dir", mnist_dir, "--out", resumed,
                             "--epochs", 3, "--stop-after", 1, *TINY_MNIST))
    summary_line(run_example("mnist_mlp.py", "--data-dir", mnist_dir, "--out", resumed,
                             "--epochs", 3, "--resume", resumed / "last.ckpt", *TINY_MNIST))
    assert exact_columns(resumed) == exact_columns(straight)


def default_sigint():
    """In the child, before it runs Python: SIGINT back to its default. A test run started with SIGINT
    ignored (`nohup`, `cmd &` in a script) would hand the ignore down, and Python would then never
    raise KeyboardInterrupt: the Ctrl-C test would wait for nothing."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


@pytest.mark.parametrize("stop_signal, parent_ignores_sigint", [(signal.SIGINT, False), (signal.SIGTERM, False),
                                                                (signal.SIGINT, True)],
                         ids=["ctrl_c", "sigterm", "ctrl_c_with_sigint_ignored_by_the_test_run"])
def test_mnist_mlp_interrupt_saves_checkpoint_and_exits_130(mnist_dir, tmp_path, stop_signal, parent_ignores_sigint):
    out = tmp_path / "run"
    environment = dict(os.environ, MPLBACKEND="Agg", OMP_NUM_THREADS="1")
    command = [sys.executable, str(EXAMPLES / "mnist_mlp.py"), "--no-progress", "--data-dir", str(mnist_dir),
               "--out", str(out), "--epochs", "100000", *map(str, TINY_MNIST)]
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN) if parent_ignores_sigint else None
    try:
        process = subprocess.Popen(command, cwd=REPO, env=environment, stdout=subprocess.PIPE,
                                   stderr=subprocess.PIPE, text=True, preexec_fn=default_sigint)
    finally:
        if previous is not None:
            signal.signal(signal.SIGINT, previous)
    deadline = time.monotonic() + 60
    while not (out / "metrics.json").exists() and time.monotonic() < deadline and process.poll() is None:
        time.sleep(0.05)                                   # wait until training is under way
    process.send_signal(stop_signal)
    try:
        stdout, stderr = process.communicate(timeout=180)   # generous: CI machines can be busy
    except subprocess.TimeoutExpired:
        process.kill()
        stdout, stderr = process.communicate()
        pytest.fail(f"no exit within 180 s of {stop_signal!r}; stdout:\n{stdout}\nstderr:\n{stderr}")
    assert process.returncode == 130, f"{stdout}\n{stderr}"
    assert (out / "interrupted.ckpt").is_file()
    assert f"checkpoint saved to {out / 'interrupted.ckpt'}" in stderr and "Traceback" not in stderr


def test_missing_data_gives_one_clear_message(tmp_path):
    result = run_example("mnist_mlp.py", "--data-dir", tmp_path / "empty", "--out", tmp_path / "run", "--no-download")
    assert result.returncode == 2
    assert "not found" in result.stderr and "Traceback" not in result.stderr
    assert "unless --no-download" in result.stderr


def test_an_example_downloads_missing_data_and_refuses_a_bad_checksum(mnist_dir, tmp_path):
    """A user's first run, no data anywhere: the example downloads the MNIST files into --data-dir (here
    from a local mirror standing in for the internet, $MINIGRAD_DATA_MIRROR), checks each SHA-256, and
    says clearly what failed: these small test files are not the official ones."""
    data = tmp_path / "data"
    environment = {"MINIGRAD_DATA_MIRROR": (mnist_dir / "mnist").as_uri()}
    result = run_example("mnist_mlp.py", "--data-dir", data, "--out", tmp_path / "run", env=environment)
    assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr
    assert "could not download train-images-idx3-ubyte.gz" in result.stderr
    assert "checksum mismatch" in result.stderr and "file://" in result.stderr
    assert "ossci-datasets" not in result.stderr                     # a mirror replaces the official URLs
    assert not any((data / "mnist").glob("*.gz"))                    # nothing unverified is kept


def test_readmes_first_command_needs_no_shared_folder():
    """README's first command is what a user runs on a fresh machine: no ../shared there."""
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    first = readme.split("```bash", 1)[1].split("```", 1)[0]
    assert "python examples/cifar_resnet.py" in first and "shared" not in first


def test_resume_from_missing_checkpoint_gives_one_clear_message(mnist_dir, tmp_path):
    result = run_example("mnist_mlp.py", "--data-dir", mnist_dir, "--out", tmp_path / "run",
                         "--resume", tmp_path / "nope.ckpt", *TINY_MNIST)
    assert result.returncode == 2
    assert "nope.ckpt not found" in result.stderr and "Traceback" not in result.stderr


# ---------------------------------------------------------------------------------------- mnist_cnn
def test_mnist_cnn_runs_and_writes_checkpoint_log_and_plots(mnist_dir, tmp_path):
    out = tmp_path / "run"
    line = summary_line(run_example("mnist_cnn.py", "--data-dir", mnist_dir, "--out", out,
                                    "--epochs", 1, "--limit-train", 16, "--val-size", 20, "--batch-size", 8))
    assert line.startswith("summary: mnist_cnn test_acc=") and "epochs=1" in line
    assert_run_files(out)


# ---------------------------------------------------------------------------------------- cifar_resnet
def test_cifar_resnet_reports_held_out_validation_without_test_batch(cifar_dir, tmp_path):
    out = tmp_path / "run"
    line = summary_line(run_example("cifar_resnet.py", "--data-dir", cifar_dir, "--out", out,
                                    "--epochs", 1, *TINY_CIFAR))
    assert "val_acc=" in line and "held-out validation, last 8 training images" in line
    assert "test_acc=n/a" in line
    assert_run_files(out)


def test_cifar_resnet_reports_official_test_accuracy_when_test_batch_exists(tmp_path):
    data = write_cifar(tmp_path / "data", images_per_batch=4, test=True)
    line = summary_line(run_example("cifar_resnet.py", "--data-dir", data, "--out", tmp_path / "run",
                                    "--epochs", 1, "--schedule", "cosine", "--optimizer", "adam",
                                    *TINY_CIFAR))
    assert "(official test_batch, 4 images)" in line


def test_cifar_resnet_resume_continues_exactly(cifar_dir, tmp_path):
    straight, resumed = tmp_path / "straight", tmp_path / "resumed"
    summary_line(run_example("cifar_resnet.py", "--data-dir", cifar_dir, "--out", straight,
                             "--epochs", 2, *TINY_CIFAR))
    summary_line(run_example("cifar_resnet.py", "--data-dir", cifar_dir, "--out", resumed,
                             "--epochs", 2, "--stop-after", 1, *TINY_CIFAR))
    summary_line(run_example("cifar_resnet.py", "--data-dir", cifar_dir, "--out", resumed,
                             "--epochs", 2, "--resume", resumed / "last.ckpt", *TINY_CIFAR))
    assert exact_columns(resumed) == exact_columns(straight)


def test_cifar_resnet_gpu_without_cuda_gives_one_clear_message(cifar_dir, tmp_path):
    from minigrad import backend

    if backend.gpu_available():
        pytest.skip("this machine has a GPU")
    result = run_example("cifar_resnet.py", "--device", "gpu", "--data-dir", cifar_dir, "--out", tmp_path / "run")
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    lines = [line for line in result.stderr.strip().splitlines()
             if not line.startswith("minigrad: compiling")]      # the first run's notice is not an error
    assert len(lines) == 1 and "GPU" in lines[0] and "pip install" in lines[0], result.stderr


@pytest.mark.parametrize("script", sorted(p.name for p in EXAMPLES.glob("*.py")))
def test_help_shows_the_defaults(script):
    result = subprocess.run([sys.executable, str(EXAMPLES / script), "--help"], capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 0, result.stderr
    assert "(default: " in result.stdout and "--seed" in result.stdout


def test_the_readme_headline_run_is_the_default_run():
    """README quotes `cifar_resnet.py --arch resnet20 --epochs 40`; that is what the script runs by default."""
    result = subprocess.run([sys.executable, str(EXAMPLES / "cifar_resnet.py"), "--help"], capture_output=True,
                            text=True, timeout=120)
    assert "--epochs EPOCHS       (default: 40)" in result.stdout
    assert "--arch resnet20 --epochs 40" in (REPO / "README.md").read_text(encoding="utf-8")


def final_weights(out):
    """The model's arrays in a run's last checkpoint, by name."""
    from minigrad.utils.checkpoint import read_checkpoint

    return {name: numpy.asarray(value) for name, value in read_checkpoint(out / "last.ckpt")["model"].items()}


@pytest.mark.parametrize("script, data, options", [
    ("mnist_mlp.py", "mnist_dir", ("--epochs", 40, "--dropout", 0.2, *TINY_MNIST)),
    ("cifar_resnet.py", "cifar_dir", ("--epochs", 12, *TINY_CIFAR)),
])
def test_sigint_at_a_random_step_then_resume_equals_a_straight_run(request, tmp_path, script, data, options):
    """Send SIGINT to a real training run at a random moment, resume from its checkpoint, and compare with a
    run that was never interrupted: the final weights bit for bit, and every exact column of the log."""
    data_dir = request.getfixturevalue(data)
    arguments = ["--data-dir", data_dir, "--seed", 5, *options]
    straight = tmp_path / "straight"
    summary_line(run_example(script, *arguments, "--out", straight, timeout=600))
    rng = numpy.random.default_rng()                               # a different moment on every run
    for attempt in range(5):
        stopped = tmp_path / f"stopped{attempt}"
        environment = dict(os.environ, MPLBACKEND="Agg", OMP_NUM_THREADS="1")
        command = [sys.executable, str(EXAMPLES / script), "--no-progress", "--out", str(stopped),
                   *map(str, arguments)]
        process = subprocess.Popen(command, cwd=REPO, env=environment, stdout=subprocess.PIPE,
                                   stderr=subprocess.PIPE, text=True, preexec_fn=default_sigint)
        deadline = time.monotonic() + 300
        while not (stopped / "metrics.json").exists() and time.monotonic() < deadline and process.poll() is None:
            time.sleep(0.01)                                        # the first epoch is done: training runs
        time.sleep(float(rng.uniform(0, 0.1)))
        process.send_signal(signal.SIGINT)
        stdout, stderr = process.communicate(timeout=300)
        if process.returncode == 130 and (stopped / "interrupted.ckpt").is_file():
            break                                                   # else training had ended: again
    else:
        pytest.skip("the run always finished before SIGINT arrived")
    assert (stopped / "interrupted.ckpt").is_file(), stderr
    resumed = run_example(script, *arguments, "--out", stopped, "--resume", stopped / "interrupted.ckpt",
                          timeout=600)
    summary_line(resumed)
    assert exact_columns(stopped) == exact_columns(straight)
    expected = final_weights(straight)
    for name, value in final_weights(stopped).items():
        numpy.testing.assert_array_equal(value, expected[name], err_msg=name)


def test_readme_says_where_a_user_gets_torchs_cpu_build():
    """`pip install torch==2.13.0` from the public index is the CUDA build (GBs); README points a user at
    PyTorch's CPU wheel index, while .ci/run keeps the plain command these machines serve locally."""
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    assert "--index-url https://download.pytorch.org/whl/cpu" in " ".join(readme.split())
    assert "pip install --quiet torch==2.13.0" in (REPO / ".ci" / "run").read_text(encoding="utf-8")


# ---------------------------------------------------------------------------------------- --distributed
def run_ranks(script, *args, ranks=2, timeout=300):
    """The example under mpiexec -n `ranks` (skipped where MPI is not installed)."""
    import minigrad.distributed as dist
    mpiexec = Path(sys.executable).parent / "mpiexec"
    if not dist.is_available() or not mpiexec.exists():
        pytest.skip("needs mpi4py and mpiexec: pip install 'minigrad[distributed]'")
    environment = dict(os.environ, MPLBACKEND="Agg", OMP_NUM_THREADS="1")
    command = [str(mpiexec), "-n", str(ranks), sys.executable, str(EXAMPLES / script), "--no-progress",
               "--distributed", *map(str, args)]
    return subprocess.run(command, cwd=REPO, env=environment, capture_output=True, text=True, timeout=timeout)


def test_cifar_resnet_trains_on_two_processes_and_only_rank_0_reports(cifar_dir, tmp_path):
    out = tmp_path / "run"
    result = run_ranks("cifar_resnet.py", "--data-dir", cifar_dir, "--out", out, "--epochs", 2, *TINY_CIFAR)
    line = summary_line(result)                                   # exactly one summary: rank 0's
    assert "2 processes x 4 images" in result.stdout and result.stdout.count("epoch 2/2:") == 1
    assert_run_files(out)
    # A checkpoint of the two ranks is the plain model: it loads into one process for evaluation.
    import minigrad
    from minigrad.utils.checkpoint import load_checkpoint
    model = minigrad.models.resnet20(num_classes=10)
    meta = load_checkpoint(out / "last.ckpt", model)
    assert meta["epoch"] == 1 and "val_acc=" in line


def test_cifar_resnet_resumes_exactly_on_two_processes(cifar_dir, tmp_path):
    straight, resumed = tmp_path / "straight", tmp_path / "resumed"
    summary_line(run_ranks("cifar_resnet.py", "--data-dir", cifar_dir, "--out", straight, "--epochs", 2,
                           *TINY_CIFAR))
    summary_line(run_ranks("cifar_resnet.py", "--data-dir", cifar_dir, "--out", resumed, "--epochs", 2,
                           "--stop-after", 1, *TINY_CIFAR))
    summary_line(run_ranks("cifar_resnet.py", "--data-dir", cifar_dir, "--out", resumed, "--epochs", 2,
                           "--resume", resumed / "last.ckpt", *TINY_CIFAR))
    assert exact_columns(resumed) == exact_columns(straight)


def plain_mnist_model(script):
    """The model TINY_MNIST trains, built in this process (no SyncBatchNorm, no DDP)."""
    from minigrad.models import MLP, LeNet5
    if script == "mnist_mlp.py":
        return MLP(28 * 28, [32], 10, dropout=0.2)
    return LeNet5(num_classes=10, channels=[32, 64], hidden=[32], batch_norm=True, dropout=0.25)


@pytest.mark.parametrize("script", ["mnist_mlp.py", "mnist_cnn.py"])
def test_mnist_trains_on_two_processes_and_only_rank_0_reports(mnist_dir, tmp_path, script):
    out = tmp_path / "run"
    result = run_ranks(script, "--data-dir", mnist_dir, "--out", out, "--epochs", 2, *TINY_MNIST)
    line = summary_line(result)                                   # exactly one summary: rank 0's
    assert line.startswith(f"summary: {script[:-3]} test_acc=") and "epochs=2" in line
    assert "2 processes x 8 images" in result.stdout and result.stdout.count("epoch 2/2:") == 1
    assert_run_files(out)
    assert len(exact_columns(out)) == 2
    # A checkpoint of the two ranks is the plain model (SyncBatchNorm's keys are BatchNorm's): it loads here.
    from minigrad.utils.checkpoint import load_checkpoint
    meta = load_checkpoint(out / "last.ckpt", plain_mnist_model(script))
    assert meta["epoch"] == 1


@pytest.mark.parametrize("script", ["mnist_mlp.py", "mnist_cnn.py"])
def test_mnist_resumes_exactly_on_two_processes(mnist_dir, tmp_path, script):
    straight, resumed = tmp_path / "straight", tmp_path / "resumed"
    summary_line(run_ranks(script, "--data-dir", mnist_dir, "--out", straight, "--epochs", 2, *TINY_MNIST))
    summary_line(run_ranks(script, "--data-dir", mnist_dir, "--out", resumed, "--epochs", 2,
                           "--stop-after", 1, *TINY_MNIST))
    summary_line(run_ranks(script, "--data-dir", mnist_dir, "--out", resumed, "--epochs", 2,
                           "--resume", resumed / "last.ckpt", *TINY_MNIST))
    assert exact_columns(resumed) == exact_columns(straight)
