"""Progress bars for training loops: loss, accuracy and images per second as the epoch runs.

    bar = TrainingProgress(train_loader, desc="epoch 1/10")
    for images, labels in bar:
        ...                                              # forward, backward, step
        bar.update(loss=loss, correct=number_right, count=len(labels))
    print(bar.summary())      # "loss 0.3124  acc 91.02%  5,310 img/s  <seconds> s"

The bar is drawn by tqdm when it is installed (the `dev` extra); without it,
or with enabled=False, the loop runs silently and the running averages are
still kept, so scripts work either way. Watching never changes what is watched:
the bar is given only the number of steps, never the loader itself, and the
loop below iterates the loader exactly once (a DataLoader draws its shuffle
when it is iterated, so a bar that iterated it too would change the batches).
The averages are weighted by the batch size, so a smaller last batch counts
for what it holds:

    loss = sum_b loss_b * n_b / sum_b n_b,     acc = sum_b correct_b / sum_b n_b
    images per second = sum_b n_b / seconds since the loop started

The sums stay where the numbers come from. Given Tensors (the loss, the count of
correct predictions) on the GPU, they are added up on the GPU, in float64 for the
loss as float(loss) * n_b would be, and read on the host only when the bar's text
is refreshed (every `refresh_every` steps, and once when the loop ends) and when
.loss, .accuracy or state_dict() are asked for: reading a GPU number makes the
host wait for the GPU, which a step that only queues work never has to do.
"""
import sys
import time

import numpy

from minigrad import backend
from minigrad.tensor import Tensor


def tqdm_available():
    try:
        import tqdm  # noqa: F401
    except ImportError:
        return False
    return True


def make_bar(desc=None, total=None, enabled=True, **tqdm_options):
    """A tqdm bar of `total` steps that the caller advances with bar.update(n), or None (tqdm missing,
    or enabled=False). It is given no iterable: tqdm.auto's constructor would call iter() on it."""
    if not enabled or not tqdm_available():
        return None
    from tqdm.auto import tqdm

    tqdm_options.setdefault("dynamic_ncols", True)
    tqdm_options.setdefault("file", sys.stderr)
    return tqdm(desc=desc, total=total, **tqdm_options)


def progress_bar(iterable, desc=None, total=None, enabled=True, **tqdm_options):
    """Yield from `iterable` (iterated once, by this loop alone) while a bar counts the items; without
    tqdm or with enabled=False, `iterable` is returned unchanged."""
    if total is None and hasattr(iterable, "__len__"):
        total = len(iterable)
    bar = make_bar(desc, total, enabled, **tqdm_options)
    return iterable if bar is None else _counted(iterable, bar)


def _counted(iterable, bar):
    try:
        for item in iterable:
            yield item
            bar.update(1)
    finally:
        bar.close()


class TrainingProgress:
    """Iterate over `iterable` (a DataLoader) with a bar showing running loss, accuracy and img/s.

    refresh_every: the bar's text (loss and accuracy, read from the device) is redrawn every this
    many steps, and once when the loop ends.
    """

    def __init__(self, iterable, desc=None, total=None, enabled=True, leave=True, refresh_every=1):
        if total is None and hasattr(iterable, "__len__"):
            total = len(iterable)
        self.iterable = iterable
        self.total, self.desc, self.enabled, self.leave = total, desc, enabled, leave
        self.bar = None                                  # made when the loop starts
        self.refresh_every = max(1, int(refresh_every))
        self.loss_total = 0.0                            # a number, or a 0-d device array between reads
        self.loss_count = 0
        self.correct = 0                                 # likewise
        self.count = 0
        self.steps = 0
        self.start = None
        self.elapsed = 0.0
        self.earlier_elapsed = 0.0                       # time spent on this epoch before a resume
        self._shown = 0                                  # the step whose sums the bar's text shows

    def __iter__(self):
        self.bar = make_bar(self.desc, self.total, self.enabled, leave=self.leave, unit="batch", initial=self.steps)
        self.start = time.perf_counter()
        self._shown = self.steps
        try:
            for item in self.iterable:                   # the only iteration of the loader
                yield item
                if self.bar is not None:
                    self.bar.update(1)
            if self.bar is not None and self._shown != self.steps:
                self._refresh()                          # the bar ends on the epoch's numbers
        finally:
            self.elapsed = self.earlier_elapsed + time.perf_counter() - self.start
            if self.bar is not None:
                self.bar.close()

    def __len__(self):
        return len(self.iterable)

    def state_dict(self):
        """The running sums (read on the host), for a checkpoint taken between two batches of this epoch."""
        return {"loss_total": self._read("loss_total"), "loss_count": self.loss_count,
                "correct": self._read("correct"), "count": self.count, "steps": self.steps,
                "elapsed": self.elapsed}

    def load_state_dict(self, state):
        """Continue the running sums of an epoch that was interrupted (its time too: img/s stays honest)."""
        self.loss_total, self.loss_count = float(state["loss_total"]), int(state["loss_count"])
        self.correct, self.count, self.steps = int(state["correct"]), int(state["count"]), int(state["steps"])
        self.earlier_elapsed = float(state["elapsed"])

    def update(self, loss=None, correct=None, count=1):
        """Add one batch: its mean `loss`, its number of `correct` predictions, its size `count`.

        `loss` and `correct` are numbers, or one-element Tensors (or arrays) that are added up on
        their own device without a host transfer.
        """
        self.count += count
        self.steps += 1
        if loss is not None:
            array = _as_array(loss)
            loss = float(loss) if array is None else array.astype(numpy.float64)
            self.loss_total = self.loss_total + loss * count      # float64, as float(loss) * count
            self.loss_count += count
        if correct is not None:
            array = _as_array(correct)
            self.correct = self.correct + (int(correct) if array is None else array)
        if self.start is not None:
            self.elapsed = self.earlier_elapsed + time.perf_counter() - self.start
        if self.bar is not None and self.steps % self.refresh_every == 0:
            self._refresh()

    def _refresh(self):
        self.bar.set_postfix_str(self.postfix(), refresh=False)
        self._shown = self.steps

    def _read(self, name):
        """The running sum `name` as a Python number. A sum on a device is read once (a host transfer)
        and kept as that number, which the next update adds to."""
        value = getattr(self, name)
        if type(value) not in (int, float):
            value = backend.to_python(value)
            setattr(self, name, value)
        return value

    @property
    def loss(self):
        return self._read("loss_total") / self.loss_count if self.loss_count else float("nan")

    @property
    def accuracy(self):
        return self._read("correct") / self.count if self.count else float("nan")

    @property
    def images_per_second(self):
        return self.count / self.elapsed if self.elapsed > 0 else float("nan")

    def postfix(self):
        parts = []
        if self.loss_count:
            parts.append(f"loss={self.loss:.4f}")
        parts.append(f"acc={self.accuracy:.2%}")
        parts.append(f"{self.images_per_second:,.0f} img/s")
        return " ".join(parts)

    def summary(self):
        return (f"loss {self.loss:.4f}  acc {self.accuracy:.2%}  "
                f"{self.images_per_second:,.0f} img/s  {self.elapsed:.1f} s")


def _as_array(value):
    """A Tensor's (or a NumPy/CuPy array's) one element as a 0-d array on its device; None for a number."""
    if isinstance(value, Tensor):
        value = value.array
    is_array = isinstance(value, (numpy.ndarray, numpy.generic)) or backend.is_gpu_array(value)
    return value.reshape(()) if is_array else None
