"""Data-parallel training on one machine: a ResNet-20 step at a global batch of 256, minigrad vs PyTorch.

Six configurations, one after the other in this run, each in fresh processes:

    minigrad  1 process x 2 threads, 1 process x 1 thread, DistributedDataParallel 2 processes x 1 thread (MPI)
    PyTorch   1 process x 2 threads, 1 process x 1 thread, DistributedDataParallel 2 processes x 1 thread (gloo)

A step = zero_grad, forward, cross-entropy, backward (with the gradient all-reduce under DDP), SGD
with momentum. Each rank of a DDP run holds half the batch (128). For minigrad's DDP it also
measures the all-reduce time that backward did not hide: the time spent waiting for the
buckets when backward ends, against one blocking all-reduce of all the gradients.

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE .venv/bin/python benchmarks/bench_ddp.py [--repeats 7]
"""
import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent


def limit_threads(threads, torch=None):
    from threadpoolctl import threadpool_limits
    import minigrad  # noqa: F401
    from minigrad.kernels import numba_cpu
    numba = numba_cpu.numba_module()
    if numba is not None:
        numba.set_num_threads(min(threads, numba.config.NUMBA_NUM_THREADS))
    threadpool_limits(threads)
    if torch is not None:
        torch.set_num_threads(threads)


def minigrad_worker(args):
    import numpy
    import minigrad
    import minigrad.distributed as dist
    from minigrad import nn
    from minigrad.models import resnet20
    from minigrad.nn import parallel

    limit_threads(args.threads)
    rank, world = 0, 1
    if args.ddp:
        dist.init_process_group("mpi")
        rank, world = dist.get_rank(), dist.get_world_size()
    minigrad.manual_seed(0)
    model = resnet20()
    waits = []
    if args.ddp:
        finish = parallel._Bucket.finish

        def timed_finish(bucket, world_size):          # the wait at the end of backward: what was not hidden
            start = time.perf_counter()
            bucket.work.wait()
            waits[-1] += time.perf_counter() - start
            return finish(bucket, world_size)

        parallel._Bucket.finish = timed_finish
        model = nn.parallel.DistributedDataParallel(model)
    optimizer = minigrad.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    local = args.batch // world
    rng = numpy.random.default_rng(rank)
    x = minigrad.tensor(rng.standard_normal((local, 3, 32, 32)).astype(numpy.float32))
    y = minigrad.tensor(rng.integers(0, 10, local))
    times = []
    for step in range(args.warmup + args.repeats):
        if args.ddp:
            dist.barrier()
        waits.append(0.0)
        start = time.perf_counter()
        optimizer.zero_grad()
        minigrad.nn.functional.cross_entropy(model(x), y).backward()
        optimizer.step()
        times.append(time.perf_counter() - start)
    result = {"step_s": statistics.median(times[args.warmup:])}
    if args.ddp:
        result["wait_s"] = statistics.median(waits[args.warmup:])
        flat = numpy.concatenate([p.grad.array.reshape(-1) for p in model.parameters()])
        blocking = []
        for _ in range(args.repeats):
            dist.barrier()
            start = time.perf_counter()
            dist.all_reduce(flat)
            blocking.append(time.perf_counter() - start)
        result["allreduce_s"] = statistics.median(blocking)
        result["gradient_mib"] = flat.nbytes / 2**20
        result["buckets"] = len(model._buckets)
        if rank == 0:
            print(json.dumps(result), flush=True)
        dist.destroy_process_group()
    else:
        print(json.dumps(result), flush=True)


def torch_worker(args):
    import numpy
    import torch
    sys.path.insert(0, str(HERE))
    from bench_resnet_step import torch_resnet20

    limit_threads(args.threads, torch)
    rank, world = 0, 1
    if args.ddp:
        torch.distributed.init_process_group("gloo")
        rank, world = torch.distributed.get_rank(), torch.distributed.get_world_size()
    torch.manual_seed(0)
    model = torch_resnet20(torch)
    if args.ddp:
        model = torch.nn.parallel.DistributedDataParallel(model)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    local = args.batch // world
    rng = numpy.random.default_rng(rank)
    x = torch.from_numpy(rng.standard_normal((local, 3, 32, 32)).astype(numpy.float32))
    y = torch.from_numpy(rng.integers(0, 10, local))
    times = []
    for step in range(args.warmup + args.repeats):
        if args.ddp:
            torch.distributed.barrier()
        start = time.perf_counter()
        optimizer.zero_grad()
        torch.nn.functional.cross_entropy(model(x), y).backward()
        optimizer.step()
        times.append(time.perf_counter() - start)
    if rank == 0:
        print(json.dumps({"step_s": statistics.median(times[args.warmup:])}), flush=True)
    if args.ddp:
        torch.distributed.destroy_process_group()


