"""nn.SyncBatchNorm: batch norm over the whole batch of a data-parallel job, PyTorch's interface.

    model = nn.SyncBatchNorm.convert_sync_batchnorm(model)      # every BatchNorm1d/2d -> SyncBatchNorm
    model = nn.parallel.DistributedDataParallel(model)

In training, with more than one rank, mean and variance are those of the global batch (every
rank's part together): one all-reduce in forward, one in backward. The maths, and why DDP's
averaging then gives exactly the big batch's gradients: minigrad/distributed/sync_batchnorm.py.
In eval (running statistics), in one process, or before init_process_group, it is BatchNorm: the
same op, the same numbers. Its parameters and buffers are BatchNorm's, under the same names, so a
checkpoint of either loads into the other.
"""
from minigrad import distributed as dist
from minigrad.distributed.sync_batchnorm import sync_batch_norm
from minigrad.nn.normalization import _BatchNorm


class SyncBatchNorm(_BatchNorm):
    """Input (N, C), (N, C, L), (N, C, H, W) or (N, C, D, H, W).

    process_group: the ranks whose batches are normalised together; None: the default group
    (dist.init_process_group's), or none at all in a single process.
    """
    expected_dims = (2, 3, 4, 5)

    def __init__(self, num_features, eps=1e-5, momentum=0.1, affine=True, track_running_stats=True,
                 process_group=None, device=None, dtype=None):
        super().__init__(num_features, eps, momentum, affine, track_running_stats, device, dtype)
        self.process_group = process_group

    def forward(self, x, relu=False):
        group = self._group_to_sync()
        if group is None:
            return super().forward(x, relu)                              # one process, or eval: BatchNorm
        self._check_input(x)
        momentum = self._momentum_for_this_batch()
        return sync_batch_norm(x, self.running_mean, self.running_var, self.weight, self.bias,
                               momentum=momentum, eps=self.eps, group=group, relu=relu)

    def _group_to_sync(self):
        """The process group to take the statistics over, or None when there is nothing to synchronise:
        eval mode (PyTorch's rule: only training synchronises) or a group of one."""
        if not self.training:
            return None
        group = self.process_group
        if group is None and dist.is_initialized():
            group = dist._require()
        return group if group is not None and group.size > 1 else None

    @classmethod
    def convert_sync_batchnorm(cls, module, process_group=None):
        """`module` with every BatchNorm1d/2d replaced by a SyncBatchNorm (recursively); the new root
        if `module` itself is one.

        The SyncBatchNorm takes over the BatchNorm's Parameters and buffers themselves (not copies,
        as in PyTorch): weights, running statistics and num_batches_tracked carry over, an optimizer
        built before the conversion still holds the right tensors, and the state_dict keys stay.
        """
        return _convert(cls, module, process_group, {})

    def extra_repr(self):
        group = "" if self.process_group is None else f", process_group={self.process_group!r}"
        return super().extra_repr() + group


def _convert(cls, module, process_group, converted):
    """The conversion of `module`; `converted` maps id(old) -> new, so a shared layer stays shared."""
    if id(module) in converted:
        return converted[id(module)]
    new = module
    if isinstance(module, _BatchNorm) and not isinstance(module, SyncBatchNorm):
        new = cls(module.num_features, module.eps, module.momentum, module.affine, module.track_running_stats,
                  process_group)
        for name in ("weight", "bias"):
            if module.affine:
                setattr(new, name, getattr(module, name))
        for name in ("running_mean", "running_var", "num_batches_tracked"):
            setattr(new, name, getattr(module, name))
        new.train(module.training)
    converted[id(module)] = new
    for name, child in list(module._modules.items()):
        if child is not None:
            new.add_module(name, _convert(cls, child, process_group, converted))
    return new
