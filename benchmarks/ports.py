"""Run the PyTorch script ports (examples/pytorch_ports/) on minigrad and on PyTorch, and compare.

Each port marks the lines that differ from PyTorch with a trailing "# port: `<the PyTorch line>`"
comment (only imports) and its budget changes with "# budget:". The PyTorch run is the same file
with every port line swapped back (pytorch_version below), so the two runs share everything else.
torchvision has no build matching the installed torch here, so the PyTorch run imports the
stand-in in benchmarks/torch_ports/ (minigrad reads the data on both runs; see its docstring).

CIFAR-10 here has no test batch: the data folder this script builds trains on the first 40,000
training images (written as five batches of 8,000) and tests on the held-out last 10,000
(data_batch_5, written as test_batch). MNIST is used as it is.

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python benchmarks/ports.py --data ../shared/data \\
        --out /tmp/ports [--only mnist_main,cifar10_tutorial] [--engines minigrad,torch]
"""
import argparse
import json
import os
import pickle
import re
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PORTS = ROOT / "examples" / "pytorch_ports"
SHIM = Path(__file__).resolve().parent / "torch_ports"

PORT_LINE = re.compile(r"^(?P<code>.*?)\s*# port: `(?P<original>[^`]+)`\s*$")

# Each port's budget (its arguments) and the pattern of the line that reports its test accuracy.
RUNS = {
    "mnist_main": (["--epochs", "1"], r"Accuracy: \d+/\d+ \((?P<acc>[\d.]+)%\)"),
    "cifar10_tutorial": ([], r"Accuracy of the network on the 10000 test images: (?P<acc>\d+) %"),
    "cifar10_lenet": (["--epochs", "10"], r"Final test accuracy: (?P<acc>[\d.]+)%"),
    "resnet18_cifar": (["--epochs", "1", "--subset", "10000"], r"\] Loss: [\d.]+ \| Acc: (?P<acc>[\d.]+)% \(\d+/10000\)"),
}


def port_lines(text):
    """[(line number, minigrad line, PyTorch line)] for every line marked `# port:`."""
    found = []
    for number, line in enumerate(text.splitlines(), 1):
        match = PORT_LINE.match(line)
        if match:
            found.append((number, match["code"], match["original"]))
    return found


def pytorch_version(text):
    """The script as PyTorch runs it: every port line replaced by the PyTorch line it quotes."""
    lines = text.splitlines()
    for number, _, original in port_lines(text):
        indent = re.match(r"\s*", lines[number - 1]).group(0)
        lines[number - 1] = indent + original
    return "\n".join(lines) + "\n"


def budget_lines(text):
    return [number for number, line in enumerate(text.splitlines(), 1) if "# budget:" in line]


def _write_cifar_batch(path, images, labels, name):
    batch = {b"data": images.reshape(len(images), -1), b"labels": [int(v) for v in labels],
             b"batch_label": name.encode(), b"filenames": [b"%05d.png" % i for i in range(len(images))]}
    path.write_bytes(pickle.dumps(batch, protocol=2))


def make_data_folder(shared, out):
    """out/data: MNIST linked; CIFAR-10 with a test batch (the held-out last 10,000 training images if absent)."""
    import numpy
    from minigrad.data import CIFAR10
    data = out / "data"
    data.mkdir(parents=True, exist_ok=True)
    if not (data / "mnist").exists():
        (data / "mnist").symlink_to((shared / "mnist").resolve())
    folder = data / "cifar-10-batches-py"
    if not (folder / "test_batch").is_file():
        folder.mkdir(exist_ok=True)
        source = shared / "cifar-10-batches-py"
        (folder / "batches.meta").write_bytes((source / "batches.meta").read_bytes())
        if (source / "test_batch").is_file():
            for name in [f"data_batch_{k}" for k in range(1, 6)] + ["test_batch"]:
                (folder / name).write_bytes((source / name).read_bytes())
        else:
            full = CIFAR10(shared, train=True)
            images, labels = full.data, numpy.asarray(full.targets)
            for k in range(5):                                       # 40,000 training images in five files
                part = slice(8000 * k, 8000 * (k + 1))
                _write_cifar_batch(folder / f"data_batch_{k + 1}", images[part], labels[part], f"train {k + 1}")
            _write_cifar_batch(folder / "test_batch", images[40000:], labels[40000:], "held-out data_batch_5")
    return data


def run_port(name, engine, data, out, timeout):
    """Run one port on one engine in its own folder (./data and ../data lead to the data); (accuracy, seconds)."""
    args, pattern = RUNS[name]
    work = out / engine / name
    work.mkdir(parents=True, exist_ok=True)
    for link in (work / "data", work.parent / "data"):
        if not link.exists():
            link.symlink_to(data.resolve())
    text = (PORTS / f"{name}.py").read_text()
    script = work / f"{name}.py"
    script.write_text(text if engine == "minigrad" else pytorch_version(text))
    env = dict(os.environ, MPLBACKEND="Agg")
    paths = [str(ROOT)] + ([str(SHIM)] if engine == "torch" else [])
    env["PYTHONPATH"] = os.pathsep.join(paths + [env.get("PYTHONPATH", "")])
    start = time.perf_counter()
    result = subprocess.run([sys.executable, script.name] + args, cwd=work, env=env, capture_output=True,
                            text=True, timeout=timeout)
    seconds = time.perf_counter() - start
    (work / "log.txt").write_text(result.stdout + result.stderr)
    if result.returncode != 0:
        raise RuntimeError(f"{name} on {engine} failed (exit {result.returncode}); see {work / 'log.txt'}:\n"
                           f"{result.stderr[-2000:]}")
    accuracies = [float(m["acc"]) for m in re.finditer(pattern, result.stdout)]
    return (accuracies[-1] if accuracies else None), seconds


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=str(ROOT.parent / "shared" / "data"), help="folder with mnist/ and CIFAR-10")
    parser.add_argument("--out", required=True, help="work folder (outside the repository)")
    parser.add_argument("--only", default=",".join(RUNS), help="comma-separated port names")
    parser.add_argument("--engines", default="minigrad,torch")
    parser.add_argument("--timeout", type=float, default=3 * 3600)
    args = parser.parse_args()
    import numpy  # noqa: F401  (loaded first, so that threadpoolctl sees its BLAS)
    try:
        from threadpoolctl import threadpool_info
        print("BLAS:", ", ".join(f"{i.get('internal_api')} {i.get('architecture')} x{i.get('num_threads')}"
                                 for i in threadpool_info() if i.get("user_api") == "blas"))
    except ImportError:
        pass
    out = Path(args.out).resolve()
    data = make_data_folder(Path(args.data), out)
    results = {}
    for name in args.only.split(","):
        text = (PORTS / f"{name}.py").read_text()
        changed = port_lines(text)
        for engine in args.engines.split(","):
            accuracy, seconds = run_port(name, engine, data, out, args.timeout)
            results[f"{name}/{engine}"] = {"accuracy": accuracy, "seconds": round(seconds, 1),
                                           "port_lines": len(changed), "budget_lines": len(budget_lines(text))}
            print(f"{name:18s} {engine:9s} test accuracy {accuracy}%  {seconds:7.1f} s  "
                  f"({len(changed)} import lines changed, {len(budget_lines(text))} budget lines)", flush=True)
            (out / "results.json").write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
