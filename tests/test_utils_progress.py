"""TrainingProgress keeps batch-size-weighted running loss and accuracy, with or without a bar."""
import pytest

from minigrad.utils import progress
from minigrad.utils.progress import TrainingProgress, progress_bar


def feed(bar):
    for batch_size in bar:
        bar.update(loss=1.0 if batch_size == 4 else 0.25, correct=batch_size // 2, count=batch_size)
    return bar


@pytest.mark.parametrize("enabled", [True, False])
def test_running_loss_and_accuracy_are_weighted_by_batch_size(enabled):
    bar = feed(TrainingProgress([4, 4, 2], desc="t", enabled=enabled))
    assert bar.loss == pytest.approx((4 * 1.0 + 4 * 1.0 + 2 * 0.25) / 10)
    assert bar.accuracy == pytest.approx((2 + 2 + 1) / 10)
    assert bar.count == 10 and bar.elapsed > 0


def test_postfix_shows_loss_accuracy_and_images_per_second():
    bar = feed(TrainingProgress([4, 2], enabled=False))
    text = bar.postfix()
    assert "loss=" in text and "acc=" in text and "img/s" in text


def test_without_tqdm_the_iterable_is_returned_unchanged(monkeypatch):
    monkeypatch.setattr(progress, "tqdm_available", lambda: False)
    items = [1, 2, 3]
    assert progress_bar(items, desc="x") is items


def test_bar_is_drawn_on_stderr(capsys):
    pytest.importorskip("tqdm")
    feed(TrainingProgress([4, 2], desc="epoch 1"))
    assert "epoch 1" in capsys.readouterr().err


class CountingIterable:
    """A list that counts how often it is iterated (a DataLoader draws its shuffle on every iter())."""

    def __init__(self, items):
        self.items, self.iterations = items, 0

    def __iter__(self):
        self.iterations += 1
        return iter(self.items)

    def __len__(self):
        return len(self.items)


@pytest.mark.parametrize("enabled", [True, False])
def test_the_bar_iterates_the_loader_exactly_once(enabled):
    pytest.importorskip("tqdm")
    loader = CountingIterable([4, 2])
    feed(TrainingProgress(loader, desc="epoch 1", enabled=enabled))
    assert loader.iterations == 1
    loader = CountingIterable([1, 2, 3])
    assert list(progress_bar(loader, desc="x", enabled=enabled)) == [1, 2, 3]
    assert loader.iterations == 1


def test_a_shuffled_loader_gives_the_same_batches_with_and_without_the_bar():
    """The progress bar must not change training: two epochs of a seeded, shuffled DataLoader yield the
    same batches whether a bar watches them or not."""
    pytest.importorskip("tqdm")
    import numpy

    from minigrad.data import DataLoader, TensorDataset

    def two_epochs(enabled):
        loader = DataLoader(TensorDataset(numpy.arange(20.0)), batch_size=6, shuffle=True, seed=1)
        seen = []
        for epoch in range(2):
            for (batch,) in TrainingProgress(loader, desc=f"epoch {epoch}", enabled=enabled):
                seen.append(batch.detach().numpy().tolist())
        return seen

    assert two_epochs(True) == two_epochs(False)
