"""What every experiment in this folder shares, as llm.c's dev/cuda/common.h: the command line,
thread limits, the check against the reference, a median time and a table.

An experiment checks every version against its reference BEFORE timing anything (`check`
raises on the first difference beyond float rounding), then prints one table. Timings are
printed when a file runs, never written into it.
"""
import argparse
import statistics
import sys
import time

import numpy


def parser(description):
    """argparse with the flags every experiment takes."""
    p = argparse.ArgumentParser(description=description)
    p.add_argument("--quick", action="store_true",
                   help="tiny sizes and one timed call per version: checks that the file runs (the tests use it)")
    p.add_argument("--repeats", type=int, default=None, help="timed calls per version, median reported")
    p.add_argument("--threads", type=int, default=1, help="threads for BLAS and Numba (1: no thread noise)")
    return p


def setup(args, repeats=9):
    """Fill in --repeats (1 with --quick), limit BLAS and Numba to --threads, print the set-up."""
    if args.repeats is None:
        args.repeats = 1 if args.quick else repeats
    text = limit_threads(args.threads)
    print(f"python {sys.version.split()[0]}, numpy {numpy.__version__}, {text}, "
          f"median of {args.repeats} after warm-up" + (" (--quick)" if args.quick else ""))


def limit_threads(threads):
    """BLAS and Numba on `threads` threads (Numba's layer chosen by minigrad before its threads start)."""
    from minigrad.kernels import numba_cpu

    parts = []
    numba = numba_cpu.numba_module()
    if numba is not None:
        numba.set_num_threads(min(threads, numba.config.NUMBA_NUM_THREADS))
        parts.append(f"numba {numba.__version__} ({numba.get_num_threads()} threads)")
    try:
        from threadpoolctl import threadpool_limits
        threadpool_limits(threads)
        parts.append(f"BLAS {threads} thread(s)")
    except ImportError:
        parts.append("BLAS threads not limited (no threadpoolctl)")
    return ", ".join(parts)


def check(name, got, want, exact=False):
    """Raise unless `got` equals `want`: bit for bit (exact), else to the float rounding of got's dtype."""
    got, want = numpy.asarray(got), numpy.asarray(want)
    if got.shape != want.shape:
        raise AssertionError(f"{name}: shape {got.shape}, expected {want.shape}")
    if exact:
        numpy.testing.assert_array_equal(got, want, err_msg=f"{name} differs from the reference")
        return
    # A sum of many float32 terms in another order differs in its last bits, relative to the terms' size.
    rtol = 1e-4 if got.dtype == numpy.float32 else 1e-10
    scale = float(numpy.abs(want).max()) if want.size else 0.0
    numpy.testing.assert_allclose(got, want, rtol=rtol, atol=rtol * scale,
                                  err_msg=f"{name} differs from the reference beyond float rounding")


def median_ms(run, repeats, min_seconds=2e-3):
    """Median milliseconds per call of run(), after two warm-up calls (Numba compiles, caches fill).

    Calls shorter than min_seconds are timed in batches of calls, so the clock's resolution does not count.
    """
    run()
    start = time.perf_counter()
    run()
    once = time.perf_counter() - start
    number = max(1, min(1000, int(min_seconds / max(once, 1e-7))))
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        for _ in range(number):
            run()
        times.append((time.perf_counter() - start) / number)
    return 1e3 * statistics.median(times)


def print_table(headers, rows):
    """A plain-text table, columns right-aligned except the first."""
    rows = [[str(cell) for cell in row] for row in rows]
    widths = [max([len(str(h))] + [len(r[i]) for r in rows]) for i, h in enumerate(headers)]
    line = "  ".join(str(h).ljust(w) if i == 0 else str(h).rjust(w) for i, (h, w) in enumerate(zip(headers, widths)))
    print(line)
    print("-" * len(line))
    for r in rows:
        print("  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(r, widths))))


def forward_backward(function_class, x, w, dy, stride, padding):
    """(y, dx, dW) of one call of function_class(stride, padding) on Tensors x and w."""
    x.grad = w.grad = None
    y = function_class(stride, padding)(x, w, None)
    y.backward(dy)
    return y.array, x.grad.array, w.grad.array


def time_conv_versions(versions, reference, layers, batch, repeats, seed=0):
    """For each layer (C_in, F, size, kernel, stride): check every version of a conv Function class against
    `reference` (y, dx, dW), then time each; yields (label, cols MiB, [ms per version])."""
    import minigrad

    rng = numpy.random.default_rng(seed)
    for c_in, filters, size, kernel, stride in layers:
        padding = kernel // 2
        out = (size + 2 * padding - kernel) // stride + 1
        x = minigrad.tensor(rng.standard_normal((batch, c_in, size, size)).astype(numpy.float32), requires_grad=True)
        w = minigrad.tensor((rng.standard_normal((filters, c_in, kernel, kernel))
                             * (2 / (c_in * kernel * kernel)) ** 0.5).astype(numpy.float32), requires_grad=True)
        dy = minigrad.tensor(rng.standard_normal((batch, filters, out, out)).astype(numpy.float32))
        label = f"{c_in}->{filters} {size}x{size} k{kernel} s{stride}, batch {batch}"
        want = forward_backward(reference, x, w, dy, stride, padding)
        for name, version in versions.items():
            got = forward_backward(version, x, w, dy, stride, padding)
            for what, g, e in zip(("y", "dx", "dW"), got, want):
                check(f"version {name}, {label}, {what}", g, e)
        del want, got
        times = [median_ms(lambda v=version: forward_backward(v, x, w, dy, stride, padding), repeats)
                 for version in versions.values()]
        yield label, c_in * kernel * kernel * batch * out * out * 4 / 2**20, times
