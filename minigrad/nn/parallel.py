"""nn.DataParallel: PyTorch's single-process multi-GPU wrapper, as the one-device pass-through it is here.

PyTorch's DataParallel splits each batch across the GPUs of one process. minigrad runs one device
per process, so the wrapper only keeps PyTorch's interface: forward goes to `module`, and the
state_dict keys carry PyTorch's "module." prefix, so checkpoints of wrapped and unwrapped models
look as they do in PyTorch.
"""
from minigrad import backend
from minigrad.nn.module import Module


class DataParallel(Module):
    """Wrap `module`; device_ids, output_device and dim are accepted and unused (one device)."""

    def __init__(self, module, device_ids=None, output_device=None, dim=0):
        super().__init__()
        if not isinstance(module, Module):
            raise TypeError(f"DataParallel wraps an nn.Module, got {type(module).__name__}")
        self.module = module
        self.device_ids, self.output_device, self.dim = device_ids, output_device, dim

    def forward(self, *inputs, **kwargs):
        return self.module(*inputs, **kwargs)


class DistributedDataParallel(Module):
    """Data-parallel training: every rank holds the whole model and a different part of each batch.

    Why averaging gradients is right
    --------------------------------
    With p ranks, rank r computes the mean loss L_r over its own B examples. The loss of the
    whole batch of pB examples is their mean, L = (1/p) sum_r L_r, and the gradient is linear:

        dL/dw = (1/p) sum_r dL_r/dw

    so after every rank's backward, all-reducing the gradients (summing them over the ranks) and
    dividing by p gives every rank the gradient of the big batch, and the same optimizer step
    keeps the copies identical. (Batch norm breaks the sum into independent parts: its statistics
    are per rank, unless the model uses SyncBatchNorm.)

    What it costs, and hiding it
    ----------------------------
    A ring all-reduce of n bytes over p ranks sends 2(p-1)/p * n bytes per rank: (p-1) steps of
    reduce-scatter and (p-1) of all-gather, each moving n/p. That is nearly 2n however many ranks
    there are. To hide it, the gradients are grouped into buckets (about `bucket_cap_mb` each,
    1 MB for the first), in the reverse order of model.parameters(), the order backward finishes
    them. A hook on each parameter notes when its gradient is ready; when a bucket is complete
    its gradients are copied into one flat buffer and a non-blocking all-reduce starts, while
    backward goes on computing the earlier layers' gradients. At the end of backward every
    all-reduce is waited for and the averages are written back into .grad, so backward() returns
    with the big batch's gradients, ready for optimizer.step(). Buckets start in the same order on
    every rank, which MPI and NCCL need.

    When it is created, rank 0's parameters and buffers are sent to every rank, after checking
    that every rank holds the same parameter names and shapes. `no_sync()` skips the averaging
    (gradient accumulation: the next synchronised backward averages the accumulated sum). A
    parameter that received no gradient in a step is an error naming it, unless
    find_unused_parameters=True (its gradient is then taken as zero). With broadcast_buffers
    (PyTorch's default) rank 0's buffers (batch-norm running statistics) are sent to all ranks at
    every forward.
    """

    def __init__(self, module, device_ids=None, output_device=None, dim=0, broadcast_buffers=True,
                 process_group=None, bucket_cap_mb=25, find_unused_parameters=False, **ignored):
        super().__init__()
        from minigrad import distributed as dist
        if not isinstance(module, Module):
            raise TypeError(f"DistributedDataParallel wraps an nn.Module, got {type(module).__name__}")
        self.module = module
        self.__dict__["_group"] = process_group or dist._require()
        self.__dict__["_options"] = {"broadcast_buffers": bool(broadcast_buffers),
                                     "find_unused_parameters": bool(find_unused_parameters)}
        named = [(name, p) for name, p in module.named_parameters() if p.requires_grad]
        self._check_same_parameters(named)
        self._broadcast_from_rank0([p for _, p in module.named_parameters()] + [b for _, b in module.named_buffers()])
        self.__dict__["_buckets"] = _make_buckets(named, bucket_cap_mb)
        self.__dict__["_bucket_of"] = {id(p): bucket for bucket in self._buckets for p in bucket.params}
        self.__dict__["_sync"] = True
        self.__dict__["_pending"] = False
        self.__dict__["_in_backward"] = False
        for _, p in named:
            p.register_post_accumulate_grad_hook(self._gradient_ready)

    # ------------------------------------------------------------------ construction
    def _check_same_parameters(self, named):
        mine = [(name, tuple(p.shape), str(p.dtype)) for name, p in named]
        everyone = self._group.all_gather_object(mine)
        for rank, theirs in enumerate(everyone):
            if theirs == mine:
                continue
            for k in range(max(len(mine), len(theirs))):
                a = mine[k] if k < len(mine) else None
                b = theirs[k] if k < len(theirs) else None
                if a != b:
                    raise ValueError(
                        f"DistributedDataParallel: the ranks hold different models. Parameter {k} is {a} "
                        f"(name, shape, dtype) on rank {self._group.rank} but {b} on rank {rank}; build the "
                        f"same model on every rank")

    def _broadcast_from_rank0(self, tensors):
        """Send rank 0's values of `tensors` to every rank, packed in one buffer per dtype and device."""
        for group in _by_dtype_and_device(tensors):
            xp = backend.array_module(group[0].array)
            flat = xp.concatenate([t.array.reshape(-1) for t in group])
            self._group.broadcast(flat, src=0)
            offset = 0
            for t in group:
                t.array[...] = flat[offset:offset + t.array.size].reshape(t.shape)
                offset += t.array.size

    # ------------------------------------------------------------------ the step
    def forward(self, *inputs, **kwargs):
        from minigrad import grad_mode
        if self._options["broadcast_buffers"] and self._group.size > 1:
            buffers = [b for _, b in self.module.named_buffers()]
            if buffers:
                self._broadcast_from_rank0(buffers)
        if grad_mode.is_grad_enabled() and self._sync and self._group.size > 1:
            self.__dict__["_pending"] = True           # the next backward through this model averages
        return self.module(*inputs, **kwargs)

    def _gradient_ready(self, p):
        """A parameter's .grad is complete: start every bucket that is full, in bucket order.

        The first one in a backward registers _finish for that backward's end, so a backward that
        never reaches this model (another model's, or none) leaves it alone.
        """
        if not self._pending:
            return
        if not self._in_backward:
            for bucket in self._buckets:
                bucket.reset()
            self.__dict__["_in_backward"] = True
            from minigrad import autograd
            autograd.queue_callback(self._finish, if_failed=self._abandon)
        self._bucket_of[id(p)].ready.add(id(p))
        self._launch(require_full=True)

    def _abandon(self):
        """The backward raised: let the started all-reduces complete (every rank started the same ones
        if every rank raised; an uncaught error aborts the job anyway), keep the local gradients."""
        for bucket in self._buckets:
            if bucket.work is not None:
                bucket.work.wait()
            bucket.reset()
        self.__dict__["_pending"] = False
        self.__dict__["_in_backward"] = False

    def _launch(self, require_full):
        for bucket in self._buckets:
            if bucket.work is not None:
                bucket.work.test()                     # lets MPI move the started ones along
                continue
            if require_full and len(bucket.ready) < len(bucket.params):
                return                                 # later buckets wait for this one (same order on all ranks)
            bucket.start(self._group)

    def _finish(self):
        """End of backward: start what is left, wait for every all-reduce, write the averages to .grad."""
        self.__dict__["_pending"] = False
        self.__dict__["_in_backward"] = False
        missing = [name for bucket in self._buckets for name, p in zip(bucket.names, bucket.params)
                   if id(p) not in bucket.ready]
        if missing and not self._options["find_unused_parameters"]:
            self._abandon()
            raise RuntimeError(
                f"DistributedDataParallel: parameter(s) {missing[:5]}{' ...' if len(missing) > 5 else ''} received "
                f"no gradient in this backward, so the ranks cannot average them; use every parameter in "
                f"forward, or pass find_unused_parameters=True (their gradient is then taken as zero)")
        self._launch(require_full=False)
        for bucket in self._buckets:
            bucket.finish(self._group.size)

    def no_sync(self):
        """Inside `with ddp.no_sync():` backward only accumulates local gradients (no all-reduce)."""
        ddp = self

        class _NoSync:
            def __enter__(self):
                ddp.__dict__["_sync"] = False

            def __exit__(self, *exc):
                ddp.__dict__["_sync"] = True

        return _NoSync()


