"""One process or several: the lines a training script needs for both (the examples' --distributed).

    ranks = Ranks(distributed=args.distributed, global_batch=args.batch_size)
    ranks.say("epoch 1: ...")                       # printed by rank 0 only
    loss_sum, count = ranks.summed(loss * n, n)     # summed over the ranks (themselves in one process)
    ranks.barrier()                                 # every rank waits here (nothing in one process)
    loss, accuracy = ranks.evaluate(net, loader)    # each rank its share of the data, summed
    ranks.save_checkpoint(path, model=net, ...)     # rank 0 writes, the others wait

With distributed=False it is rank 0 of 1 and calls nothing of minigrad.distributed; with True it joins
the job's process group (mpiexec started the processes), and the global batch must split evenly.
"""
import numpy


class Ranks:
    def __init__(self, distributed=False, global_batch=None):
        self.rank, self.world, self.dist = 0, 1, None
        if not distributed:
            return
        import minigrad.distributed as dist          # ImportError says what to install
        dist.init_process_group()
        self.dist, self.rank, self.world = dist, dist.get_rank(), dist.get_world_size()
        if global_batch is not None and global_batch % self.world:
            raise ValueError(f"--batch-size {global_batch} (the global batch) must divide evenly over "
                             f"{self.world} processes")

    def say(self, *text, **options):
        """print, on rank 0 only."""
        if self.rank == 0:
            print(*text, **options)

    def summed(self, *values):
        """These numbers summed over the ranks, as a float64 array."""
        total = numpy.array(values, dtype=numpy.float64)
        if self.world > 1:
            self.dist.all_reduce(total)
        return total

    def barrier(self):
        if self.world > 1:
            self.dist.barrier()

    def evaluate(self, model, loader):
        """(mean loss, accuracy) over every rank's `loader` (each its own share of the data), summed over
        the ranks. `model` is the plain model: a DDP wrapper would run a collective per batch, and the
        shares may differ by a batch."""
        from minigrad.utils.training import evaluate
        loss, accuracy, predicted, _ = evaluate(model, loader)
        n = len(predicted)
        loss_sum, correct, count = self.summed(loss * n if n else 0.0, accuracy * n if n else 0.0, n)
        return loss_sum / count, correct / count

    def save_checkpoint(self, path, **state):
        """Rank 0 writes the checkpoint; the others wait, so no rank runs ahead of it. Returns the path."""
        from minigrad.utils.checkpoint import save_checkpoint
        if self.rank == 0:
            save_checkpoint(path, **state)
        self.barrier()
        return path

    def finish(self):
        """Leave the process group (training is over); True on rank 0, which goes on alone."""
        if self.dist is not None:
            self.dist.destroy_process_group()
        return self.rank == 0
