"""Atomic writes leave no temporaries behind a killed process and give files their normal mode."""
import os
import signal
import subprocess
import sys

import pytest

from minigrad import nn
from minigrad.utils import atomic
from minigrad.utils.checkpoint import load_checkpoint, save_checkpoint


def a_dead_pid():
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    if atomic._process_alive(child.pid):                     # reused at once: very unlikely
        pytest.skip("the finished child's PID is in use again")
    return child.pid


def test_a_checkpoint_has_the_mode_of_a_normal_file(tmp_path):
    previous = os.umask(0o022)
    try:
        path = save_checkpoint(tmp_path / "last.ckpt", nn.Linear(2, 2))
        module_path = nn.Linear(2, 2).save(tmp_path / "weights.npz")
    finally:
        os.umask(previous)
    assert oct(os.stat(path).st_mode & 0o777) == oct(0o644)
    assert oct(os.stat(module_path).st_mode & 0o777) == oct(0o644)


def test_the_next_save_removes_temporaries_of_killed_processes_only(tmp_path):
    dead = tmp_path / f".last.ckpt.{a_dead_pid()}.x1y2.tmp"
    alive = tmp_path / f".last.ckpt.{os.getppid()}.x3y4.tmp"     # our parent runs: it may be mid-write
    other = tmp_path / f".best.ckpt.{a_dead_pid()}.x5y6.tmp"       # another file's: not ours to clean
    for path in (dead, alive, other):
        path.write_bytes(b"half a checkpoint")
    save_checkpoint(tmp_path / "last.ckpt", nn.Linear(2, 2))
    assert not dead.exists() and alive.exists() and other.exists()
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".last")) == [alive.name]


def test_kill_9_during_a_save_leaves_a_temporary_that_the_next_save_removes(tmp_path):
    """A child writes a checkpoint whose payload blocks half way (a write() that sleeps); SIGKILL it there.
    The old checkpoint stays readable, and the next save cleans the temporary the child left."""
    model = nn.Linear(3, 2)
    save_checkpoint(tmp_path / "last.ckpt", model, epoch=1)
    code = (
        "import sys, time, minigrad\n"
        "from minigrad import nn\n"
        "from minigrad.utils import atomic\n"
        "def slow(file):\n"
        "    file.write(b'x' * 1000); file.flush(); print('writing', flush=True); time.sleep(60)\n"
        f"atomic.write_atomically({str(tmp_path / 'last.ckpt')!r}, slow)\n"
    )
    child = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    assert child.stdout.readline().strip() == "writing"
    child.send_signal(signal.SIGKILL)
    child.wait()
    left = [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]
    assert len(left) == 1 and f".{child.pid}." in left[0].name
    assert load_checkpoint(tmp_path / "last.ckpt", nn.Linear(3, 2))["epoch"] == 1     # the old one, whole
    save_checkpoint(tmp_path / "last.ckpt", model, epoch=2)
    assert [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")] == []
    assert load_checkpoint(tmp_path / "last.ckpt", nn.Linear(3, 2))["epoch"] == 2
