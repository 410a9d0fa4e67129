"""minigrad.distributed and DistributedDataParallel on 2 MPI ranks (mpiexec -n 2 tests/mpi_checks.py).

Skipped where mpi4py or mpiexec is missing; .ci/run installs them (the `distributed` extra).
"""
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy
import pytest

import minigrad.distributed as dist

CHECKS = Path(__file__).resolve().parent / "mpi_checks.py"


def mpiexec():
    beside = Path(sys.executable).parent / "mpiexec"
    return str(beside) if beside.exists() else shutil.which("mpiexec")


needs_mpi = pytest.mark.skipif(not dist.is_available() or mpiexec() is None,
                               reason="needs mpi4py and mpiexec: pip install 'minigrad[distributed]'")


def run_ranks(*checks, ranks=2, timeout=120):
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(CHECKS.parents[1]), os.environ.get("PYTHONPATH", "")]))
    return subprocess.run([mpiexec(), "-n", str(ranks), sys.executable, str(CHECKS), *checks], env=env,
                          capture_output=True, text=True, timeout=timeout)


@needs_mpi
@pytest.mark.parametrize("checks", [
    ["collectives", "different_models_are_named_not_hung"],
    ["gradients_equal_the_big_batch", "steps_match_one_process"],
    ["no_sync_accumulates_then_averages", "unused_parameters"],
    ["two_models_backward_separately", "a_caught_error_in_backward_leaves_ddp_working"],
    ["sync_batchnorm_matches_one_process", "sync_batchnorm_resnet_matches_one_process",
     "sync_batchnorm_uneven_parts"],
])
def test_on_two_ranks(checks):
    result = run_ranks(*checks)
    assert result.returncode == 0 and f"ok: {' '.join(checks)}" in result.stdout, result.stdout + result.stderr


@needs_mpi
def test_a_rank_that_raises_ends_the_whole_job_within_seconds():
    start = time.monotonic()
    result = run_ranks("a_raising_rank_aborts_the_job", timeout=60)
    assert result.returncode != 0 and time.monotonic() - start < 30
    assert "[rank 1 of 2]" in result.stderr and "rank 1 fails on purpose" in result.stderr
    assert "got past the barrier" not in result.stdout


def test_a_single_process_is_rank_0_of_1_and_collectives_say_to_initialise():
    assert dist.get_rank() == 0 and dist.get_world_size() == 1 and not dist.is_initialized()
    with pytest.raises(RuntimeError, match="init_process_group"):
        dist.all_reduce([1.0])


def test_without_mpi4py_init_says_what_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "mpi4py", None)               # as if it were not installed
    assert not dist.is_available()
    with pytest.raises(ImportError, match=r"pip install \"minigrad\[distributed\]\".*mpiexec -n 2"):
        dist.init_process_group()


def test_ranks_in_one_process_are_rank_0_of_1_and_touch_no_process_group(capsys):
    from minigrad.utils.ranks import Ranks
    ranks = Ranks(distributed=False, global_batch=7)
    ranks.say("only rank 0 prints")
    assert capsys.readouterr().out == "only rank 0 prints\n"
    assert (ranks.rank, ranks.world) == (0, 1) and ranks.summed(1.5, 2).tolist() == [1.5, 2.0]
    ranks.barrier()
    import minigrad
    from minigrad.data import DataLoader, TensorDataset
    model = minigrad.nn.Linear(2, 3)
    loader = DataLoader(TensorDataset(numpy.ones((5, 2), numpy.float32), numpy.arange(5) % 3), batch_size=2)
    loss, accuracy = ranks.evaluate(model, loader)
    assert numpy.isfinite(loss) and accuracy in (0.0, 0.2, 0.4, 0.6, 0.8, 1.0)
    import tempfile
    from pathlib import Path
    with tempfile.TemporaryDirectory() as folder:
        path = ranks.save_checkpoint(Path(folder) / "a.ckpt", model=model, epoch=0)
        assert path.is_file()
    assert ranks.finish() and not dist.is_initialized()
