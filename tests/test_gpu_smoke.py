"""benchmarks/gpu_smoke.py, the first lent GPU's one command, runs every step here on the CPU, so that
the script itself cannot be what fails on its first real run."""
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def test_every_step_of_the_gpu_smoke_script_runs_on_the_cpu(tmp_path):
    log = tmp_path / "smoke.log"
    result = subprocess.run([sys.executable, str(REPO / "benchmarks" / "gpu_smoke.py"), "--device", "cpu", "--quick",
                             "--log", str(log)], capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]
    text = log.read_text()
    assert "== 5 of 5 steps passed" in text and "numpy" in text and "train loss by epoch" in text
