"""Samplers: DistributedSampler's shards (PyTorch's padding and drop_last rules), and DataLoader(sampler=)
with its checkpoint state. One process throughout: num_replicas and rank are given explicitly."""
import collections
import math
import sys

import numpy
import pytest

import minigrad
from minigrad.data import (
    Compose, DataLoader, DistributedSampler, RandomCrop, RandomSampler, Sampler, SequentialSampler,
    TensorDataset, ToFloat,
)

SIZES = [(10, 2), (10, 3), (7, 4), (3, 5), (1, 4), (0, 3), (16, 4), (11, 1)]   # (N, num_replicas)


def _range_dataset(n):
    return TensorDataset(numpy.arange(n))


def _shards(n, replicas, **kwargs):
    return [list(DistributedSampler(_range_dataset(n), num_replicas=replicas, rank=r, **kwargs))
            for r in range(replicas)]


# ------------------------------------------------------------------ DistributedSampler on its own
@pytest.mark.parametrize("shuffle", [False, True])
@pytest.mark.parametrize("n, replicas", [(12, 3), (16, 4), (5, 1), (9, 9)])
def test_shards_partition_the_dataset_when_replicas_divide_it(n, replicas, shuffle):
    shards = _shards(n, replicas, shuffle=shuffle, seed=4)
    assert sorted(i for shard in shards for i in shard) == list(range(n))
    assert all(len(shard) == n // replicas for shard in shards)


@pytest.mark.parametrize("shuffle", [False, True])
@pytest.mark.parametrize("n, replicas", SIZES)
def test_without_drop_last_every_rank_gets_ceil_n_over_r_and_the_padding_repeats_from_the_start(n, replicas, shuffle):
    per_rank = math.ceil(n / replicas)
    shards = _shards(n, replicas, shuffle=shuffle, seed=2)
    assert [len(shard) for shard in shards] == [per_rank] * replicas
    assert len(DistributedSampler(_range_dataset(n), num_replicas=replicas, rank=0)) == per_rank
    counts = collections.Counter(i for shard in shards for i in shard)
    order = (numpy.random.default_rng(2).permutation(n) if shuffle else numpy.arange(n)).tolist()
    padded = (order * (per_rank * replicas // max(n, 1) + 1))[:per_rank * replicas]   # repeated from the start
    assert counts == collections.Counter(padded)


@pytest.mark.parametrize("shuffle", [False, True])
@pytest.mark.parametrize("n, replicas", SIZES)
def test_drop_last_drops_the_tail_instead(n, replicas, shuffle):
    per_rank = n // replicas
    shards = _shards(n, replicas, shuffle=shuffle, seed=2, drop_last=True)
    assert [len(shard) for shard in shards] == [per_rank] * replicas
    union = [i for shard in shards for i in shard]
    assert len(set(union)) == len(union) == per_rank * replicas                     # no example twice


def test_shuffle_false_is_strided():
    assert _shards(10, 3, shuffle=False) == [[0, 3, 6, 9], [1, 4, 7, 0], [2, 5, 8, 1]]
    assert _shards(10, 3, shuffle=False, drop_last=True) == [[0, 3, 6], [1, 4, 7], [2, 5, 8]]
    assert _shards(2, 5, shuffle=False) == [[0], [1], [0], [1], [0]]              # padding wraps round


def test_the_same_seed_and_epoch_give_every_rank_the_same_permutation():
    n, replicas = 23, 4
    samplers = [DistributedSampler(_range_dataset(n), num_replicas=replicas, rank=r, seed=7) for r in range(replicas)]
    for sampler in samplers:
        sampler.set_epoch(3)
    shards = [list(s) for s in samplers]
    permutation = numpy.random.default_rng(7 + 3).permutation(n).tolist()
    padded = permutation + permutation[:24 - n]
    assert shards == [padded[r::replicas] for r in range(replicas)]
    again = DistributedSampler(_range_dataset(n), num_replicas=replicas, rank=1, seed=7)
    again.set_epoch(3)
    assert list(again) == shards[1]                         # a fresh sampler (another process) agrees


def test_set_epoch_reshuffles_and_without_it_every_epoch_repeats():
    sampler = DistributedSampler(_range_dataset(50), num_replicas=2, rank=0, seed=1)
    first = list(sampler)
    assert list(sampler) == first                          # no set_epoch: the same order again
    sampler.set_epoch(1)
    assert list(sampler) != first
    partner = DistributedSampler(_range_dataset(50), num_replicas=2, rank=1, seed=1)
    partner.set_epoch(1)
    assert sorted(list(sampler) + list(partner)) == list(range(50))   # still a partition
    other_seed = DistributedSampler(_range_dataset(50), num_replicas=2, rank=0, seed=2)
    assert list(other_seed) != first


def test_indices_are_python_ints():
    assert all(type(i) is int for i in DistributedSampler(_range_dataset(9), num_replicas=2, rank=1))


def test_state_dict_round_trips_epoch_and_seed():
    sampler = DistributedSampler(_range_dataset(20), num_replicas=2, rank=1, seed=5)
    sampler.set_epoch(4)
    fresh = DistributedSampler(_range_dataset(20), num_replicas=2, rank=1)
    fresh.load_state_dict(sampler.state_dict())
    assert sampler.state_dict() == {"epoch": 4, "seed": 5}
    assert (fresh.epoch, fresh.seed) == (4, 5) and list(fresh) == list(sampler)


def test_without_a_process_group_it_is_one_replica_of_rank_zero():
    sampler = DistributedSampler(_range_dataset(6), shuffle=False)
    assert (sampler.num_replicas, sampler.rank) == (1, 0) and list(sampler) == list(range(6))


def test_with_a_process_group_it_takes_the_world_size_and_rank(monkeypatch):
    import types

    group = types.SimpleNamespace(is_initialized=lambda: True, get_world_size=lambda: 4, get_rank=lambda: 2)
    monkeypatch.setitem(sys.modules, "minigrad.distributed", group)
    monkeypatch.setattr(minigrad, "distributed", group, raising=False)
    sampler = DistributedSampler(_range_dataset(10), shuffle=False)
    assert (sampler.num_replicas, sampler.rank) == (4, 2) and list(sampler) == [2, 6, 0]
    assert DistributedSampler(_range_dataset(10), rank=1).num_replicas == 4   # one of the two given
    idle = types.SimpleNamespace(is_initialized=lambda: False)
    monkeypatch.setitem(sys.modules, "minigrad.distributed", idle)
    monkeypatch.setattr(minigrad, "distributed", idle)
    assert DistributedSampler(_range_dataset(10)).num_replicas == 1


def test_without_minigrad_distributed_it_falls_back_to_one_replica(monkeypatch):
    monkeypatch.setitem(sys.modules, "minigrad.distributed", None)    # `import` now fails as if it were absent
    sampler = DistributedSampler(_range_dataset(3), shuffle=False)
    assert (sampler.num_replicas, sampler.rank, list(sampler)) == (1, 0, [0, 1, 2])


@pytest.mark.parametrize("kwargs, message", [
    ({"num_replicas": 2, "rank": 2}, r"invalid rank 2, rank should be an integer in the interval \[0, 1\]"),
    ({"num_replicas": 2, "rank": -1}, r"invalid rank -1"),
    ({"num_replicas": 3, "rank": 1.0}, r"invalid rank 1.0"),
    ({"num_replicas": 0, "rank": 0}, r"num_replicas must be an integer >= 1, got 0"),
    ({"num_replicas": 2, "rank": 0, "seed": -1}, r"seed must be an integer >= 0, got -1"),
])
def test_bad_arguments_are_clear(kwargs, message):
    with pytest.raises(ValueError, match=message):
        DistributedSampler(_range_dataset(4), **kwargs)


def test_pytorchs_paths_import_it():
    from minigrad.utils.data import DistributedSampler as at_data
    from minigrad.utils.data.distributed import DistributedSampler as at_distributed

    assert at_data is at_distributed is DistributedSampler
    assert minigrad.utils.data.distributed.DistributedSampler is DistributedSampler


@pytest.mark.parametrize("drop_last", [False, True])
@pytest.mark.parametrize("n, replicas", SIZES + [(100, 8), (101, 8), (5, 7), (13, 6)])
def test_unshuffled_shards_equal_pytorchs(n, replicas, drop_last):
    torch_data = pytest.importorskip("torch.utils.data.distributed")
    for rank in range(replicas):
        theirs = torch_data.DistributedSampler(list(range(n)), num_replicas=replicas, rank=rank, shuffle=False,
                                               drop_last=drop_last)
        ours = DistributedSampler(_range_dataset(n), num_replicas=replicas, rank=rank, shuffle=False,
                                  drop_last=drop_last)
        assert list(ours) == list(theirs) and len(ours) == len(theirs)


# ------------------------------------------------------------------ the simple samplers
def test_sequential_and_random_samplers():
    data = _range_dataset(7)
    assert list(SequentialSampler(data)) == list(range(7)) and len(SequentialSampler(data)) == 7
    random = RandomSampler(data, generator=numpy.random.default_rng(0))
    assert sorted(random) == list(range(7)) and len(random) == 7
    longer = list(RandomSampler(data, num_samples=10, generator=numpy.random.default_rng(0)))
    assert len(longer) == 10 and sorted(longer[:7]) == list(range(7))          # a whole pass, then part of one
    drawn = list(RandomSampler(data, replacement=True, num_samples=30, generator=numpy.random.default_rng(0)))
    assert len(drawn) == 30 and set(drawn) <= set(range(7))


def test_a_sampler_without_len_says_so():
    class Endless(Sampler):
        def __iter__(self):
            return iter([0, 1])

    with pytest.raises(TypeError, match="Endless defines no __len__"):
        len(Endless())
    with pytest.raises(ValueError, match="sampler must have a length"):
        DataLoader(_range_dataset(3), sampler=Endless())


# ------------------------------------------------------------------ DataLoader(sampler=...)
def _values(loader):
    return [batch[0].detach().numpy().tolist() for batch in loader]


@pytest.mark.parametrize("drop_last", [False, True])
@pytest.mark.parametrize("prefetch", [False, True])
def test_a_loader_with_a_distributed_sampler_yields_exactly_its_ranks_shard(drop_last, prefetch):
    n, replicas, batch = 23, 3, 3
    for rank in range(replicas):
        sampler = DistributedSampler(_range_dataset(n), num_replicas=replicas, rank=rank, seed=3)
        sampler.set_epoch(2)
        loader = DataLoader(_range_dataset(n), batch_size=batch, sampler=sampler, drop_last=drop_last,
                            prefetch=prefetch)
        shard = list(sampler)                                               # ceil(23 / 3) = 8 indices
        expected = [shard[i:i + batch] for i in range(0, len(shard), batch)]
        if drop_last:
            expected = expected[:-1]                                        # the short last batch
        assert _values(loader) == expected
        assert len(loader) == len(expected) == (2 if drop_last else 3)


def test_the_samplers_drop_last_and_the_loaders_work_together():
    data = _range_dataset(23)
    sampler = DistributedSampler(data, num_replicas=3, rank=2, shuffle=False, drop_last=True)   # 7 samples
    assert [len(b) for b in _values(DataLoader(data, batch_size=3, sampler=sampler))] == [3, 3, 1]
    loader = DataLoader(data, batch_size=3, sampler=sampler, drop_last=True)
    assert len(loader) == 2 and _values(loader) == [[2, 5, 8], [11, 14, 17]]


def test_shuffle_true_with_a_sampler_is_refused():
    sampler = DistributedSampler(_range_dataset(4), num_replicas=1, rank=0)
    with pytest.raises(ValueError, match="sampler option is mutually exclusive with shuffle"):
        DataLoader(_range_dataset(4), shuffle=True, sampler=sampler)


def test_the_loaders_generator_advances_as_without_a_sampler():
    """The sampler replaces the order only: the augmentation seeds follow the loader's seed as before."""
    images = numpy.arange(6 * 16, dtype=numpy.uint8).reshape(6, 1, 4, 4)
    data = TensorDataset(images)
    transform = Compose([RandomCrop(4, padding=1), ToFloat()])
    plain = DataLoader(data, batch_size=2, seed=5, transform=transform)
    sampled = DataLoader(data, batch_size=2, seed=5, transform=transform, sampler=SequentialSampler(data))
    for _ in range(2):
        assert _values(plain) == _values(sampled)
    assert plain.state_dict()["generator"] == sampled.state_dict()["generator"]


@pytest.mark.parametrize("prefetch", [False, True])
@pytest.mark.parametrize("stop_after", [0, 1, 2, 4])
def test_a_loader_with_a_sampler_resumes_mid_epoch_exactly(prefetch, stop_after):
    """As test_data_loader's mid-epoch test, with a shuffling DistributedSampler on epoch 1: the restored
    loader (sampler included) gives the rest of epoch 1, then epoch 2 once set_epoch(2) is called."""
    images = numpy.arange(21 * 16, dtype=numpy.uint8).reshape(21, 1, 4, 4)
    data = TensorDataset(images, numpy.arange(21))

    def loader():
        sampler = DistributedSampler(data, num_replicas=2, rank=1, seed=11)
        return DataLoader(data, batch_size=2, seed=3, prefetch=prefetch, sampler=sampler,
                          transform=Compose([RandomCrop(4, padding=1), ToFloat()]))

    def epoch(run, number):
        run.sampler.set_epoch(number)
        return [[b.detach().numpy().tolist() for b in batch] for batch in run]

    straight = loader()
    epochs = [epoch(straight, e) for e in range(3)]
    assert epochs[1] != epochs[0]
    interrupted = loader()
    epoch(interrupted, 0)
    interrupted.sampler.set_epoch(1)
    iterator = iter(interrupted)                             # epoch 1 ...
    for _ in range(stop_after):
        next(iterator)
    interrupted.sampler.set_epoch(7)                         # the state keeps the epoch the plan was drawn with
    state = interrupted.state_dict()
    assert state["sampler"] == {"epoch": 1, "seed": 11}
    resumed = loader()
    resumed.load_state_dict(state)
    assert resumed.sampler.epoch == 1
    finished = max(stop_after - 1, 0)
    assert [[b.detach().numpy().tolist() for b in batch] for batch in resumed] == epochs[1][finished:]
    assert epoch(resumed, 2) == epochs[2]


def test_a_random_sampler_resumes_too():
    data = _range_dataset(9)

    def loader():
        return DataLoader(data, batch_size=2, seed=1,
                          sampler=RandomSampler(data, generator=numpy.random.default_rng(4)))

    straight = loader()
    epochs = [_values(straight) for _ in range(2)]
    interrupted = loader()
    iterator = iter(interrupted)
    next(iterator), next(iterator)
    resumed = loader()
    resumed.load_state_dict(interrupted.state_dict())
    assert _values(resumed) == epochs[0][1:]
    assert _values(resumed) == epochs[1]


def test_states_without_a_sampler_still_load_and_a_sampler_state_needs_a_sampler():
    data = _range_dataset(8)
    old = DataLoader(data, batch_size=2, seed=0).state_dict()
    assert "sampler" not in old
    with_sampler = DataLoader(data, batch_size=2, sampler=DistributedSampler(data, num_replicas=2, rank=0))
    with_sampler.load_state_dict(old)                       # an old checkpoint: the sampler keeps its state
    plain = DataLoader(data, batch_size=2)
    with pytest.raises(ValueError, match="holds a sampler's state, but this loader's sampler is None"):
        plain.load_state_dict(with_sampler.state_dict())
