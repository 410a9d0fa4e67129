"""train_one_epoch and evaluate: the shared loops of the examples."""
import numpy

import minigrad
from minigrad import nn, optim
from minigrad.data import DataLoader, TensorDataset
from minigrad.utils.training import count_correct, evaluate, train_one_epoch


def separable_loader(batch_size=16, seed=0):
    """Two Gaussian blobs, class = which side of x0 + x1 = 0 the point lies on."""
    rng = numpy.random.default_rng(seed)
    points = rng.standard_normal((128, 2)).astype(numpy.float32)
    labels = (points.sum(axis=1) > 0).astype(numpy.int64)
    return DataLoader(TensorDataset(points, labels), batch_size=batch_size, shuffle=True, seed=seed)


def test_train_one_epoch_lowers_the_loss_on_a_separable_problem():
    minigrad.manual_seed(0)
    model = nn.Linear(2, 2)
    optimizer = optim.SGD(model.parameters(), lr=0.5)
    loader = separable_loader()
    before = evaluate(model, loader).loss
    model.train()
    for _ in range(5):
        train_one_epoch(model, loader, optimizer, progress=False)
    after = evaluate(model, loader)
    assert after.loss < 0.5 * before
    assert after.accuracy > 0.9


def test_train_one_epoch_steps_the_scheduler_once_per_batch():
    model = nn.Linear(2, 2)
    optimizer = optim.SGD(model.parameters(), lr=0.1)
    scheduler = optim.lr_scheduler.StepLR(optimizer, step_size=1, gamma=0.5)
    loader = separable_loader(batch_size=32)                       # 128 / 32 = 4 batches
    train_one_epoch(model, loader, optimizer, scheduler=scheduler, progress=False)
    numpy.testing.assert_allclose(optimizer.param_groups[0]["lr"], 0.1 * 0.5 ** 4)


def test_train_one_epoch_leaves_the_mode_to_the_caller():
    model = nn.Sequential(nn.Linear(2, 2), nn.Dropout(0.5))
    model.eval()                                                   # e.g. a linear probe's frozen BN
    train_one_epoch(model, separable_loader(), optim.SGD(model.parameters(), lr=0.1), progress=False)
    assert not model.training


def test_train_one_epoch_reports_loss_accuracy_and_speed():
    model = nn.Linear(2, 2)
    bar = train_one_epoch(model, separable_loader(), optim.SGD(model.parameters(), lr=0.1), progress=False)
    assert numpy.isfinite(bar.loss) and 0.0 <= bar.accuracy <= 1.0
    assert bar.images_per_second > 0


def test_evaluate_returns_every_prediction_in_eval_mode_without_a_graph():
    model = nn.Linear(2, 2)
    model.train()
    result = evaluate(model, separable_loader())
    assert not model.training
    assert result.predicted.shape == result.targets.shape == (128,)
    assert result.accuracy == (result.predicted == result.targets).mean()
    assert model.weight.grad is None


def test_count_correct_counts_rows_whose_argmax_is_the_label():
    logits = minigrad.tensor([[2.0, 1.0], [0.0, 3.0], [5.0, -1.0]])
    labels = minigrad.tensor([0, 1, 1])
    assert count_correct(logits, labels) == 2


def test_sigint_stops_training_at_the_next_batch_boundary_with_the_epochs_sums():
    import os
    import signal

    import pytest

    from minigrad.utils.training import TrainingInterrupted, stop_between_batches

    model = nn.Linear(2, 2)
    optimizer = optim.SGD(model.parameters(), lr=0.1)
    loader = separable_loader(batch_size=8)
    steps = []
    real_step = optimizer.step

    def step_then_signal():
        real_step()
        steps.append(1)
        if len(steps) == 2:
            os.kill(os.getpid(), signal.SIGINT)          # arrives in the middle of the loop body

    optimizer.step = step_then_signal
    previous = signal.getsignal(signal.SIGINT)
    with stop_between_batches():
        with pytest.raises(TrainingInterrupted) as stopped:
            train_one_epoch(model, loader, optimizer, progress=False)
    assert len(steps) == 2                                # the second step was finished, no third began
    assert stopped.value.progress["steps"] == 2 and stopped.value.progress["count"] == 16
    assert loader.state_dict()["position"] == 2           # the loader knows: two batches done
    assert signal.getsignal(signal.SIGINT) is previous    # the handlers are back


def test_a_second_sigint_stops_at_once():
    import os
    import signal

    import pytest

    from minigrad.utils.training import stop_between_batches

    with stop_between_batches():
        os.kill(os.getpid(), signal.SIGINT)               # the first only asks
        with pytest.raises(KeyboardInterrupt, match="again"):
            os.kill(os.getpid(), signal.SIGINT)
