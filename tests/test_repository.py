"""The checkout stays clean: what .ci/run and the examples create is ignored by git."""
import shutil
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("path", [".ci-venv/bin/python", ".ci-venv-wheel/bin/python", ".venv/bin/python",
                                  "runs/cifar_resnet20/last.ckpt"])
def test_what_ci_and_the_examples_create_is_ignored(path):
    if shutil.which("git") is None or not (REPO / ".git").exists():
        pytest.skip("not a git checkout")
    done = subprocess.run(["git", "check-ignore", "-q", "--no-index", path], cwd=REPO)
    assert done.returncode == 0, f"{path} is not ignored by .gitignore"