class _Bucket:
    """Parameters whose gradients travel together in one flat buffer."""

    def __init__(self, names, params):
        self.names, self.params = names, params
        self.sizes = [p.array.size for p in params]
        self.ready, self.work, self.flat = set(), None, None

    def reset(self):
        self.ready, self.work = set(), None

    def start(self, group):
        xp = backend.array_module(self.params[0].array)
        if self.flat is None:
            self.flat = xp.empty(sum(self.sizes), dtype=self.params[0].dtype)
        offset = 0
        for p, size in zip(self.params, self.sizes):
            part = self.flat[offset:offset + size]
            if p.grad is None:
                part[...] = 0                          # an unused parameter (find_unused_parameters)
            else:
                part[...] = p.grad.array.reshape(-1)
            offset += size
        self.work = group.all_reduce(self.flat, "sum", async_op=True)

    def finish(self, world_size):
        from minigrad.tensor import Tensor
        self.work.wait()
        self.flat /= world_size                        # the sum over ranks -> the mean: the big batch's gradient
        offset = 0
        for p, size in zip(self.params, self.sizes):
            p.grad = Tensor._make(self.flat[offset:offset + size].reshape(p.shape).copy(), p.device)
            offset += size
        self.work = None


def _by_dtype_and_device(tensors):
    groups = {}
    for t in tensors:
        groups.setdefault((str(t.dtype), t.device), []).append(t)
    return list(groups.values())


def _make_buckets(named, bucket_cap_mb, first_bucket_mb=1.0):
    """Buckets in the reverse order of the parameters, each at most the cap (the first 1 MB)."""
    buckets, names, params, size, cap = [], [], [], 0, min(first_bucket_mb, bucket_cap_mb) * 2**20
    key = None
    for name, p in reversed(named):
        nbytes = p.array.nbytes
        p_key = (str(p.dtype), p.device)
        if params and (size + nbytes > cap or p_key != key):
            buckets.append(_Bucket(names, params))
            names, params, size, cap = [], [], 0, bucket_cap_mb * 2**20
        names.append(name)
        params.append(p)
        size += nbytes
        key = p_key
    if params:
        buckets.append(_Bucket(names, params))
    return buckets
