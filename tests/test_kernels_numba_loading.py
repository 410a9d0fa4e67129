"""Loading the Numba CPU kernels (kernels/numba_cpu/__init__.py) and the policy that picks their loops.

- `load(name)` imports a kernel on first use, or returns None without Numba; minigrad's fast layer
  (minigrad/fast/cpu_kernels.py) registers lazy stand-ins, so `import minigrad` imports no Numba.
- The kernels are a leaf: loaded on their own, they run without minigrad. (The import arrows are
  checked by AST in tests/test_layers.py.)
- The policy: `run_loop` runs a loop's serial twin under LIMITS["serial_below_bytes"] and its parallel
  loop (one launch at a time) from it; the kernels start with the plainest policy and `import
  minigrad` configures minigrad/fast/tuning.py's limits.
- Threads: the first kernel picks Numba's workqueue layer unless the user chose one.
"""
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy
import pytest

pytest.importorskip("numba")

from kernels_common import assert_same, kernel_policy, loops_taken, random_cols  # noqa: E402
from minigrad.fast import cpu_kernels, tuning                                     # noqa: E402
from minigrad.kernels import numba_cpu                                            # noqa: E402
from minigrad.ops.im2col import col2im_numpy, im2col_numpy                        # noqa: E402

REPOSITORY = Path(__file__).resolve().parents[1]


def _run_child(code, extra_env=None, cwd=REPOSITORY, args=()):
    """Run `code` in a fresh Python without NUMBA_THREADING_LAYER (unless extra_env sets it); its stdout."""
    env = {key: value for key, value in os.environ.items() if key != "NUMBA_THREADING_LAYER"}
    env.update(extra_env or {})
    result = subprocess.run([sys.executable, "-c", code, *args], env=env, cwd=cwd, capture_output=True, text=True,
                            timeout=300)
    assert result.returncode == 0, result.stderr
    return result.stdout


# ------------------------------------------------------------------ load
def test_load_returns_none_when_numba_is_absent(monkeypatch):
    monkeypatch.setattr(numba_cpu, "numba_available", lambda: False)
    monkeypatch.setattr(numba_cpu, "_functions", {})
    assert numba_cpu.load("im2col") is None


def test_load_rejects_an_unknown_kernel_name():
    with pytest.raises(KeyError, match="unknown kernel 'im3col'"):
        numba_cpu.load("im3col")


@pytest.mark.parametrize("name", sorted(numba_cpu.KERNELS))
def test_every_kernel_in_the_table_loads(name):
    kernel = numba_cpu.load(name)
    assert callable(kernel) and numba_cpu.load(name) is kernel           # imported once, then kept


def test_lazy_stand_in_runs_the_reference_when_numba_is_absent(monkeypatch):
    monkeypatch.setattr(numba_cpu, "numba_available", lambda: False)
    monkeypatch.setattr(numba_cpu, "_functions", {})
    calls = []

    def reference(x, *args):
        calls.append(x.dtype)
        return im2col_numpy(x, *args)

    x = numpy.random.default_rng(1).standard_normal((1, 2, 4, 4))
    cols = cpu_kernels.lazy("im2col", reference)(x, 3, 3, (1, 1), (1, 1), (1, 1))
    assert calls == [numpy.float64]
    assert_same("im2col without Numba", cols, im2col_numpy(x, 3, 3, (1, 1), (1, 1), (1, 1)))


def test_registered_kernel_sends_float16_to_the_numpy_fallback():
    from minigrad.ops.im2col import im2col as dispatch_im2col

    x = numpy.random.default_rng(5).standard_normal((1, 2, 4, 4)).astype(numpy.float16)
    assert_same("float16 im2col", dispatch_im2col(x, 3, 3, (1, 1), (1, 1), (1, 1)),
                im2col_numpy(x, 3, 3, (1, 1), (1, 1), (1, 1)))


def test_importing_minigrad_and_building_a_conv_net_does_not_import_numba():
    code = ("import sys, minigrad, minigrad.nn, minigrad.ops.im2col, minigrad.ops.pool\n"
            "minigrad.nn.Conv2d(3, 8, 3)\n"
            "print('numba' in sys.modules)")
    assert _run_child(code).strip() == "False"


