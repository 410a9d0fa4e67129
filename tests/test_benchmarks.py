"""Smoke tests of the benchmark scripts: each runs on tiny sizes and prints its table.

No time is asserted (timings are the scripts' output, not a test). What is checked:
the scripts run, with and without torch in the process (--only minigrad), and print
a ratio when both libraries ran.
"""
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
TINY = {
    "bench_conv.py": ["--batch", "2"],
    "bench_resnet_step.py": ["--batch", "2"],
    "bench_mlp_epoch.py": ["--samples", "256"],
    "bench_ops_overhead.py": ["--calls", "20"],
    "bench_small_nets.py": ["--rows", "layers"],
}


def _run(script, *options):
    command = [sys.executable, str(REPO / "benchmarks" / script), "--threads", "1", "--repeats", "1",
               "--warmup", "0", *TINY[script], *options]
    result = subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=300,
                            env={**os.environ, "PYTHONPATH": str(REPO)})
    assert result.returncode == 0, f"{script} {options} failed:\n{result.stdout[-2000:]}\n{result.stderr[-3000:]}"
    return result.stdout


@pytest.mark.parametrize("script", sorted(TINY))
def test_benchmark_runs_with_minigrad_alone(script):
    output = _run(script, "--only", "minigrad")
    assert "n/a (--only)" in output and "torch not imported" in output


@pytest.mark.parametrize("script", sorted(TINY))
def test_benchmark_compares_with_torch(script):
    pytest.importorskip("torch")
    output = _run(script)
    assert "ratio" in output and "n/a (--only)" not in output


@pytest.mark.parametrize("script", ["bench_conv.py", "bench_resnet_step.py"])
def test_conv_benchmarks_can_switch_winograd_off(script):
    output = _run(script, "--only", "minigrad", "--conv", "im2col")
    assert "conv: im2col everywhere (--conv im2col)" in output
