"""The first run on a lent GPU: everything the GPU path needs to prove, in one command and one log.

    python benchmarks/gpu_smoke.py --log /tmp/gpu_smoke.log          # on the GPU machine, under 5 minutes
    python benchmarks/gpu_smoke.py --device cpu --quick              # the same steps on the CPU (CI runs this)

No network and no installs: it uses what the machine has and prints the versions first. Steps, each
timed and logged, a failure recorded and the next step run anyway:

 1. environment: python -m minigrad.doctor (versions, devices, the GPU probe, which kernels compile);
 2. the GPU suite: pytest tests/test_gpu.py -x;
 3. a float32 ResNet-20 training step on the device against the CPU, from the same weights and batch:
    loss, every gradient and the parameters after an SGD step (rtol 1e-3);
 4. 20 timed steps at batch 128 (ms per step, peak device memory), beside PyTorch on the same device
    when a CUDA PyTorch is installed;
 5. examples/cifar_resnet.py --device gpu end to end on a small CIFAR-10 folder it writes, then
    --resume for a second epoch; the loss must be finite.

The exit code is the number of failed steps.
"""
import argparse
import pickle
import statistics
import subprocess
import sys
import tempfile
import time
import traceback
from pathlib import Path

import numpy

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


class Log:
    def __init__(self, path):
        self.file = open(path, "w", encoding="utf-8") if path else None

    def __call__(self, text=""):
        print(text, flush=True)
        if self.file:
            self.file.write(text + "\n")
            self.file.flush()


def run_command(log, command, timeout):
    log("$ " + " ".join(command))
    result = subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=timeout)
    for line in (result.stdout + result.stderr).splitlines()[-60:]:
        log("  " + line)
    if result.returncode != 0:
        raise RuntimeError(f"exit code {result.returncode}")


def environment(args, log):
    run_command(log, [sys.executable, "-m", "minigrad.doctor"], timeout=300)
    from minigrad import backend
    if args.device == "gpu" and not backend.gpu_available():
        raise RuntimeError(f"the GPU is not usable: {backend._cupy_error}")


def gpu_suite(args, log):
    if args.device != "gpu":
        log("  skipped: the GPU suite needs a GPU (it skips itself on the CPU)")
        return
    run_command(log, [sys.executable, "-m", "pytest", "-q", "-x", "-p", "no:cacheprovider", "tests/test_gpu.py"],
                timeout=1800)


def resnet_step(model, optimizer, x, y):
    import minigrad
    optimizer.zero_grad()
    loss = minigrad.nn.functional.cross_entropy(model(x), y)
    loss.backward()
    gradients = [p.grad.numpy().copy() for p in model.parameters()]
    optimizer.step()
    return loss.item(), gradients, [p.detach().numpy().copy() for p in model.parameters()]


def step_against_cpu(args, log):
    import minigrad
    from minigrad.models import resnet20
    batch = 8 if args.quick else 32
    rng = numpy.random.default_rng(0)
    x = rng.standard_normal((batch, 3, 32, 32)).astype(numpy.float32)
    y = rng.integers(0, 10, batch)
    minigrad.manual_seed(0)
    on_cpu = resnet20()
    on_device = resnet20().to(args.device)
    on_device.load_state_dict(on_cpu.state_dict())
    results = []
    for model, device in ((on_cpu, "cpu"), (on_device, args.device)):
        optimizer = minigrad.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
        results.append(resnet_step(model, optimizer, minigrad.tensor(x, device=device), minigrad.tensor(y, device=device)))
    (loss_c, grads_c, params_c), (loss_d, grads_d, params_d) = results
    log(f"  loss: cpu {loss_c:.6f}, {args.device} {loss_d:.6f}")
    if not numpy.isfinite(loss_d) or abs(loss_c - loss_d) > 1e-3 * abs(loss_c):
        raise RuntimeError("the losses differ")
    worst = 0.0
    for name, a, b in zip([n for n, _ in on_cpu.named_parameters()], grads_c + params_c, grads_d + params_d):
        scale = float(numpy.abs(a).max()) or 1.0
        difference = float(numpy.abs(a - b).max()) / scale
        worst = max(worst, difference)
        if difference > 1e-3:
            raise RuntimeError(f"{name}: gradient or parameter differs by {difference:.2e} of its scale")
    log(f"  every gradient and parameter after SGD within {worst:.1e} of the CPU's (relative to its largest value)")


