"""python -m minigrad.doctor: what this machine gives minigrad, in one screen.

Versions, the CPU's BLAS and threads, whether Numba imports and compiles (the CPU kernels), whether
the GPU is usable (CuPy, the CUDA driver and runtime, the devices, and backend.probe_gpu's three
checks), whether minigrad's CUDA C kernels and Numba CUDA compile, and MPI for
minigrad.distributed. Each line says what is missing and how to get it. It changes nothing.
"""
import importlib
import os
import platform
import sys

import numpy


def _version(name):
    try:
        module = importlib.import_module(name)
    except Exception as error:                      # missing, or installed but broken
        return None, f"{type(error).__name__}: {error}"
    return module, getattr(module, "__version__", "?")


def lines():
    """The report, line by line (a generator, so a slow check shows the lines before it)."""
    from minigrad import backend
    yield f"python {sys.version.split()[0]} on {platform.platform()}, {os.cpu_count()} CPUs"
    yield f"numpy {numpy.__version__}"
    try:
        from threadpoolctl import threadpool_info
        for pool in threadpool_info():
            if pool.get("user_api") == "blas":
                yield (f"  BLAS: {pool['internal_api']} {pool.get('version')} kernel={pool.get('architecture')} "
                       f"threads={pool['num_threads']}")
    except ImportError:
        yield "  BLAS: (pip install threadpoolctl to see which BLAS and how many threads)"

    from minigrad.kernels import numba_cpu
    numba = numba_cpu.numba_module()
    if numba is None:
        _, why = _version("numba")
        yield f"numba: cannot be imported ({why}); the CPU runs NumPy's reference paths. pip install -U numba"
    else:
        try:
            compiled = numba.njit(lambda a: a + 1)(1)
            state = "compiles" if compiled == 2 else "compiled a wrong answer"
        except Exception as error:
            state = f"does not compile ({type(error).__name__}: {error})"
        yield f"numba {numba.__version__}: {state}; threading layer {numba.config.THREADING_LAYER}"

    cupy, why = _version("cupy")
    if cupy is None:
        yield f"GPU: CuPy not importable ({why}); {backend.GPU_INSTALL_HINT}"
    else:
        yield f"cupy {cupy.__version__}"
        try:
            runtime, driver = cupy.cuda.runtime.runtimeGetVersion(), cupy.cuda.runtime.driverGetVersion()
            count = cupy.cuda.runtime.getDeviceCount()
            yield f"  CUDA runtime {runtime // 1000}.{runtime % 1000 // 10}, driver supports {driver // 1000}." \
                  f"{driver % 1000 // 10}; {count} device(s)"
            for index in range(count):
                props = cupy.cuda.runtime.getDeviceProperties(index)
                name = props["name"].decode() if isinstance(props["name"], bytes) else props["name"]
                yield f"  device {index}: {name}, {props['totalGlobalMem'] / 2**30:.1f} GiB"
        except Exception as error:
            yield f"  CUDA unusable: {type(error).__name__}: {error}"
        failure = backend.probe_gpu(cupy)
        yield "  probe (elementwise, float32 matmul, kernel compile): " + ("ok" if failure is None else failure)
        if failure is None:
            yield "  minigrad CUDA C kernels: " + _compile_cuda_kernels()
    numba_cuda, why = _version("numba.cuda")
    if numba_cuda is not None:
        try:
            available = numba_cuda.is_available()
        except Exception as error:
            available = f"error ({error})"
        yield f"numba.cuda: {'a device answers' if available is True else f'no usable device ({available})'}"

    mpi4py, why = _version("mpi4py")
    if mpi4py is None:
        yield "MPI: mpi4py not installed (minigrad.distributed needs it: pip install -e \".[distributed]\")"
    else:
        try:
            from mpi4py import MPI
            library = MPI.Get_library_version().splitlines()[0].strip()
        except Exception as error:
            library = f"cannot load an MPI library ({type(error).__name__}: {error})"
        yield f"mpi4py {mpi4py.__version__}: {library}"
    torch, _ = _version("torch")
    yield f"torch {torch.__version__} (tests and benchmarks only)" if torch is not None else "torch: not installed " \
        "(only the tests' comparisons and the benchmarks use it)"


def _compile_cuda_kernels():
    from minigrad.fast import gpu
    failed = []
    for name in gpu.source_files():
        try:
            gpu.compile_source(name)
        except Exception as error:
            failed.append(f"{name} ({type(error).__name__}: {error})")
    return "all compile" if not failed else "FAILED: " + "; ".join(failed)


def main():
    for line in lines():
        print(line, flush=True)


if __name__ == "__main__":
    main()