# ------------------------------------------------------------------ the kernels are a leaf
_LEAF_SCRIPT = """
import importlib.util, json, os, sys
import numpy
folder = sys.argv[1]
spec = importlib.util.spec_from_file_location("leaf_kernels", os.path.join(folder, "__init__.py"),
                                              submodule_search_locations=[folder])
package = importlib.util.module_from_spec(spec)
sys.modules["leaf_kernels"] = package
spec.loader.exec_module(package)
from leaf_kernels import numba_cpu
from leaf_kernels.numba_cpu import workspace
limits = (dict(numba_cpu.LIMITS), dict(workspace.LIMITS))
x = numpy.random.default_rng(0).standard_normal((8, 16, 32, 32))
cols = numba_cpu.load("im2col")(x, 3, 3, (2, 2), (1, 1), (1, 1))     # strided, 2.4 MB of cols
numpy.save(sys.argv[2], cols)
import numba
print(json.dumps({
    "limits": limits,
    "minigrad": sorted(name for name in sys.modules if name.split(".")[0] == "minigrad"),
    "constant_size_loops": len(sys.modules["leaf_kernels.numba_cpu.im2col"]._constant_size_loops),
    "pooled_bytes": workspace.pooled_bytes(),
    "layer": numba.threading_layer(),          # raises unless a parallel loop started Numba's threads
    "environment": os.environ.get("NUMBA_THREADING_LAYER"),
}))
"""


def test_the_kernels_load_and_run_without_minigrad_with_the_plainest_policy(tmp_path):
    """kernels/ loaded as a package of its own (another name, from another folder): its kernels run and
    no minigrad module is imported. Unconfigured, the policy is the plainest: every loop parallel (Numba's
    threads started, with the workqueue layer), no loop compiled for constant sizes, nothing pooled.
    (A cache of its own: Numba's cached loops name the module they were compiled in, and loading one
    written under minigrad.kernels would import minigrad.)"""
    output = _run_child(_LEAF_SCRIPT, {"NUMBA_CACHE_DIR": str(tmp_path / "numba_cache")}, cwd=tmp_path,
                        args=(str(REPOSITORY / "kernels"), str(tmp_path / "cols.npy")))
    report = json.loads(output.strip().splitlines()[-1])
    assert report["minigrad"] == []
    assert report["limits"] == [{"serial_below_bytes": 0, "constant_sizes_from_bytes": None},
                                {"min_bytes": 0, "max_bytes": 0}]
    assert report["constant_size_loops"] == 0 and report["pooled_bytes"] == 0
    assert report["layer"] == "workqueue" and report["environment"] is None
    x = numpy.random.default_rng(0).standard_normal((8, 16, 32, 32))
    assert_same("im2col, leaf", numpy.load(tmp_path / "cols.npy"), im2col_numpy(x, 3, 3, (2, 2), (1, 1), (1, 1)))


def test_import_minigrad_configures_the_kernels_with_the_tuned_limits():
    code = ("import json, minigrad\n"
            "from minigrad.kernels import numba_cpu\n"
            "from minigrad.kernels.numba_cpu import workspace\n"
            "print(json.dumps([numba_cpu.LIMITS, workspace.LIMITS]))")
    limits = json.loads(_run_child(code).strip().splitlines()[-1])
    assert limits == [{"serial_below_bytes": tuning.NUMBA_SERIAL_BELOW_BYTES,
                       "constant_sizes_from_bytes": tuning.NUMBA_CONSTANT_SIZES_FROM_BYTES},
                      {"min_bytes": tuning.BUFFER_POOL_MIN_BYTES, "max_bytes": tuning.BUFFER_POOL_MAX_BYTES}]


# ------------------------------------------------------------------ the policy: serial twin or parallel loop
def test_run_loop_runs_the_serial_twin_under_serial_below_bytes_and_the_parallel_loop_from_it():
    """The parallel loop holds launch_lock (the workqueue layer is not re-entrant); the serial twin does not."""
    ran = []

    def serial(value):
        ran.append(("serial", value, numba_cpu.launch_lock.locked()))

    def parallel(value):
        ran.append(("parallel", value, numba_cpu.launch_lock.locked()))

    with kernel_policy(serial_below_bytes=100):
        numba_cpu.run_loop(serial, parallel, 99, "a")
        numba_cpu.run_loop(serial, parallel, 100, "b")
    with kernel_policy(serial_below_bytes=0):
        numba_cpu.run_loop(serial, parallel, 0, "c")
    assert ran == [("serial", "a", False), ("parallel", "b", True), ("parallel", "c", True)]


def test_configure_leaves_the_limits_it_is_not_given():
    with kernel_policy(serial_below_bytes=123, constant_sizes_from_bytes=45):
        numba_cpu.configure(serial_below_bytes=7)
        assert numba_cpu.LIMITS == {"serial_below_bytes": 7, "constant_sizes_from_bytes": 45}


@pytest.mark.parametrize("shape, kind", [((1, 64, 64, 64), "parallel"), ((1, 2, 8, 8), "serial")],
                         ids=["big", "small"])
