"""Each experiment in benchmarks/experiments/ runs with --quick: its versions still equal their reference.

An experiment raises (and exits non-zero) when a version differs from its reference, so a
change in the fast layer or the kernels that an experiment relies on shows up here. No time
is asserted: the timings are the experiments' output, not a test.
"""
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("numba")
pytest.importorskip("threadpoolctl")

EXPERIMENTS = Path(__file__).resolve().parents[1] / "benchmarks" / "experiments"
FILES = sorted(path.name for path in EXPERIMENTS.glob("*.py") if path.name != "harness.py")


def test_every_experiment_is_listed_in_the_readme():
    readme = (EXPERIMENTS / "README.md").read_text()
    assert FILES and all(f"`{name}`" in readme for name in FILES), f"README.md lists {FILES}?"


@pytest.mark.parametrize("name", FILES)
def test_experiment_runs_and_its_versions_equal_the_reference(name):
    result = subprocess.run([sys.executable, str(EXPERIMENTS / name), "--quick"], cwd=EXPERIMENTS.parents[1],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, f"{name} --quick failed:\n{result.stdout[-2000:]}\n{result.stderr[-3000:]}"
    assert "ms" in result.stdout or "us" in result.stdout, f"{name} printed no timing table:\n{result.stdout}"
