"""DataLoader: turn a dataset into a stream of (images, labels) batches on a device.

One epoch, step by step::

    order  = rng.permutation(N) if shuffle else arange(N)       # (N,), or list(sampler) with sampler=
    for b in range(len(loader)):
        idx            = order[b*B : (b+1)*B]                   # (B,)
        images, labels = dataset.get_batch(idx, rng)            # fancy indexing, the dataset's transform
        images         = transform.batch(images, rng=batch_rng(b))   # whole-batch augmentation
        yield Tensor(images, device), Tensor(labels, device)    # (B, C, H, W), (B,)

Reproducible and resumable randomness
-------------------------------------
The loader owns one ``numpy.random.Generator`` (from ``seed`` or ``generator``).
At the start of every epoch it draws the permutation and one ``epoch_seed``;
batch b is augmented with ``default_rng([epoch_seed, b])``. So:
- the same seed gives the same batches and augmentations, with or without
  the prefetch thread (which never touches the loader's generator);
- the generator advances by a fixed amount per epoch, however many batches
  were consumed, so a saved state can always draw an epoch's plan again.
``state_dict()`` saves where the stream is. Between epochs: the generator and
the epoch counter. In the middle of an epoch: the generator as it was before
this epoch's plan was drawn, and ``position``, the number of batches the
consumer has finished (a batch counts once the loop asks for the next one).
``load_state_dict()`` then makes the next ``iter()`` draw the same plan and
start at batch ``position``, with the same augmentations (they depend on the
batch number, not on what ran before): an interrupted epoch resumes exactly
where it stopped. With ``sampler=`` the order is ``list(sampler)``; the
sampler's own state (``sampler.state_dict()``, e.g. a DistributedSampler's
epoch) is saved alongside, as it was when the epoch's plan was drawn.

Prefetch
--------
With ``prefetch=True`` a background thread builds batch b+1 (indexing,
transforms, copy to the device) while the training step runs on batch b.
NumPy releases the GIL in its copy loops, so the two overlap.
"""
import queue
import threading

import numpy

from minigrad import backend
from minigrad.data.dataset import fetch_batch
from minigrad.data.transforms import Transform, drawing_from
from minigrad.tensor import Tensor


