"""EarlyStopping stops exactly after `patience` epochs in a row without improvement."""
import math

import pytest

from minigrad.utils.early_stopping import EarlyStopping


def run(stopper, values):
    """The index of the epoch at which step() first returns True, or None."""
    for epoch, value in enumerate(values):
        if stopper.step(value):
            return epoch
    return None


def test_min_mode_stops_at_patience_th_bad_epoch():
    # best 1.0 at epoch 1; epochs 2 and 3 do not improve -> stop at epoch 3 with patience 2
    assert run(EarlyStopping(patience=2, mode="min"), [2.0, 1.0, 1.5, 1.2, 0.1]) == 3


def test_max_mode_stops_at_patience_th_bad_epoch():
    assert run(EarlyStopping(patience=3, mode="max"), [0.5, 0.7, 0.6, 0.7, 0.65, 0.99]) == 4


def test_improvement_resets_the_count():
    # bad, improve, bad, bad: the counter restarts after epoch 2
    assert run(EarlyStopping(patience=2, mode="min"), [1.0, 1.1, 0.5, 0.6, 0.7]) == 4


def test_does_not_stop_while_improving():
    assert run(EarlyStopping(patience=1, mode="max"), [0.1, 0.2, 0.3, 0.4]) is None


def test_equal_value_is_not_an_improvement():
    assert run(EarlyStopping(patience=1, mode="min"), [1.0, 1.0]) == 1


def test_min_delta_requires_a_big_enough_change():
    stopper = EarlyStopping(patience=1, mode="max", min_delta=0.01)
    assert run(stopper, [0.90, 0.905]) == 1 and stopper.best == 0.90


def test_nan_never_improves():
    stopper = EarlyStopping(patience=2, mode="min")
    assert run(stopper, [math.nan, math.nan]) == 1 and stopper.best is None


def test_improved_flag_and_best_epoch_track_the_best():
    stopper = EarlyStopping(patience=5, mode="max")
    flags = [(stopper.step(v), stopper.improved)[1] for v in [0.1, 0.3, 0.2]]
    assert flags == [True, True, False] and stopper.best == 0.3 and stopper.best_epoch == 1


def test_state_dict_round_trip_continues_the_count():
    first = EarlyStopping(patience=3, mode="min")
    run(first, [1.0, 2.0, 2.0])
    second = EarlyStopping(patience=3, mode="min")
    second.load_state_dict(first.state_dict())
    assert second.step(3.0) is True


def test_rejects_unknown_mode():
    with pytest.raises(ValueError, match="mode must be 'min' or 'max'"):
        EarlyStopping(mode="best")


def test_rejects_zero_patience():
    with pytest.raises(ValueError, match="patience must be an integer >= 1"):
        EarlyStopping(patience=0)
