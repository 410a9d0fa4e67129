"""Shared helpers for the benchmarks: threads, timing, memory, tables.

Every benchmark times minigrad and PyTorch IN THE SAME PROCESS with the SAME
number of threads (BLAS, Numba and torch all set to --threads), runs a few
warm-up calls first (Numba compiles, caches fill), then alternates the two
sides, one call each, for --repeats rounds and reports the median of each.
Alternating matters on a shared machine: a burst of load from elsewhere hits
both sides instead of only one. Benchmarks print tables; they never assert.

Peak memory, two methods:
  - minigrad: tracemalloc's peak during one call (NumPy reports its array
    buffers to tracemalloc), minus what was allocated before, with the fast
    layer's buffer pool emptied first (`clear_workspace`) so its buffers count;
  - both sides (bench_resnet_step.py --memory): the peak resident set size
    added by the FIRST training step in a fresh child process (`peak_rss_mib`:
    reset /proc/self/status VmHWM by writing 5 to /proc/self/clear_refs, run,
    read VmHWM minus the RSS before). This counts torch's CPU allocator, which
    tracemalloc does not see. A fresh process matters: after the first step
    both allocators keep freed memory and reuse it, and an RSS delta reads ~0.
    Linux only ("n/a" elsewhere).

minigrad must be installed (`pip install -e .`, see README): its kernels/ folder is
the package minigrad.kernels only once installed.
"""
import argparse
import os
import statistics
import sys
import time
import tracemalloc


def parser(description):
    """argparse with the flags every benchmark takes."""
    p = argparse.ArgumentParser(description=description)
    p.add_argument("--device", default="cpu", choices=["cpu", "gpu"], help="where both libraries run")
    p.add_argument("--threads", type=int, default=os.cpu_count(), help="threads for BLAS, Numba and torch")
    p.add_argument("--repeats", type=int, default=7, help="timed rounds (median reported)")
    p.add_argument("--warmup", type=int, default=2, help="untimed rounds first")
    p.add_argument("--reference", action="store_true",
                   help="run minigrad's reference ops only (minigrad/ops/, NumPy or CuPy): no Numba kernels and "
                        "no fast layer (minigrad.ops.registry.clear())")
    p.add_argument("--conv", default="auto", choices=["auto", "im2col"],
                   help="the fast layer's convolution algorithm: auto = Winograd F(2x2, 3x3) where it suits "
                        "(minigrad/fast/winograd.py) and im2col for the rest; im2col = im2col everywhere")
    p.add_argument("--memory", action="store_true", help="also measure peak memory (one extra call each)")
    p.add_argument("--only", choices=["minigrad", "torch"],
                   help="time one library alone in this process (torch is not even imported for minigrad): "
                        "run it once per library and divide, when the two thread pools disturb each other")
    p.add_argument("--blocks", action="store_true",
                   help="time all minigrad rounds, then all torch rounds, instead of alternating call by call "
                        "(with several threads, one library's idle pool spins while the other works)")
    return p


def setup(args):
    """Set every thread pool to args.threads, import torch; print the set-up. Returns torch (None: --only minigrad)."""
    import numpy
    from threadpoolctl import threadpool_limits

    torch = None
    if getattr(args, "only", None) != "minigrad":
        import torch
        torch.set_num_threads(args.threads)
    import minigrad  # noqa: F401  (registers the fast layer; compiles nothing)
    from minigrad.kernels import numba_cpu

    numba = numba_cpu.numba_module()     # imports Numba and picks its threading layer before any thread starts
    if numba is not None:
        numba.set_num_threads(min(args.threads, numba.config.NUMBA_NUM_THREADS))
        numba_text = f"numba {numba.__version__} ({numba.get_num_threads()} threads, {numba.threading_layer()} layer)"
    else:
        numba_text = "numba absent"
    threadpool_limits(args.threads)
    if args.reference:
        from minigrad.ops import registry
        registry.clear()                 # every op runs the code in minigrad/ops/
        numba_text += ", minigrad: reference ops only (--reference)"
    else:
        numba_text += ", minigrad kernels: " + ("Numba" if numba is not None else "NumPy (numba absent)")
        if getattr(args, "conv", "auto") == "im2col":
            import minigrad.fast.conv
            minigrad.fast.conv.install(use_winograd=False)
    if getattr(args, "conv", "auto") == "im2col":   # (the reference Conv2d of --reference is im2col too)
        numba_text += ", conv: im2col everywhere (--conv im2col)"
    if args.device == "gpu" and torch is not None and not torch.cuda.is_available():
        sys.exit("--device gpu: this torch build has no CUDA; install a CUDA torch and CuPy")
    torch_text = "not imported" if torch is None else f"{torch.__version__} ({torch.get_num_threads()} threads)"
    print(f"python {sys.version.split()[0]}, numpy {numpy.__version__}, torch {torch_text}, {numba_text}")
    print(f"threads: {args.threads}, device: {args.device}, median of {args.repeats} after {args.warmup} warm-up"
          + (f", only {args.only}" if getattr(args, "only", None) else ""))
    print_blas()
    return torch


