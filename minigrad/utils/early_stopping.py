"""Early stopping: stop training when a validation metric has stopped improving.

Once per epoch, after validation::

    stopper = EarlyStopping(patience=3, mode="max")     # watch validation accuracy
    for epoch in range(epochs):
        ...
        if stopper.step(val_accuracy):
            print(f"no improvement for {stopper.patience} epochs; best was {stopper.best}")
            break

The rule. With mode "min" (a loss) a value v improves on the best so far when
v < best - min_delta; with mode "max" (an accuracy) when v > best + min_delta.
The first value always improves. Every epoch without an improvement adds one
to `num_bad_epochs`, an improvement resets it to 0, and `step` returns True
(stop) when num_bad_epochs reaches `patience`: with patience = 2 the run stops
at the second epoch in a row that does not improve. A NaN never improves.

`improved` tells whether the last step was a new best, which is when a
training script saves its "best" checkpoint. state_dict / load_state_dict let
a resumed run carry on counting where it stopped.
"""
import math

MODES = ("min", "max")


class EarlyStopping:
    def __init__(self, patience=5, mode="min", min_delta=0.0):
        if not (isinstance(patience, int) and patience >= 1):
            raise ValueError(f"EarlyStopping: patience must be an integer >= 1, got {patience!r}")
        if mode not in MODES:
            raise ValueError(f"EarlyStopping: mode must be 'min' or 'max', got {mode!r}")
        if not min_delta >= 0:
            raise ValueError(f"EarlyStopping: min_delta must be >= 0, got {min_delta!r}")
        self.patience = patience
        self.mode = mode
        self.min_delta = float(min_delta)
        self.best = None          # best value so far
        self.best_epoch = None    # index (0, 1, ...) of the step that gave it
        self.num_bad_epochs = 0
        self.epochs_seen = 0
        self.improved = False
        self.should_stop = False

    def is_improvement(self, value):
        if math.isnan(value):
            return False
        if self.best is None:
            return True
        if self.mode == "min":
            return value < self.best - self.min_delta
        return value > self.best + self.min_delta

    def step(self, value):
        """Record this epoch's metric; True when training should stop now."""
        value = float(value)
        self.improved = self.is_improvement(value)
        if self.improved:
            self.best = value
            self.best_epoch = self.epochs_seen
            self.num_bad_epochs = 0
        else:
            self.num_bad_epochs += 1
        self.epochs_seen += 1
        self.should_stop = self.num_bad_epochs >= self.patience
        return self.should_stop

    def state_dict(self):
        return dict(vars(self))

    def load_state_dict(self, state):
        for key in ("patience", "mode", "min_delta"):
            if state[key] != getattr(self, key):
                raise ValueError(
                    f"EarlyStopping.load_state_dict: saved {key}={state[key]!r} differs from "
                    f"this stopper's {key}={getattr(self, key)!r}"
                )
        vars(self).update(state)

    def __repr__(self):
        return (f"EarlyStopping(patience={self.patience}, mode={self.mode!r}, "
                f"min_delta={self.min_delta}, best={self.best}, num_bad_epochs={self.num_bad_epochs})")