def run(command, env):
    result = subprocess.run(command, capture_output=True, text=True, env=env, timeout=1800)
    if result.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} failed:\n{result.stderr[-3000:]}")
    return json.loads([line for line in result.stdout.splitlines() if line.startswith("{")][-1])


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--worker", choices=["minigrad", "torch"])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--batch", type=int, default=256, help="the global batch")
    parser.add_argument("--ddp", action="store_true")
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--warmup", type=int, default=2)
    args = parser.parse_args()
    if args.worker == "minigrad":
        return minigrad_worker(args)
    if args.worker == "torch":
        return torch_worker(args)

    import numpy  # noqa: F401  (loaded, so threadpoolctl can name its BLAS)
    from threadpoolctl import threadpool_info
    print("BLAS:", ", ".join(f"{p['internal_api']} kernel={p.get('architecture')}" for p in threadpool_info()
                             if p.get("user_api") == "blas"), f"| {os.cpu_count()} CPUs | global batch {args.batch}")
    env = dict(os.environ, OMP_NUM_THREADS="1")
    me = [sys.executable, str(Path(__file__).resolve())]
    common = ["--batch", str(args.batch), "--repeats", str(args.repeats), "--warmup", str(args.warmup)]
    mpiexec = str(Path(sys.executable).parent / "mpiexec") if (Path(sys.executable).parent / "mpiexec").exists() \
        else shutil.which("mpiexec")
    configs = [
        ("minigrad", "1 process x 2 threads", me + ["--worker", "minigrad", "--threads", "2"] + common),
        ("minigrad", "1 process x 1 thread", me + ["--worker", "minigrad", "--threads", "1"] + common),
        ("minigrad", "DDP 2 processes x 1 thread",
         [mpiexec, "-n", "2"] + me + ["--worker", "minigrad", "--threads", "1", "--ddp"] + common),
        ("torch", "1 process x 2 threads", me + ["--worker", "torch", "--threads", "2"] + common),
        ("torch", "1 process x 1 thread", me + ["--worker", "torch", "--threads", "1"] + common),
        ("torch", "DDP 2 processes x 1 thread (gloo)",
         [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_port", "29517"]
         + me[1:] + ["--worker", "torch", "--threads", "1", "--ddp"] + common),
    ]
    results = {}
    for library, name, command in configs:
        results[(library, name)] = run(command, env)
        r = results[(library, name)]
        extra = ""
        if "wait_s" in r:
            hidden = max(0.0, 1 - r["wait_s"] / r["allreduce_s"]) if r["allreduce_s"] > 0 else float("nan")
            extra = (f"  all-reduce of {r['gradient_mib']:.2f} MiB in {r['buckets']} bucket(s): "
                     f"{1000 * r['allreduce_s']:.1f} ms blocking, {1000 * r['wait_s']:.1f} ms left to wait after "
                     f"backward ({100 * hidden:.0f}% hidden)")
        print(f"{library:9s} {name:36s} {1000 * r['step_s']:8.1f} ms/step  "
              f"{args.batch / r['step_s']:7.1f} images/s{extra}", flush=True)
    m = {name: r["step_s"] for (lib, name), r in results.items() if lib == "minigrad"}
    t = {name: r["step_s"] for (lib, name), r in results.items() if lib == "torch"}
    print(f"minigrad DDP / PyTorch DDP step time: "
          f"{m['DDP 2 processes x 1 thread'] / t['DDP 2 processes x 1 thread (gloo)']:.2f}")
    print(f"minigrad 1x2 / PyTorch 1x2: {m['1 process x 2 threads'] / t['1 process x 2 threads']:.2f}")
    print(f"minigrad scaling, DDP 2x1 throughput over 1x1: "
          f"{m['1 process x 1 thread'] / m['DDP 2 processes x 1 thread']:.2f}; "
          f"PyTorch: {t['1 process x 1 thread'] / t['DDP 2 processes x 1 thread (gloo)']:.2f}")


if __name__ == "__main__":
    main()
