"""No silent host round trips: a training step reads nothing back from the device.

Every device -> host conversion goes through backend.to_numpy, which counts it. There is no GPU
here, so these tests use counting_host_transfers(count_cpu=True), which counts NumPy arrays at the
same places: a conversion the CPU run makes is one a GPU run would wait for.
"""
import numpy
import pytest

import minigrad
from minigrad import backend, nn, optim
from minigrad.data import DataLoader, TensorDataset
from minigrad.fast.buffers import _kept_pool_matrix as kept
from minigrad.ops import loss as loss_ops
from minigrad.utils.progress import TrainingProgress
from minigrad.utils.training import evaluate, train_one_epoch


# ------------------------------------------------------------------ the counter
@pytest.mark.parametrize("convert", [lambda t: t.item(), float, bool, lambda t: t.numpy(), lambda t: t.tolist(),
                                     lambda t: f"{t:.3f}", lambda t: t.any()],
                         ids=["item", "float", "bool", "numpy", "tolist", "format", "any"])
def test_each_conversion_of_a_tensor_counts_one(convert):
    t = minigrad.tensor(1.5)
    with backend.counting_host_transfers(count_cpu=True) as transfers:
        convert(t)
    assert transfers.count == 1


def test_int_and_index_of_an_integer_tensor_count_one_each():
    t = minigrad.tensor(2)
    with backend.counting_host_transfers(count_cpu=True) as transfers:
        int(t)
        ["a", "b", "c"][t]
    assert transfers.count == 2


def test_numpy_arrays_count_only_with_count_cpu():
    t = minigrad.tensor(1.5)
    before = backend.host_transfers
    with backend.counting_host_transfers() as transfers:
        t.item()
    assert transfers.count == 0 and backend.host_transfers == before


def test_the_count_stops_when_the_block_ends():
    t = minigrad.tensor(1.5)
    with backend.counting_host_transfers(count_cpu=True) as transfers:
        t.item()
    t.item()
    assert transfers.count == 1


def test_device_arithmetic_counts_nothing():
    x = minigrad.randn(4, 3, requires_grad=True)
    with backend.counting_host_transfers(count_cpu=True) as transfers:
        loss = (x * x).sum()
        loss.backward()
    assert transfers.count == 0


# ------------------------------------------------------------------ training and evaluation
def small_cnn():
    return nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(), nn.MaxPool2d(2),
                         nn.Flatten(), nn.Linear(4 * 4 * 4, 3))


def image_loader(batches, batch_size=4, seed=0, device="cpu"):
    rng = numpy.random.default_rng(seed)
    images = rng.standard_normal((batches * batch_size, 1, 8, 8)).astype(numpy.float32)
    labels = rng.integers(0, 3, batches * batch_size)
    return DataLoader(TensorDataset(images, labels), batch_size=batch_size, shuffle=True, seed=seed, device=device)


class Recorded:
    """A loader that notes the transfer count each time the loop asks for a batch (and at the end),
    so the conversions of step k are seen[k] - seen[k - 1]."""

    def __init__(self, loader, transfers):
        self.loader, self.transfers, self.seen = loader, transfers, []

    def __len__(self):
        return len(self.loader)

    def __iter__(self):
        for batch in self.loader:
            self.seen.append(self.transfers.count)
            yield batch
        self.seen.append(self.transfers.count)


@pytest.mark.parametrize("batches, refresh_every", [(7, 3), (6, 3), (4, 1)])
def test_a_training_step_reads_the_device_only_when_the_bar_refreshes(batches, refresh_every):
    pytest.importorskip("tqdm")                          # no bar, no refresh: see the next test
    minigrad.manual_seed(0)
    model = small_cnn()
    optimizer = optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    with backend.counting_host_transfers(count_cpu=True) as transfers:
        loader = Recorded(image_loader(batches), transfers)
        bar = train_one_epoch(model, loader, optimizer, progress=True, refresh_every=refresh_every)
        at_return = transfers.count
        bar.loss, bar.accuracy                            # already read by the last refresh
        after_reading = transfers.count
    per_step = numpy.diff(loader.seen).tolist()
    assert per_step == [2 if step % refresh_every == 0 else 0 for step in range(1, batches + 1)]  # loss, acc
    assert at_return - loader.seen[-1] == (2 if batches % refresh_every else 0)   # the bar ends on the totals
    assert after_reading == at_return


def test_without_a_bar_an_epoch_reads_the_device_only_when_asked():
    minigrad.manual_seed(0)
    model = small_cnn()
    optimizer = optim.Adam(model.parameters(), lr=1e-3)
    with backend.counting_host_transfers(count_cpu=True) as transfers:
        bar = train_one_epoch(model, image_loader(5), optimizer, progress=False)
        during = transfers.count
        bar.loss, bar.accuracy, bar.loss, bar.accuracy
    assert during == 0
    assert transfers.count == 2                           # each sum read once, then kept on the host


def test_evaluate_reads_the_device_three_times_whatever_the_number_of_batches():
    model = small_cnn()
    for batches in (1, 5):
        with backend.counting_host_transfers(count_cpu=True) as transfers:
            evaluate(model, image_loader(batches))
        assert transfers.count == 3                       # the loss sum, the predictions, the targets


