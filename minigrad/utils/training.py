"""The two loops every training script runs: one epoch of training, one pass of evaluation.

    bar = train_one_epoch(model, train_loader, optimizer, F.cross_entropy, desc="epoch 1/10")
    result = evaluate(model, val_loader)          # Evaluation(loss, accuracy, predicted, targets)

One training step is the whole of deep learning in four lines:

    logits = model(images)            # forward: build the graph
    loss = loss_fn(logits, labels)    # one number to make small
    optimizer.zero_grad()             # forget the previous step's gradients (they accumulate)
    loss.backward()                   # dloss/dparameter for every parameter
    optimizer.step()                  # move each parameter a little against its gradient

Evaluation runs the model in eval mode (dropout off, batch norm on its running
statistics) under no_grad, so no graph is kept and memory stays flat.

Neither loop reads a number back from the GPU at every step (which would make the host
wait for the GPU): the running loss and the number correct are added up on the device,
and read when the progress bar's text is refreshed and at the end (see utils/progress.py).

Stopping a run and resuming it exactly. Inside `stop_between_batches()`, Ctrl-C (SIGINT)
and `kill` (SIGTERM) do not stop a step half done: they set a flag, and the training loop
raises TrainingInterrupted at the next batch boundary, before it starts a step. Everything
is then consistent (the weights, the optimizer, the scheduler and batch norm's statistics
have all seen the same batches), the loader knows which batches are finished, and the
exception carries the epoch's running sums, so a checkpoint taken there resumes the epoch
where it stopped, with the same numbers as a run that was never interrupted. A second
Ctrl-C stops at once (then no exact checkpoint can be taken).
"""
import contextlib
import signal
from collections import namedtuple

import numpy

from minigrad import backend, grad_mode
from minigrad.ops.loss import cross_entropy
from minigrad.utils.progress import TrainingProgress

Evaluation = namedtuple("Evaluation", ["loss", "accuracy", "predicted", "targets"])


def count_correct(logits, labels):
    """How many rows of `logits` (B, classes) have their largest value at the true label (an int)."""
    return backend.to_python(count_correct_array(logits, labels))


def count_correct_array(logits, labels):
    """count_correct as a 0-d integer array on the device of `logits`: no host transfer."""
    return (logits.array.argmax(axis=1) == labels.array).sum()


class TrainingInterrupted(KeyboardInterrupt):
    """Ctrl-C or SIGTERM, taken between two batches. `progress` holds the interrupted epoch's running
    sums (TrainingProgress.state_dict) for the checkpoint, to continue them on resume."""

    def __init__(self, message, progress=None):
        super().__init__(message)
        self.progress = progress


_requested = []    # the signals received inside stop_between_batches() and not yet acted on


@contextlib.contextmanager
def stop_between_batches():
    """Inside: SIGINT and SIGTERM ask the training loop to stop at the next batch boundary (see the
    module docstring); a second one stops at once. The previous handlers come back on exit."""
    def handler(signum, frame):
        if _requested:
            raise KeyboardInterrupt(f"signal {signum} again: stopping now")
        _requested.append(signum)

    previous = {number: signal.signal(number, handler) for number in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for number, old in previous.items():
            signal.signal(number, old)
        _requested.clear()


def stop_if_asked(bar=None):
    """Raise TrainingInterrupted if a stop was asked for; call it between two batches.

    In a job of several processes (minigrad.distributed), the ranks agree first: all stop at this
    batch if any was asked to, since a rank that stopped alone would leave the others waiting
    in their next gradient all-reduce.
    """
    asked = bool(_requested)
    if _world_size() > 1:
        import numpy
        from minigrad import distributed
        flag = numpy.array([1.0 if asked else 0.0])
        distributed.all_reduce(flag, op="max")
        asked = bool(flag[0])
    if asked:
        signum = _requested.pop() if _requested else "on another rank"
        _requested.clear()
        raise TrainingInterrupted(f"signal {signum}", None if bar is None else bar.state_dict())


def _world_size():
    import sys
    distributed = sys.modules.get("minigrad.distributed")   # never imported here unless the script did
    return distributed.get_world_size() if distributed is not None and distributed.is_initialized() else 1


def train_one_epoch(model, loader, optimizer, loss_fn=cross_entropy, scheduler=None, desc=None, progress=True,
                    resume=None, refresh_every=10):
    """One pass over `loader`; `scheduler`, if given, is stepped after every batch.

    The caller puts the model in train mode first (`model.train()`): it is the
    caller's choice, e.g. a linear probe keeps a frozen backbone's batch norm in
    eval mode. Returns the TrainingProgress, whose .loss, .accuracy, .elapsed and
    .images_per_second summarise the epoch. resume: the running sums of this epoch
    from a TrainingInterrupted (the loader, restored from the same checkpoint, starts
    at the batch after the last one finished). Raises TrainingInterrupted between two
    batches when asked to stop (see stop_between_batches). refresh_every: the bar shows the running
    loss and accuracy every this many batches (each time the host waits for the GPU to read them).
    """
    bar = TrainingProgress(loader, desc=desc, enabled=progress, refresh_every=refresh_every)
    if resume is not None:
        bar.load_state_dict(resume)
    for images, labels in bar:
        stop_if_asked(bar)                          # a batch boundary: nothing of this batch done yet
        logits = model(images)                                               # (B, classes)
        loss = loss_fn(logits, labels)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        if scheduler is not None:
            scheduler.step()
        bar.update(loss=loss, correct=count_correct_array(logits, labels), count=len(labels))   # on the device
    return bar


def evaluate(model, loader, loss_fn=cross_entropy):
    """Mean loss, accuracy, and every predicted and true class over `loader`, in eval mode, no graph.

    The loss sum and the classes stay on the device until the end: three host transfers in all."""
    model.eval()
    loss_total, count, predicted, targets = 0.0, 0, [], []
    with grad_mode.no_grad():
        for images, labels in loader:
            logits = model(images)                                           # (B, classes)
            loss = loss_fn(logits, labels).array.astype(numpy.float64)       # () on the device
            loss_total, count = loss_total + loss * len(labels), count + len(labels)
            predicted.append(logits.array.argmax(axis=1))                    # (B,)
            targets.append(labels.array)                                     # (B,)
    if not predicted:
        return Evaluation(float("nan"), float("nan"), numpy.zeros(0, int), numpy.zeros(0, int))
    predicted = backend.to_numpy(backend.array_module(predicted[0]).concatenate(predicted))
    targets = backend.to_numpy(backend.array_module(targets[0]).concatenate(targets))
    loss = backend.to_python(loss_total) / count
    return Evaluation(loss, float((predicted == targets).mean()), predicted, targets)
