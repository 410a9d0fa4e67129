"""minigrad.distributed: several processes training one model, on MPI (CPUs, machines) and NCCL (GPUs).

PyTorch's names. Start the processes with MPI's launcher, which gives each one its rank::

    mpiexec -n 2 python train.py                        # two processes on this machine
    mpiexec -n 4 -f hosts python train.py               # four, on the machines listed in `hosts`

and in the script::

    import minigrad.distributed as dist
    dist.init_process_group()                           # "mpi"; "nccl" when the GPU is in use
    rank, world = dist.get_rank(), dist.get_world_size()
    dist.all_reduce(x, op="sum")                        # in place: x = x_0 + x_1 + ... on every rank

The transport is the field's own, not minigrad's: MPI through mpi4py (its buffer interface, so
arrays travel as raw memory, never pickled) for host arrays, and NCCL through CuPy for GPU
arrays, its unique id sent to every rank through MPI. MPI is always there underneath (NCCL needs
it to start), so host arrays work whatever the backend.

A rank that raises ends the whole job: init_process_group installs an exception hook that prints
the error with the rank's number and calls MPI's Abort, so the other ranks, blocked in a
collective, are stopped instead of waiting forever.

Install: pip install "minigrad[distributed]" (mpi4py and MPICH from the package index).
"""
import os
import sys
import traceback

import numpy

from minigrad import backend as devices

_group = None          # the process group of this process, once initialised


class ReduceOp:
    """The reductions all_reduce knows (strings work too: "sum", "mean", "max", "min", "prod")."""
    SUM, MEAN, MAX, MIN, PRODUCT = "sum", "mean", "max", "min", "prod"
    AVG = MEAN


def _mpi():
    try:
        from mpi4py import MPI
    except ImportError:
        raise ImportError(
            "minigrad.distributed needs mpi4py and an MPI library: pip install \"minigrad[distributed]\" "
            "(that is mpi4py and mpich, both from the package index), then start the script with "
            "mpiexec -n 2 python script.py"
        ) from None
    return MPI


def is_available():
    """True if mpi4py and an MPI library can be loaded."""
    try:
        _mpi()
    except ImportError:
        return False
    return True


def is_initialized():
    return _group is not None


def _require():
    if _group is None:
        raise RuntimeError("minigrad.distributed: call dist.init_process_group() first (and start the script "
                           "with mpiexec -n N)")
    return _group


def init_process_group(backend=None, **ignored):
    """Join the job's process group. backend: "mpi" (host arrays), "nccl" (GPU arrays; host arrays still
    go through MPI) or None: "nccl" if a CUDA GPU and CuPy's NCCL are there, else "mpi".

    PyTorch's init_method, world_size, rank, timeout, ... are accepted and unused: MPI's launcher
    already told every process its rank and the world size.
    """
    global _group
    if _group is not None:
        raise RuntimeError("init_process_group: this process is already in a process group; call "
                           "destroy_process_group() first")
    MPI = _mpi()
    comm = MPI.COMM_WORLD.Dup()
    _use_this_ranks_gpu(comm)
    if backend is None:
        backend = "nccl" if _nccl_usable() else "mpi"
    if backend in ("gloo", "mpi"):
        nccl = None
    elif backend == "nccl":
        from minigrad.distributed.nccl import NcclCommunicator
        nccl = NcclCommunicator(comm)
    else:
        raise ValueError(f"init_process_group: backend must be 'mpi', 'nccl' or None, got {backend!r}")
    _group = ProcessGroup(comm, "mpi" if nccl is None else "nccl", nccl)
    _install_abort_hook(comm)
    return _group


def destroy_process_group():
    """Leave the process group (all ranks call it); the exception hook is restored."""
    global _group
    if _group is None:
        return
    group, _group = _group, None
    if group.nccl is not None:
        group.nccl.destroy()
    group.comm.Free()
    if getattr(sys.excepthook, "_minigrad_previous", None) is not None:
        sys.excepthook = sys.excepthook._minigrad_previous


def _nccl_usable():
    if not devices.gpu_available():
        return False
    try:
        from cupy.cuda import nccl  # noqa: F401
    except ImportError:
        return False
    return True


def _use_this_ranks_gpu(comm):
    """Make GPU (local rank mod device count) current before anything touches the GPU, so the ranks on
    one machine do not all start on GPU 0."""
    try:
        import cupy
        count = cupy.cuda.runtime.getDeviceCount()
    except Exception:                   # no CuPy, no driver, no device: the CPU it is
        return
    if count > 0:
        cupy.cuda.Device(local_rank_of(comm) % count).use()


def _install_abort_hook(comm):
    """On an uncaught exception: print it as this rank's, then abort every rank of the job."""
    previous = sys.excepthook

    def abort_job(kind, value, tb):
        message = "".join(traceback.format_exception(kind, value, tb))
        sys.stderr.write(f"[rank {comm.Get_rank()} of {comm.Get_size()}] {message}"
                         f"[rank {comm.Get_rank()}] aborting the whole job (MPI Abort), so no rank waits forever\n")
        sys.stderr.flush()
        comm.Abort(1)

    abort_job._minigrad_previous = previous
    sys.excepthook = abort_job


