"""Samplers: which examples an epoch visits, and in which order.

A sampler is an iterable of dataset indices with a length. The DataLoader
(``sampler=``) turns one epoch of it into an index array and cuts that into
batches::

    order   = numpy.asarray(list(sampler))              # (len(sampler),)
    batches = order[0:B], order[B:2B], ...

Without a sampler the loader draws the order itself (a permutation or
arange); a sampler is how a script says something else, most often "only my
share of the data" when several processes train one model together.

DistributedSampler: one shard per process
-----------------------------------------
With R processes (replicas), rank r of them, each epoch::

    indices = permutation(N, seed + epoch) if shuffle else arange(N)    # the same on every rank
    S       = ceil(N / R)                  # samples per rank (num_samples)
    T       = S * R                        # total_size
    pad:      indices += indices[:T - N]   # repeat from the start (wrapping round as often as needed)
    or, with drop_last (when R does not divide N):
              S = ceil((N - R) / R) = floor(N / R),  T = S * R,  indices = indices[:T]
    shard   = indices[r : T : R]           # every R-th index, starting at r; S of them

So the shards of all ranks together are the whole (padded or truncated)
list, each index in exactly one shard; padding repeats a few examples so
that every rank runs the same number of steps (a rank with fewer batches
would wait forever in the gradient all-reduce). Every rank must draw the
same permutation, so the shuffle depends only on ``seed + epoch``: call
``set_epoch(epoch)`` before each epoch, or every epoch repeats the first
one's order (as in PyTorch). These are PyTorch's rules exactly, except that
the permutation comes from ``numpy.random.default_rng(seed + epoch)``
rather than torch's generator: with ``shuffle=False`` the shards equal
PyTorch's index for index, with ``shuffle=True`` they are a different (but
equally fixed) permutation.
"""
import math

import numpy


def _check_int(name, value, low):
    """An int >= low from `value`, or a ValueError naming the argument."""
    if isinstance(value, bool) or not isinstance(value, (int, numpy.integer)) or value < low:
        raise ValueError(f"{name} must be an integer >= {low}, got {value!r}")
    return int(value)


class Sampler:
    """Base class: subclasses define ``__iter__`` (yielding dataset indices as ints) and ``__len__``."""

    def __iter__(self):
        raise NotImplementedError(f"{type(self).__name__} must define __iter__")

    def __len__(self):
        raise TypeError(f"{type(self).__name__} defines no __len__; the DataLoader needs len(sampler) "
                        "to count its batches")


class SequentialSampler(Sampler):
    """0, 1, ..., len(data_source) - 1: the order a loader without shuffle uses."""

    def __init__(self, data_source):
        self.data_source = data_source

    def __iter__(self):
        return iter(range(len(self.data_source)))

    def __len__(self):
        return len(self.data_source)