def test_the_running_sums_are_the_numbers_a_per_step_item_gives():
    """Summing on the device changes no number: the same float64 sums as float(loss) * count."""
    minigrad.manual_seed(0)
    model = small_cnn()
    bar = train_one_epoch(model, image_loader(6), optim.SGD(model.parameters(), lr=0.1), progress=False)
    minigrad.manual_seed(0)
    model = small_cnn()
    optimizer = optim.SGD(model.parameters(), lr=0.1)
    loss_total, correct, count = 0.0, 0, 0
    for images, labels in image_loader(6):                # what train_one_epoch did before
        logits = model(images)
        loss = nn.functional.cross_entropy(logits, labels)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        loss_total += float(loss.item()) * len(labels)
        correct += int((logits.detach().numpy().argmax(axis=1) == labels.numpy()).sum())
        count += len(labels)
    assert bar.loss == loss_total / count
    assert bar.accuracy == correct / count


def test_state_dict_reads_the_sums_and_resuming_continues_them():
    bar = TrainingProgress([], enabled=False)
    bar.update(loss=minigrad.tensor(0.5), correct=minigrad.tensor(3), count=4)
    state = bar.state_dict()
    assert type(state["loss_total"]) is float and type(state["correct"]) is int
    assert state["loss_total"] == 2.0 and state["correct"] == 3
    resumed = TrainingProgress([], enabled=False)
    resumed.load_state_dict(state)
    resumed.update(loss=minigrad.tensor(0.25), correct=minigrad.tensor(1), count=4)
    assert resumed.loss == (2.0 + 1.0) / 8 and resumed.accuracy == 4 / 8


# ------------------------------------------------------------------ adaptive average pooling: made on the first step
def pooled_training_steps(device, batches=4):
    """Train a small CNN that ends in AdaptiveAvgPool2d((2, 3)) for `batches` steps from an empty cache
    of pool matrices: (device -> host reads during the steps, the cache's misses after each step)."""
    kept.cache_clear()
    minigrad.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d((2, 3)),
                          nn.Flatten(), nn.Linear(4 * 2 * 3, 3)).to(device)
    optimizer = optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    misses = []
    with backend.counting_host_transfers(count_cpu=device == "cpu") as transfers:
        for images, labels in image_loader(batches, device=device):
            loss = nn.functional.cross_entropy(model(images), labels)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            misses.append(kept.cache_info().misses)
    kept.cache_clear()
    return transfers.count, misses


def test_adaptive_avg_pool2d_makes_its_matrices_on_the_first_step_only():
    """The pool matrices (8 -> 2 rows, 8 -> 3 columns) are made (and, on the GPU, copied there) on the first
    step only: two cache misses then, none after; and the steps read nothing back from the device."""
    assert pooled_training_steps("cpu") == (0, [2, 2, 2, 2])


# ------------------------------------------------------------------ labels on the GPU
def test_a_label_out_of_range_without_the_host_check_makes_the_loss_nan(monkeypatch):
    """On the GPU the range check is skipped (it would wait for the GPU); the loss says so instead."""
    monkeypatch.setattr(loss_ops, "_check_label_range", lambda *args: None)
    logits = minigrad.randn(3, 4, requires_grad=True)
    labels = minigrad.tensor([0, 7, 2])
    assert numpy.isnan(nn.functional.cross_entropy(logits, labels).item())
    assert numpy.isnan(nn.functional.nll_loss(logits, labels).item())
    per_row = nn.functional.cross_entropy(logits, labels, reduction="none").detach().numpy()
    assert numpy.isnan(per_row[1]) and numpy.isfinite(per_row[[0, 2]]).all()
    ignored = nn.functional.cross_entropy(logits, minigrad.tensor([0, -100, 2]))   # ignore_index is fine
    assert numpy.isfinite(ignored.item())


def test_on_the_host_a_label_out_of_range_still_raises():
    with pytest.raises(IndexError, match="target label 7 is out of range for 4 classes"):
        nn.functional.cross_entropy(minigrad.randn(3, 4), minigrad.tensor([0, 7, 2]))


@pytest.mark.gpu
def test_on_the_gpu_a_training_step_reads_nothing_back():
    model = small_cnn().to("gpu")
    optimizer = optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    loader = image_loader(4, device="gpu")
    with backend.counting_host_transfers() as transfers:
        bar = train_one_epoch(model, loader, optimizer, progress=False)
        during = transfers.count
        assert numpy.isfinite(bar.loss)
    assert during == 0 and transfers.count == 2


@pytest.mark.gpu
def test_on_the_gpu_adaptive_avg_pool2d_copies_its_matrices_on_the_first_step_only():
    assert pooled_training_steps("gpu") == (0, [2, 2, 2, 2])


@pytest.mark.gpu
def test_on_the_gpu_a_label_out_of_range_makes_the_loss_nan():
    logits = minigrad.randn(3, 4, device="gpu")
    labels = minigrad.tensor([0, 7, 2], device="gpu")
    with backend.counting_host_transfers() as transfers:
        loss = nn.functional.cross_entropy(logits, labels)
    assert transfers.count == 0
    assert numpy.isnan(loss.item())
