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
"""
from collections import namedtuple

import numpy

from minigrad import grad_mode
from minigrad.ops.loss import cross_entropy
from minigrad.utils.metrics import RunningMean
from minigrad.utils.progress import TrainingProgress

Evaluation = namedtuple("Evaluation", ["loss", "accuracy", "predicted", "targets"])


def count_correct(logits, labels):
    """How many rows of `logits` (B, classes) have their largest value at the true label."""
    return int((logits.numpy().argmax(axis=1) == labels.numpy()).sum())


def train_one_epoch(model, loader, optimizer, loss_fn=cross_entropy, scheduler=None, desc=None, progress=True):
    """One pass over `loader`; `scheduler`, if given, is stepped after every batch.

    The caller puts the model in train mode first (`model.train()`): it is the
    caller's choice, e.g. a linear probe keeps a frozen backbone's batch norm in
    eval mode. Returns the TrainingProgress, whose .loss, .accuracy, .elapsed and
    .images_per_second summarise the epoch.
    """
    bar = TrainingProgress(loader, desc=desc, enabled=progress)
    for images, labels in bar:
        logits = model(images)                                               # (B, classes)
        loss = loss_fn(logits, labels)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        if scheduler is not None:
            scheduler.step()
        bar.update(loss=loss.item(), correct=count_correct(logits, labels), count=len(labels))
    return bar


def evaluate(model, loader, loss_fn=cross_entropy):
    """Mean loss, accuracy, and every predicted and true class over `loader`, in eval mode, no graph."""
    model.eval()
    loss_meter, predicted, targets = RunningMean(), [], []
    with grad_mode.no_grad():
        for images, labels in loader:
            logits = model(images)                                           # (B, classes)
            loss_meter.update(loss_fn(logits, labels).item(), count=len(labels))
            predicted.append(logits.numpy().argmax(axis=1))
            targets.append(labels.numpy())
    if not predicted:
        return Evaluation(float("nan"), float("nan"), numpy.zeros(0, int), numpy.zeros(0, int))
    predicted, targets = numpy.concatenate(predicted), numpy.concatenate(targets)
    return Evaluation(loss_meter.mean, float((predicted == targets).mean()), predicted, targets)


def interrupt_on_sigterm():
    """Treat SIGTERM (a job scheduler or a closing session ending the run) like Ctrl-C.

    The examples catch KeyboardInterrupt to save a checkpoint before they exit;
    with this handler installed, `kill PID` takes the same path, so a long run
    that is stopped from outside can still be resumed.
    """
    import signal

    def handler(signum, frame):
        raise KeyboardInterrupt(f"signal {signum}")

    signal.signal(signal.SIGTERM, handler)