def print_blas():
    """The BLAS / OpenMP libraries loaded in this process, with their kernel and thread count."""
    from threadpoolctl import threadpool_info

    for pool in threadpool_info():
        if pool.get("user_api") != "blas":
            continue
        arch = pool.get("architecture") or "?"
        print(f"BLAS: {pool['internal_api']} {pool.get('version')} kernel={arch} "
              f"threads={pool['num_threads']} ({os.path.basename(pool['filepath'])})")


def synchronize(device):
    if device == "gpu":
        import cupy
        import torch
        cupy.cuda.Device().synchronize()
        torch.cuda.synchronize()


def time_pair(run_minigrad, run_torch, args):
    """Median seconds per call of each, alternating calls after warm-up (or in blocks, --blocks)."""
    only = getattr(args, "only", None)
    if only:
        return (time_one(run_minigrad, args), None) if only == "minigrad" else (None, time_one(run_torch, args))
    if getattr(args, "blocks", False):
        return time_one(run_minigrad, args), time_one(run_torch, args)
    for _ in range(args.warmup):
        run_minigrad()
        run_torch()
    synchronize(args.device)
    ours, theirs = [], []
    for _ in range(args.repeats):
        for run, times in ((run_minigrad, ours), (run_torch, theirs)):
            start = time.perf_counter()
            run()
            synchronize(args.device)
            times.append(time.perf_counter() - start)
    return statistics.median(ours), statistics.median(theirs)


def time_one(run, args):
    """Median seconds per call of run() alone: warm-up calls, then --repeats timed calls."""
    for _ in range(args.warmup):
        run()
    synchronize(args.device)
    times = []
    for _ in range(args.repeats):
        start = time.perf_counter()
        run()
        synchronize(args.device)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def _vm_kib(field):
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise KeyError(field)


def peak_rss_mib(run):
    """Peak resident memory added during run(), in MiB (Linux only; None elsewhere).

    Memory the C allocator freed earlier and reuses does not raise the RSS, so
    call it on a fresh process (see the module docstring).
    """
    try:
        with open("/proc/self/clear_refs", "w") as clear:
            clear.write("5")                     # reset VmHWM to the current RSS
        before = _vm_kib("VmRSS")
    except OSError:
        run()
        return None
    run()
    return (_vm_kib("VmHWM") - before) / 1024


def peak_tracemalloc_mib(run):
    """Peak Python/NumPy allocation during run(), in MiB (blind to torch's allocator)."""
    tracemalloc.start()
    base, _ = tracemalloc.get_traced_memory()
    run()
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return (peak - base) / 2**20


def clear_workspace():
    """Empty the fast layer's buffer pool, so that a memory measurement counts the buffers it takes."""
    from minigrad.kernels.numba_cpu import workspace
    workspace.clear()


def fmt_mib(value):
    return "n/a" if value is None else f"{value:.0f}"


def print_table(headers, rows):
    """A plain-text table, columns right-aligned except the first."""
    rows = [[str(cell) for cell in row] for row in rows]
    widths = [max(len(str(h)), *(len(r[i]) for r in rows)) if rows else len(str(h)) for i, h in enumerate(headers)]
    line = "  ".join(str(h).ljust(w) if i == 0 else str(h).rjust(w) for i, (h, w) in enumerate(zip(headers, widths)))
    print(line)
    print("-" * len(line))
    for r in rows:
        print("  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(r, widths))))


def ms(seconds):
    return f"{1e3 * seconds:.1f}"


def to_device_minigrad(array, device, requires_grad=False):
    import minigrad
    return minigrad.tensor(array, requires_grad=requires_grad, device=device)


def to_device_torch(torch, array, device, requires_grad=False):
    t = torch.from_numpy(array).to("cuda" if device == "gpu" else "cpu")
    return t.requires_grad_(requires_grad)
