"""NCCL for GPU arrays, through CuPy (cupy.cuda.nccl): all-reduce, broadcast and all-gather.

Starting NCCL needs one secret shared by all ranks, its unique id: rank 0 makes it and MPI sends
it to the others (the way ChainerMN started NCCL). Each process uses the GPU given by its rank
on its machine. Collectives run on a stream of their own, after the work already queued on the
current stream (an event orders them), so gradients computed later in backward overlap with the
all-reduce of earlier ones; wait() makes the current stream wait for the collective.
"""
_DTYPES = {"float16": "NCCL_FLOAT16", "float32": "NCCL_FLOAT32", "float64": "NCCL_FLOAT64",
           "int32": "NCCL_INT32", "int64": "NCCL_INT64", "uint8": "NCCL_UINT8", "int8": "NCCL_INT8"}
_OPS = {"sum": "NCCL_SUM", "mean": "NCCL_SUM", "max": "NCCL_MAX", "min": "NCCL_MIN", "prod": "NCCL_PROD"}


class NcclCommunicator:
    def __init__(self, mpi_comm):
        import cupy
        from cupy.cuda import nccl
        from minigrad.distributed import local_rank_of
        self.cupy, self.nccl = cupy, nccl
        self.size, self.rank = mpi_comm.Get_size(), mpi_comm.Get_rank()
        device = local_rank_of(mpi_comm) % cupy.cuda.runtime.getDeviceCount()
        cupy.cuda.Device(device).use()
        unique_id = nccl.get_unique_id() if self.rank == 0 else None
        unique_id = mpi_comm.bcast(unique_id, root=0)
        self.comm = nccl.NcclCommunicator(self.size, unique_id, self.rank)
        self.stream = cupy.cuda.Stream(non_blocking=True)

    def _types(self, array, op=None):
        name = str(array.dtype)
        if name not in _DTYPES:
            raise TypeError(f"NCCL: dtype {array.dtype} is not supported; use one of {sorted(_DTYPES)}")
        dtype = getattr(self.nccl, _DTYPES[name])
        if op is None:
            return dtype
        if op not in _OPS:
            raise ValueError(f"all_reduce: op must be one of {sorted(_OPS)}, got {op!r}")
        return dtype, getattr(self.nccl, _OPS[op])

    def _after_current_work(self):
        """Make the collective stream wait for what the current stream has queued (the gradients)."""
        self.stream.wait_event(self.cupy.cuda.get_current_stream().record())

    def all_reduce(self, array, op):
        dtype, nccl_op = self._types(array, op)
        self._after_current_work()
        self.comm.allReduce(array.data.ptr, array.data.ptr, array.size, dtype, nccl_op, self.stream.ptr)
        return GpuWork(self, array, self.size if op == "mean" else None)

    def broadcast(self, array, src):
        self._after_current_work()
        self.comm.bcast(array.data.ptr, array.size, self._types(array), src, self.stream.ptr)
        GpuWork(self, array).wait()

    def all_gather(self, array, out):
        self._after_current_work()
        self.comm.allGather(array.data.ptr, out.data.ptr, array.size, self._types(array), self.stream.ptr)
        GpuWork(self, out).wait()

    def destroy(self):
        self.comm.destroy()


class GpuWork:
    """A collective queued on the NCCL stream; wait() orders the current stream after it."""

    def __init__(self, communicator, array, divide_by=None):
        self.communicator, self.array, self.divide_by = communicator, array, divide_by
        self.event = communicator.stream.record()
        self.done = False

    def test(self):
        return self.done or self.event.done

    def wait(self):
        if not self.done:
            self.communicator.cupy.cuda.get_current_stream().wait_event(self.event)
            if self.divide_by is not None:
                self.array /= self.divide_by
            self.done = True
        return True

    def is_completed(self):
        return self.done