def timed_steps(args, log):
    import minigrad
    from minigrad import backend
    from minigrad.models import resnet20
    batch, steps = (16, 3) if args.quick else (128, 20)
    rng = numpy.random.default_rng(1)
    x_np = rng.standard_normal((batch, 3, 32, 32)).astype(numpy.float32)
    y_np = rng.integers(0, 10, batch)
    model = resnet20().to(args.device)
    optimizer = minigrad.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    x, y = minigrad.tensor(x_np, device=args.device), minigrad.tensor(y_np, device=args.device)

    def synchronize():
        if args.device == "gpu":
            backend.cupy_module().cuda.Device().synchronize()

    def step():
        optimizer.zero_grad()
        minigrad.nn.functional.cross_entropy(model(x), y).backward()
        optimizer.step()

    for _ in range(3):
        step()
    synchronize()
    times = []
    for _ in range(steps):
        start = time.perf_counter()
        step()
        synchronize()
        times.append(time.perf_counter() - start)
    memory = ""
    if args.device == "gpu":
        pool = backend.cupy_module().get_default_memory_pool()
        memory = f", CuPy pool {pool.total_bytes() / 2**20:.0f} MiB"
    log(f"  minigrad ResNet-20 step at batch {batch}: {1000 * statistics.median(times):.1f} ms (median of {steps})"
        + memory)
    try:
        import torch
    except ImportError:
        log("  PyTorch: not installed, no comparison")
        return
    if args.device == "gpu" and not torch.cuda.is_available():
        log(f"  PyTorch {torch.__version__}: no CUDA in this build, no comparison")
        return
    sys.path.insert(0, str(REPO / "benchmarks"))
    from bench_resnet_step import torch_resnet20
    device = "cuda" if args.device == "gpu" else "cpu"
    net = torch_resnet20(torch).to(device)
    opt = torch.optim.SGD(net.parameters(), lr=0.1, momentum=0.9)
    xt, yt = torch.from_numpy(x_np).to(device), torch.from_numpy(y_np).to(device)

    def torch_step():
        opt.zero_grad()
        torch.nn.functional.cross_entropy(net(xt), yt).backward()
        opt.step()

    for _ in range(3):
        torch_step()
    if device == "cuda":
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
    times = []
    for _ in range(steps):
        start = time.perf_counter()
        torch_step()
        if device == "cuda":
            torch.cuda.synchronize()
        times.append(time.perf_counter() - start)
    peak = f", peak {torch.cuda.max_memory_allocated() / 2**20:.0f} MiB" if device == "cuda" else ""
    log(f"  PyTorch {torch.__version__} ResNet-20 step: {1000 * statistics.median(times):.1f} ms{peak}")


def write_cifar(root, images_per_batch):
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    rng = numpy.random.default_rng(2)
    for name in [f"data_batch_{k}" for k in range(1, 6)]:
        batch = {b"data": rng.integers(0, 256, (images_per_batch, 3072), dtype=numpy.uint8),
                 b"labels": [int(v) for v in rng.integers(0, 10, images_per_batch)]}
        (folder / name).write_bytes(pickle.dumps(batch, protocol=2))
    names = [b"airplane", b"automobile", b"bird", b"cat", b"deer", b"dog", b"frog", b"horse", b"ship", b"truck"]
    (folder / "batches.meta").write_bytes(pickle.dumps({b"label_names": names}, protocol=2))


def example_end_to_end(args, log):
    with tempfile.TemporaryDirectory() as folder:
        folder = Path(folder)
        write_cifar(folder / "data", 40 if args.quick else 400)
        common = [sys.executable, "examples/cifar_resnet.py", "--device", args.device, "--data-dir",
                  str(folder / "data"), "--out", str(folder / "run"), "--epochs", "2", "--val-size", "40",
                  "--batch-size", "32", "--no-progress", "--no-download"]
        run_command(log, common + ["--stop-after", "1"], timeout=900)
        run_command(log, common + ["--resume", str(folder / "run" / "last.ckpt")], timeout=900)
        import json
        rows = json.loads((folder / "run" / "metrics.json").read_text())
        losses = [row["train_loss"] for row in rows]
        log(f"  train loss by epoch: {losses}")
        if len(rows) != 2 or not all(numpy.isfinite(losses)):
            raise RuntimeError("the example did not log two finite epochs")


STEPS = [("environment and versions", environment), ("the GPU suite", gpu_suite),
         ("a float32 ResNet-20 step against the CPU", step_against_cpu),
         ("timed ResNet-20 steps beside PyTorch", timed_steps),
         ("examples/cifar_resnet.py end to end, then --resume", example_end_to_end)]


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="gpu", choices=["gpu", "cpu"])
    parser.add_argument("--log", default=None, help="also write the log to this file")
    parser.add_argument("--quick", action="store_true", help="small sizes (the CPU check in CI)")
    args = parser.parse_args()
    log = Log(args.log)
    failed = []
    started = time.perf_counter()
    for number, (name, step) in enumerate(STEPS, 1):
        log(f"== {number}. {name}")
        start = time.perf_counter()
        try:
            step(args, log)
            log(f"   ok ({time.perf_counter() - start:.1f} s)")
        except Exception as error:
            failed.append(name)
            log(f"   FAILED ({time.perf_counter() - start:.1f} s): {type(error).__name__}: {error}")
            for line in traceback.format_exc().splitlines()[-8:]:
                log("   " + line)
    log(f"== {len(STEPS) - len(failed)} of {len(STEPS)} steps passed in {time.perf_counter() - started:.0f} s"
        + (f"; failed: {', '.join(failed)}" if failed else ""))
    sys.exit(len(failed))


if __name__ == "__main__":
    main()