class ProcessGroup:
    """The ranks of the job: an MPI communicator, and an NCCL one for GPU arrays with backend "nccl"."""

    def __init__(self, comm, name, nccl=None):
        self.comm, self.backend, self.nccl = comm, name, nccl
        self.rank, self.size = comm.Get_rank(), comm.Get_size()

    def is_gpu(self, array):
        return devices.is_gpu_array(array)

    def _mpi_op(self, op):
        MPI = _mpi()
        ops = {"sum": MPI.SUM, "mean": MPI.SUM, "max": MPI.MAX, "min": MPI.MIN, "prod": MPI.PROD}
        if op not in ops:
            raise ValueError(f"all_reduce: op must be one of {sorted(ops)}, got {op!r}")
        return ops[op]

    def all_reduce(self, array, op="sum", async_op=False):
        """Reduce `array` over the ranks, in place; with async_op a Work whose wait() finishes it."""
        _check_buffer(array, "all_reduce")
        if self.is_gpu(array):
            work = self._gpu().all_reduce(array, op)
        else:
            MPI = _mpi()
            request = self.comm.Iallreduce(MPI.IN_PLACE, array, op=self._mpi_op(op))
            work = Work(request, array, self.size if op == "mean" else None)
        if async_op:
            return work
        work.wait()
        return None

    def broadcast(self, array, src=0):
        _check_buffer(array, "broadcast")
        if self.is_gpu(array):
            self._gpu().broadcast(array, src)
        else:
            self.comm.Bcast(array, root=src)

    def all_gather(self, array):
        """A new array (world size, *array.shape): every rank's array, in rank order."""
        _check_buffer(array, "all_gather")
        xp = devices.array_module(array)
        out = xp.empty((self.size,) + tuple(array.shape), dtype=array.dtype)
        if self.is_gpu(array):
            self._gpu().all_gather(array, out)
        else:
            self.comm.Allgather(array, out)
        return out

    def all_gather_object(self, value):
        """Small Python objects (names, shapes, flags) from every rank; pickled, so never for arrays."""
        return self.comm.allgather(value)

    def barrier(self):
        self.comm.Barrier()

    def _gpu(self):
        if self.nccl is None:
            raise RuntimeError("a GPU array in a process group started with backend 'mpi': start it with "
                               "init_process_group('nccl') (or no backend) to reduce GPU arrays")
        return self.nccl


class Work:
    """A started collective: wait() finishes it (and divides by the world size for op='mean')."""

    def __init__(self, request, array, divide_by=None):
        self.request, self.array, self.divide_by = request, array, divide_by

    def test(self):
        """Give MPI a chance to progress; True when the collective is complete."""
        return self.request is None or bool(self.request.Test())

    def wait(self):
        if self.request is not None:
            self.request.Wait()
            self.request = None
            if self.divide_by is not None:
                self.array /= self.divide_by
                self.divide_by = None
        return True

    def is_completed(self):
        return self.request is None


def _check_buffer(array, who):
    if isinstance(array, numpy.ndarray) or devices.is_gpu_array(array):
        if not array.flags.c_contiguous:
            raise ValueError(f"{who}: the array must be C-contiguous (it is sent as raw memory); got strides "
                             f"{array.strides} for shape {array.shape}; pass array.copy()")
        return
    raise TypeError(f"{who}: expected a NumPy or CuPy array (or a minigrad Tensor), got {type(array).__name__}")


def _array(x):
    from minigrad.tensor import Tensor
    return x.array if isinstance(x, Tensor) else x


# ------------------------------------------------------------------------------- PyTorch's functions
def get_rank(group=None):
    """This process's rank (0 when not initialised, as a single process is rank 0 of 1)."""
    return (group or _group).rank if (group or _group) is not None else 0


def get_world_size(group=None):
    return (group or _group).size if (group or _group) is not None else 1


def get_backend(group=None):
    return _require().backend if group is None else group.backend


def barrier(group=None):
    (group or _require()).barrier()


def all_reduce(tensor, op="sum", group=None, async_op=False):
    """tensor <- op over all ranks of tensor, in place (a Tensor or an array)."""
    return (group or _require()).all_reduce(_array(tensor), op, async_op)


def broadcast(tensor, src=0, group=None, async_op=False):
    """tensor <- rank src's tensor, in place."""
    (group or _require()).broadcast(_array(tensor), src)


def all_gather(tensor_list, tensor, group=None, async_op=False):
    """PyTorch's form: fill tensor_list[r] with rank r's tensor."""
    gathered = (group or _require()).all_gather(_array(tensor))
    for r, out in enumerate(tensor_list):
        out_array = _array(out)
        out_array[...] = gathered[r]


def all_gather_object(object_list, obj, group=None):
    values = (group or _require()).all_gather_object(obj)
    object_list[:] = values


def local_rank():
    """This process's index among the ranks on its machine (it picks the process's GPU)."""
    return local_rank_of(_require().comm)


def local_rank_of(comm):
    for name in ("MPI_LOCALRANKID", "OMPI_COMM_WORLD_LOCAL_RANK", "LOCAL_RANK"):
        if name in os.environ:
            return int(os.environ[name])
    MPI = _mpi()
    shared = comm.Split_type(MPI.COMM_TYPE_SHARED)
    rank = shared.Get_rank()
    shared.Free()
    return rank


__all__ = ["ReduceOp", "Work", "all_gather", "all_gather_object", "all_reduce", "barrier", "broadcast",
           "destroy_process_group", "get_backend", "get_rank", "get_world_size", "init_process_group",
           "is_available", "is_initialized", "local_rank"]