def test_tuned_policy_sends_big_arrays_to_the_parallel_loops_and_small_ones_to_the_serial_twins(shape, kind):
    """With tuning.NUMBA_SERIAL_BELOW_BYTES, 9 MiB of cols (a 3x3 layer on one 64x64x64 image) runs on Numba's
    threads and a tiny layer on the calling thread; both give the references' numbers."""
    x = numpy.random.default_rng(2).standard_normal(shape).astype(numpy.float32)
    geometry = (x, 3, 3, (1, 1), (1, 1), (1, 1))
    cols_bytes = im2col_numpy(*geometry).nbytes
    assert (cols_bytes >= tuning.NUMBA_SERIAL_BELOW_BYTES) == (kind == "parallel"), f"cols of {cols_bytes} bytes"
    dcols = random_cols(*geometry)
    with kernel_policy(serial_below_bytes=tuning.NUMBA_SERIAL_BELOW_BYTES,
                       constant_sizes_from_bytes=tuning.NUMBA_CONSTANT_SIZES_FROM_BYTES), loops_taken() as taken:
        assert_same("im2col", numba_cpu.load("im2col")(*geometry), im2col_numpy(*geometry))
        numpy.testing.assert_allclose(numba_cpu.load("col2im")(dcols, x.shape, *geometry[1:]),
                                      col2im_numpy(dcols, x.shape, *geometry[1:]), rtol=1e-5, atol=1e-5)
    suffix = "" if kind == "parallel" else "_serial"
    assert taken == [(kind, f"_im2col_rows_flat{suffix}"), (kind, f"_col2im_planes{suffix}")]


# ------------------------------------------------------------------ wiring into minigrad's dispatchers
@pytest.mark.parametrize("name", sorted(cpu_kernels.REFERENCES))
def test_every_kernel_is_registered_for_the_cpu_as_a_lazy_stand_in(name):
    from minigrad.ops.registry import find_kernel

    kernel = find_kernel(name, numpy.zeros(1))
    assert kernel is not None and kernel.__name__ == f"{name}_numba", f"{name}: registered {kernel!r}"
    assert name in numba_cpu.KERNELS


def test_conv2d_gradcheck_through_numba_kernels_with_stride_padding_dilation():
    import minigrad
    from minigrad.ops.conv import conv2d

    rng = numpy.random.default_rng(3)
    x = minigrad.tensor(rng.standard_normal((2, 2, 6, 5)), requires_grad=True)
    w = minigrad.tensor(rng.standard_normal((3, 2, 2, 3)), requires_grad=True)
    assert minigrad.gradcheck(lambda x, w: conv2d(x, w, stride=(2, 1), padding=(1, 2), dilation=(2, 1)), [x, w])


def test_max_pool2d_gradcheck_through_numba_kernels():
    import minigrad
    from minigrad.ops.pool import max_pool2d

    x = minigrad.tensor(numpy.random.default_rng(4).permutation(2 * 2 * 5 * 5).reshape(2, 2, 5, 5) / 7.0,
                        requires_grad=True)      # distinct values: no ties for finite differences to straddle
    assert minigrad.gradcheck(lambda x: max_pool2d(x, 3, stride=2, padding=1), [x])


# ------------------------------------------------------------------ threading layer
_LAYER_SCRIPT = (
    "import os, numpy, minigrad\n"
    "from minigrad.fast import tuning\n"
    "from minigrad.ops.im2col import im2col\n"
    "cols = im2col(numpy.ones((1, 64, 64, 64), numpy.float32), 3, 3, (1, 1), (1, 1), (1, 1))\n"
    "assert cols.nbytes >= tuning.NUMBA_SERIAL_BELOW_BYTES   # the parallel loop starts Numba's threads\n"
    "import numba\n"
    "print(numba.threading_layer(), os.environ.get('NUMBA_THREADING_LAYER'))\n"
)


def test_kernels_select_the_workqueue_threading_layer_by_default_and_leave_the_environment_alone():
    assert _run_child(_LAYER_SCRIPT).split()[-2:] == ["workqueue", "None"]


def test_kernels_keep_a_threading_layer_the_user_chose():
    assert _run_child(_LAYER_SCRIPT, {"NUMBA_THREADING_LAYER": "omp"}).split()[-2:] == ["omp", "omp"]


def test_the_first_run_says_that_it_compiles_and_the_second_does_not(tmp_path):
    """With an empty Numba cache the first kernel call compiles for seconds: one line on stderr says so;
    a second process finds the machine code on disk and says nothing."""
    pytest.importorskip("numba")
    code = ("import numpy, minigrad\n"
            "minigrad.nn.functional.relu(minigrad.tensor(numpy.ones((512, 1024), numpy.float32)))\n")
    environment = dict(os.environ, NUMBA_CACHE_DIR=str(tmp_path / "numba-cache"))
    runs = [subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300,
                           env=environment) for _ in range(2)]
    assert [run.returncode for run in runs] == [0, 0], runs[0].stderr + runs[1].stderr
    assert runs[0].stderr.count("compiling the Numba kernels for this machine (first run only") == 1
    assert "compiling" not in runs[1].stderr