class DataLoader:
    """Iterate over `dataset` in batches of `batch_size`, as minigrad Tensors on `device`.

    Each batch is a tuple (images, labels) (more fields if the dataset has
    them). Transforms can sit on the dataset (``transform=``, as in
    torchvision) or here; either way a minigrad transform runs once per batch
    (its ``batch`` method), and a plain function given here receives the
    whole NumPy batch. The first field comes out float32 if it is floating
    point (add transforms.ToTensor() to turn uint8 pixels into float32 in
    [0, 1]); integer fields after it (labels) come out int64.

    ``sampler=`` (keyword) replaces the loader's own order: each epoch visits
    ``list(sampler)`` in that order, and ``len(loader)`` counts batches of
    ``len(sampler)`` examples. A ``DistributedSampler`` gives each process its
    shard this way (call its ``set_epoch(epoch)`` before each epoch). As in
    PyTorch, ``shuffle=True`` together with a sampler is an error: the sampler
    decides the order. The loader's generator still seeds the augmentations,
    and ``state_dict()`` also holds the sampler's state when it has one.
    """

    def __init__(self, dataset, batch_size=1, shuffle=False, drop_last=False, seed=None,
                 generator=None, transform=None, device="cpu", prefetch=False, *, sampler=None, num_workers=0,
                 pin_memory=False, persistent_workers=False, prefetch_factor=None):
        """PyTorch's worker arguments are accepted with a meaning of their own: num_workers > 0 turns on
        `prefetch` (one background thread builds the next batch while the step runs; minigrad builds a
        whole batch in a few vectorised NumPy calls, so one worker keeps up). pin_memory,
        persistent_workers and prefetch_factor are accepted and change nothing (batches are copied to
        the device when they are built, and the worker thread lives as long as an epoch)."""
        if not isinstance(num_workers, (int, numpy.integer)) or isinstance(num_workers, bool) or num_workers < 0:
            raise ValueError(f"DataLoader: num_workers must be an integer >= 0, got {num_workers!r}")
        prefetch = bool(prefetch) or num_workers > 0
        if not isinstance(batch_size, (int, numpy.integer)) or batch_size < 1:
            raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}")
        if seed is not None and generator is not None:
            raise ValueError("pass either seed or generator, not both")
        if sampler is not None:
            if shuffle:
                raise ValueError("DataLoader: sampler option is mutually exclusive with shuffle "
                                 "(the sampler sets the order; pass shuffle=False, or shuffle inside the sampler)")
            try:
                len(sampler)
            except TypeError:
                raise ValueError(f"DataLoader: sampler must have a length (len(sampler) counts the batches), "
                                 f"got {type(sampler).__name__}") from None
        self.dataset = dataset
        self.sampler = sampler
        self.batch_size = int(batch_size)
        self.shuffle = bool(shuffle)
        self.drop_last = bool(drop_last)
        self.transform = transform
        self.device = backend.normalize_device(device)
        self.prefetch = bool(prefetch)
        if generator is None:
            if seed is None:  # derive from NumPy's global RNG so minigrad.manual_seed applies
                seed = int(numpy.random.randint(0, 2**63 - 1, dtype=numpy.int64))
            generator = numpy.random.default_rng(seed)
        self.generator = generator
        self.epoch = 0  # epochs started so far
        self._current = None   # the epoch in progress: its starting state and the batches finished
        self._start_at = 0     # the batch the next epoch starts at (set by load_state_dict)

    def __len__(self):
        n = len(self.sampler) if self.sampler is not None else len(self.dataset)
        return n // self.batch_size if self.drop_last else -(-n // self.batch_size)

    # ------------------------------------------------------------------ state for checkpoints
    def state_dict(self):
        """What a checkpoint saves: the generator state, the epoch counter and the position in the
        epoch in progress (0 between epochs); see the module docstring."""
        if self._current is not None:
            return dict(self._current)
        return self._state(position=self._start_at)

    def _state(self, position):
        """The generator, epoch counter and sampler state as they are now, at `position`."""
        state = {"generator": self.generator.bit_generator.state, "epoch": self.epoch, "position": position}
        if hasattr(self.sampler, "state_dict"):
            state["sampler"] = self.sampler.state_dict()
        return state

    def load_state_dict(self, state):
        """Restore a state from state_dict(); the next epoch is the one the saved run would see."""
        bit_generator = self.generator.bit_generator
        if state["generator"].get("bit_generator") != type(bit_generator).__name__:
            raise ValueError(
                f"loader state holds a {state['generator'].get('bit_generator')} generator, "
                f"this loader uses {type(bit_generator).__name__}"
            )
        position = int(state.get("position", 0))
        if not 0 <= position <= len(self):
            raise ValueError(f"loader state: position {position} is outside an epoch of {len(self)} batches")
        if "sampler" in state:                          # states saved without a sampler have no entry
            if not hasattr(self.sampler, "load_state_dict"):
                raise ValueError(f"loader state holds a sampler's state, but this loader's sampler is "
                                 f"{type(self.sampler).__name__ if self.sampler is not None else 'None'}: "
                                 f"pass the same sampler= as the loader that saved it")
            self.sampler.load_state_dict(state["sampler"])
        bit_generator.state = state["generator"]
        self.epoch = int(state["epoch"])
        self._start_at = position
        self._current = None

    # ------------------------------------------------------------------ one batch
    def _make_batch(self, indices, epoch_seed, batch_number):
        """Gather, transform and move one batch; returns a tuple of Tensors."""
        dataset_rng = numpy.random.default_rng([epoch_seed, batch_number, 1])   # the dataset's transform=
        with drawing_from(dataset_rng):          # also for random transforms inside a dataset's __getitem__
            fields = list(fetch_batch(self.dataset, indices, rng=dataset_rng))
        if self.transform is not None:
            rng = numpy.random.default_rng([epoch_seed, batch_number])
            if isinstance(self.transform, Transform):
                fields[0] = self.transform.batch(fields[0], rng=rng)
            else:
                fields[0] = self.transform(fields[0])       # a plain function gets the whole batch
        tensors = []
        for position, array in enumerate(fields):
            array = numpy.asarray(array) if not backend.is_gpu_array(array) else array
            if array.dtype.kind == "f":
                array = array.astype(numpy.float32, copy=False)
            elif position > 0 and array.dtype.kind in "iub":
                array = array.astype(numpy.int64, copy=False)
            tensors.append(Tensor(backend.to_device(array, self.device), device=self.device))
        return tuple(tensors)

    def _epoch_plan(self):
        """Draw this epoch's order and seed from the generator; a list of index arrays."""
        if self.sampler is not None:
            order = numpy.asarray(list(self.sampler), dtype=numpy.int64)    # (len(sampler),)
        else:
            n = len(self.dataset)
            order = self.generator.permutation(n) if self.shuffle else numpy.arange(n)
        n = len(order)
        epoch_seed = int(self.generator.integers(0, 2**63 - 1))
        self.epoch += 1
        stops = range(self.batch_size, n + self.batch_size, self.batch_size)
        batches = [order[stop - self.batch_size:stop] for stop in stops][:len(self)]
        return batches, epoch_seed

    # ------------------------------------------------------------------ iteration
    def __iter__(self):
        current = self._state(position=self._start_at)    # taken before the plan is drawn, to draw it again
        batches, epoch_seed = self._epoch_plan()          # drawn now, so state advances at iter()
        first, self._start_at = self._start_at, 0
        self._current = current
        if self.prefetch:
            source = _prefetching(self, batches, epoch_seed, first)
        else:
            source = (self._make_batch(batches[b], epoch_seed, b) for b in range(first, len(batches)))
        return self._counted(source, current)

    def _counted(self, source, current):
        """Yield from `source`, counting a batch as finished when the consumer asks for the next one."""
        for batch in source:
            yield batch
            current["position"] += 1
        if self._current is current:
            self._current = None                  # the epoch is complete

    def __repr__(self):
        return (f"DataLoader(n={len(self.dataset)}, batch_size={self.batch_size}, "
                f"shuffle={self.shuffle}, drop_last={self.drop_last}, device={self.device!r}, "
                f"prefetch={self.prefetch}, transform={self.transform!r}"
                + (f", sampler={self.sampler!r})" if self.sampler is not None else ")"))


_DONE = object()  # end-of-epoch marker in the prefetch queue


def _prefetching(loader, batches, epoch_seed, first=0):
    """Yield the epoch's batches while a worker thread builds the next one ahead.

    The queue holds at most one finished batch, so memory stays bounded. An
    exception in the worker is re-raised here; leaving the loop early (break)
    stops the worker through the `stop` event.
    """
    ready = queue.Queue(maxsize=1)
    stop = threading.Event()

    def put(item):
        while not stop.is_set():
            try:
                ready.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    gpu = backend.cupy_module().cuda.Device() if loader.device == backend.GPU else None   # this thread's GPU

    def work():
        try:
            if gpu is not None:
                gpu.use()                 # the current GPU is per thread: build batches on the caller's
            for b in range(first, len(batches)):
                if stop.is_set() or not put(loader._make_batch(batches[b], epoch_seed, b)):
                    return
            put(_DONE)
        except BaseException as error:  # hand the error to the consumer
            put(error)

    worker = threading.Thread(target=work, name="minigrad-prefetch", daemon=True)
    worker.start()
    try:
        while True:
            item = ready.get()
            if item is _DONE:
                return
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stop.set()
        worker.join(timeout=5)