class RandomSampler(Sampler):
    """A fresh random order of ``data_source`` every epoch.

    Without replacement each pass is a permutation of range(N); ``num_samples``
    larger than N chains several permutations and cuts the last one short (as
    PyTorch). With ``replacement=True`` every index is an independent uniform
    draw from range(N).

    ``generator`` is a ``numpy.random.Generator``. Where PyTorch, given none,
    draws a new seed from its global RNG at every epoch, this sampler makes its
    own generator once, seeded from NumPy's global RNG (so
    ``minigrad.manual_seed`` applies), and saves it in ``state_dict()``: a
    DataLoader checkpoint then replays the interrupted epoch's order exactly.
    """

    def __init__(self, data_source, replacement=False, num_samples=None, generator=None):
        if not isinstance(replacement, bool):
            raise ValueError(f"RandomSampler: replacement must be True or False, got {replacement!r}")
        if num_samples is not None:
            num_samples = _check_int("RandomSampler: num_samples", num_samples, 1)
        if generator is None:
            generator = numpy.random.default_rng(int(numpy.random.randint(0, 2**63 - 1, dtype=numpy.int64)))
        elif not isinstance(generator, numpy.random.Generator):
            raise ValueError(f"RandomSampler: generator must be a numpy.random.Generator, "
                             f"got {type(generator).__name__}")
        self.data_source = data_source
        self.replacement = replacement
        self._num_samples = num_samples
        self.generator = generator

    @property
    def num_samples(self):
        return len(self.data_source) if self._num_samples is None else self._num_samples

    def __iter__(self):
        n, wanted = len(self.data_source), self.num_samples
        if n == 0:
            return iter([])
        if self.replacement:
            return iter(self.generator.integers(0, n, size=wanted).tolist())
        passes = [self.generator.permutation(n) for _ in range(wanted // n)]
        passes.append(self.generator.permutation(n)[:wanted % n])
        return iter(numpy.concatenate(passes).tolist())

    def __len__(self):
        return self.num_samples

    def state_dict(self):
        return {"generator": self.generator.bit_generator.state}

    def load_state_dict(self, state):
        self.generator.bit_generator.state = state["generator"]


def _default_world():
    """(world size, rank) from minigrad.distributed when a process group is running, else (1, 0)."""
    try:
        import minigrad.distributed as distributed       # lazily: the data layer runs without it
    except ModuleNotFoundError as error:
        if error.name != "minigrad.distributed":
            raise                                        # the module exists but is broken: say so
        return 1, 0
    if not distributed.is_initialized():
        return 1, 0
    return distributed.get_world_size(), distributed.get_rank()


class DistributedSampler(Sampler):
    """This rank's share of ``dataset``, the same size on every rank (see the module docstring).

    ``num_replicas`` (the number of processes) and ``rank`` (this one's number,
    0 <= rank < num_replicas) default to ``minigrad.distributed``'s world size
    and rank when a process group is initialized, and to 1 and 0 otherwise (one
    process: the sampler is then a plain (shuffled) sampler over the whole
    dataset). ``shuffle`` draws a new permutation per epoch from
    ``seed + epoch``; ``drop_last`` cuts the tail that does not divide evenly
    instead of padding with repeats. Use ``sampler.set_epoch(epoch)`` before each
    epoch and pass the loader ``sampler=sampler`` (and no ``shuffle``).
    """

    def __init__(self, dataset, num_replicas=None, rank=None, shuffle=True, seed=0, drop_last=False):
        if num_replicas is None or rank is None:
            world_size, world_rank = _default_world()
            num_replicas = world_size if num_replicas is None else num_replicas
            rank = world_rank if rank is None else rank
        num_replicas = _check_int("DistributedSampler: num_replicas", num_replicas, 1)
        if isinstance(rank, bool) or not isinstance(rank, (int, numpy.integer)) or not 0 <= rank < num_replicas:
            raise ValueError(f"DistributedSampler: invalid rank {rank!r}, rank should be an integer in the "
                             f"interval [0, {num_replicas - 1}] for num_replicas={num_replicas}")
        self.dataset = dataset
        self.num_replicas = num_replicas
        self.rank = int(rank)
        self.shuffle = bool(shuffle)
        self.seed = _check_int("DistributedSampler: seed", seed, 0)
        self.drop_last = bool(drop_last)
        self.epoch = 0
        n = len(dataset)
        if self.drop_last and n % num_replicas != 0:
            self.num_samples = math.ceil((n - num_replicas) / num_replicas)   # = n // num_replicas
        else:
            self.num_samples = math.ceil(n / num_replicas)
        self.total_size = self.num_samples * num_replicas

    def __iter__(self):
        n = len(self.dataset)
        if self.shuffle:
            indices = numpy.random.default_rng(self.seed + self.epoch).permutation(n).tolist()
        else:
            indices = list(range(n))
        if not self.drop_last:
            padding = self.total_size - len(indices)
            if padding <= len(indices):
                indices += indices[:padding]
            elif indices:                                # fewer examples than the padding: wrap round
                indices += (indices * math.ceil(padding / len(indices)))[:padding]
        else:
            indices = indices[:self.total_size]
        if len(indices) != self.total_size:
            raise RuntimeError(f"DistributedSampler: the dataset changed size: {n} examples now, "
                               f"{self.total_size} planned (build the sampler after the dataset is complete)")
        return iter(indices[self.rank:self.total_size:self.num_replicas])

    def __len__(self):
        return self.num_samples

    def set_epoch(self, epoch):
        """Make the next iteration use the permutation of `epoch` (call it before every epoch)."""
        self.epoch = _check_int("DistributedSampler.set_epoch: epoch", epoch, 0)

    def state_dict(self):
        """The epoch and seed: with them a restored sampler draws the same shards again."""
        return {"epoch": self.epoch, "seed": self.seed}

    def load_state_dict(self, state):
        self.epoch = int(state["epoch"])
        self.seed = int(state.get("seed", self.seed))

    def __repr__(self):
        return (f"DistributedSampler(n={len(self.dataset)}, num_replicas={self.num_replicas}, rank={self.rank}, "
                f"shuffle={self.shuffle}, seed={self.seed}, drop_last={self.drop_last})")
