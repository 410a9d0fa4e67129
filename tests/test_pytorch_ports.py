"""The PyTorch script ports (examples/pytorch_ports/) run on minigrad with only their imports changed.

Each runs here on a few tiny files in the official formats; benchmarks/ports.py runs them on the
real data against PyTorch (the accuracies are in benchmarks/RESULTS.md).
"""
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
import ports  # noqa: E402  (benchmarks/ports.py)
from test_data_formats import cifar_batch, meta_dict, py2_pickle, write_mnist  # noqa: E402

from minigrad.data import cifar10  # noqa: E402

NAMES = ["mnist_main", "cifar10_tutorial", "cifar10_lenet", "resnet18_cifar"]


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    root = tmp_path_factory.mktemp("ports") / "data"
    write_mnist(root / "mnist", n_train=70, n_test=20)
    folder = root / cifar10.FOLDER
    folder.mkdir(parents=True)
    for k, name in enumerate(cifar10.TRAIN_FILES + cifar10.TEST_FILES):
        n = 100 if name == "test_batch" else 10                # 100 test images: an untrained net scores > 0
        batch = cifar_batch(n, seed=k, name=name.encode())     # (so the ResNet-18 script saves its checkpoint)
        batch[b"labels"] = [i % 10 for i in range(n)]          # every class, as the tutorial's per-class table needs
        (folder / name).write_bytes(py2_pickle(batch))
    (folder / cifar10.META_FILE).write_bytes(py2_pickle(meta_dict()))
    return root


def run(name, data, tmp_path, *args):
    """Run a port as a user would, from a folder where ./data and ../data lead to the data."""
    work = tmp_path / "work"
    work.mkdir(exist_ok=True)
    for link in (work / "data", tmp_path / "data"):
        if not link.exists():
            link.symlink_to(data)
    env = dict(os.environ, MPLBACKEND="Agg")
    env["PYTHONPATH"] = os.pathsep.join([str(ports.ROOT), env.get("PYTHONPATH", "")])
    result = subprocess.run([sys.executable, str(ports.PORTS / f"{name}.py"), *args], cwd=work, env=env,
                            capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    return result.stdout, work


@pytest.mark.parametrize("name", NAMES)
def test_only_import_lines_differ_from_the_pytorch_script(name):
    text = (ports.PORTS / f"{name}.py").read_text()
    changed = ports.port_lines(text)
    assert 3 <= len(changed) <= 8
    for _, ours, theirs in changed:
        assert re.match(r"(import|from) minigrad[.\w]*( |$)", ours.strip()), ours
        assert re.match(r"(import|from) (torch|torchvision)[.\w]*( |$)", theirs), theirs
    torch_text = ports.pytorch_version(text)
    assert "minigrad" not in "\n".join(line.split("#")[0] for line in torch_text.splitlines()
                                       if not line.lstrip().startswith(("#", '"')) and "port:" not in line)
    assert len(ports.budget_lines(text)) <= 5


def test_the_canonical_mnist_example_trains_and_tests(data, tmp_path):
    out, _ = run("mnist_main", data, tmp_path, "--epochs", "2", "--log-interval", "1", "--save-model")
    assert out.count("Test set: Average loss") == 2 and "Train Epoch: 2 [6/70 (50%)]" in out    # 1 x len(last batch), as PyTorch prints
    assert (tmp_path / "work" / "mnist_cnn.pt").is_file()


def test_the_cifar10_tutorial_runs_every_step(data, tmp_path):
    out, work = run("cifar10_tutorial", data, tmp_path)
    assert "Finished Training" in out and "GroundTruth: " in out and "Predicted: " in out
    assert re.search(r"Accuracy of the network on the 10000 test images: \d+ %", out)
    assert len(re.findall(r"Accuracy for class: \w+ +is [\d.]+ %", out)) == 10 and out.strip().endswith("cpu")
    assert (work / "cifar_net.pth").is_file()


def test_the_lenet_script_reports_each_epoch(data, tmp_path):
    out, _ = run("cifar10_lenet", data, tmp_path, "--epochs", "2", "--batch-size", "16")
    assert len(re.findall(r"epoch \d  lr [\d.]+  loss [\d.]+  train acc [\d.]+%  test acc [\d.]+%", out)) == 2


def test_resnet18_saves_a_checkpoint_and_resumes_from_it(data, tmp_path):
    import minigrad
    out, work = run("resnet18_cifar", data, tmp_path, "--epochs", "1", "--subset", "16")
    assert "Saving.." in out
    checkpoint = minigrad.load(work / "checkpoint" / "ckpt.pth")
    assert sorted(checkpoint) == ["acc", "epoch", "net"] and checkpoint["epoch"] == 0
    assert "layer4.1.bn2.running_var" in checkpoint["net"]
    out, _ = run("resnet18_cifar", data, tmp_path, "--resume", "--epochs", "1", "--subset", "16")
    assert "==> Resuming from checkpoint.." in out and "Epoch: 0" in out
