"""Train a multi-layer perceptron on MNIST: the first complete training run of the course.

    python examples/mnist_mlp.py                       # MLP 784-512-256-10, Adam, 10 epochs
    python examples/mnist_mlp.py --optimizer sgd --lr 0.05 --epochs 15
    python examples/mnist_mlp.py --resume runs/mnist_mlp/last.ckpt --epochs 15
    mpiexec -n 2 python examples/mnist_mlp.py --distributed   # two processes, one model

What happens, top to bottom:
 1. the config (argparse) and the random seed;
 2. data: the 60,000 training digits, of which the LAST --val-size are held out
    for validation, and the 10,000 official test digits, touched once at the end;
 3. model, optimizer, learning-rate schedule;
 4. the epoch loop: train (progress bar with loss, accuracy, images/s), validate,
    log a CSV/JSON row, save a checkpoint, maybe stop early;
 5. test accuracy, plots, one summary line.

Ctrl-C saves <out>/interrupted.ckpt and exits with code 130; --resume continues
from any checkpoint (last.ckpt continues exactly as if never stopped).

--distributed (under mpiexec -n N): data-parallel training, one process per rank
(minigrad.distributed, chapter 11). --batch-size stays the GLOBAL batch, split
evenly over the ranks, so the learning rate and schedule mean the same; each
rank reads its shard (DistributedSampler) and DistributedDataParallel averages
the gradients. Metrics are reduced over the ranks; only rank 0 prints, shows
progress, writes logs, plots, checkpoints and evaluates the test set. A
checkpoint holds the plain model (no DDP wrapper), so it resumes with the same
number of ranks or loads into one process.
"""
import argparse
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))  # so the script runs from a checkout without `pip install -e .`

import numpy  # noqa: E402

import minigrad  # noqa: E402
import minigrad.nn.functional as F  # noqa: E402
from minigrad import backend, nn, optim  # noqa: E402
from minigrad.data import (  # noqa: E402
    MNIST, Compose, DataLoader, DatasetFormatError, DatasetNotFoundError, DistributedSampler, DownloadError,
    Normalize, Subset, ToFloat, default_data_dir, train_val_split,
)
from minigrad.models import MLP  # noqa: E402
from minigrad.utils.cli import HelpWithDefaults  # noqa: E402
from minigrad.utils.ranks import Ranks  # noqa: E402
from minigrad.utils.checkpoint import load_checkpoint  # noqa: E402
from minigrad.utils.early_stopping import EarlyStopping  # noqa: E402
from minigrad.utils.history import MetricHistory  # noqa: E402
from minigrad.utils.metrics import confusion_matrix  # noqa: E402
from minigrad.utils.plots import (  # noqa: E402
    plot_confusion_matrix, plot_sample_predictions, plot_training_curves,
)
from minigrad.utils.training import TrainingInterrupted, evaluate, stop_between_batches, train_one_epoch  # noqa: E402


def fail(message):
    """One clear message and exit code 2, no traceback (bad device, missing data or checkpoint)."""
    print(f"mnist_mlp.py: error: {message}", file=sys.stderr)
    sys.exit(2)


# ---------------------------------------------------------------------------------------- 1. config
parser = argparse.ArgumentParser(description="Train an MLP on MNIST.",
                                 formatter_class=HelpWithDefaults)
parser.add_argument("--data-dir", default=str(default_data_dir()), help="folder holding mnist/ (default: %(default)s)")
parser.add_argument("--no-download", action="store_true",
                    help="fail if the data is missing instead of downloading it (checksummed) into --data-dir")
parser.add_argument("--out", default="runs/mnist_mlp", help="checkpoints, logs and plots go here")
parser.add_argument("--device", default="cpu", choices=["cpu", "gpu"])
parser.add_argument("--hidden", default="512,256", help="hidden layer widths, comma-separated")
parser.add_argument("--dropout", type=float, default=0.2)
parser.add_argument("--optimizer", default="adam", choices=["adam", "sgd"])
parser.add_argument("--lr", type=float, default=1e-3)
parser.add_argument("--weight-decay", type=float, default=0.0)
parser.add_argument("--epochs", type=int, default=10)
parser.add_argument("--batch-size", type=int, default=128)
parser.add_argument("--val-size", type=int, default=5000, help="last N training digits held out")
parser.add_argument("--limit-train", type=int, default=None, help="train on the first N digits only (smoke tests)")
parser.add_argument("--stop-after", type=int, default=None,
                    help="train at most this many epochs in this run (to fit a time slot); --resume continues")
parser.add_argument("--patience", type=int, default=0, help="early stopping on val accuracy; 0 = off")
parser.add_argument("--seed", type=int, default=0)
parser.add_argument("--resume", default=None, help="checkpoint to continue from")
parser.add_argument("--no-progress", action="store_true", help="no progress bars")
parser.add_argument("--distributed", action="store_true",
                    help="data-parallel over the processes of mpiexec -n N (--batch-size is the global batch)")
args = parser.parse_args()

try:
    ranks = Ranks(distributed=args.distributed, global_batch=args.batch_size)    # one process, or rank r of N
except (ImportError, ValueError) as error:
    fail(error)
rank, world, say, reduced = ranks.rank, ranks.world, ranks.say, ranks.summed


out = Path(args.out)
out.mkdir(parents=True, exist_ok=True)
try:
    backend.module_for(args.device)  # fail now, with one clear message, if the GPU is missing
except backend.DeviceError as error:
    fail(error)
minigrad.manual_seed(args.seed)

# ---------------------------------------------------------------------------------------- 2. data
try:
    full_train = MNIST(args.data_dir, train=True, download=not args.no_download)
    test_set = MNIST(args.data_dir, train=False, download=not args.no_download)
except (DatasetNotFoundError, DatasetFormatError, DownloadError) as error:
    fail(error)
train_set, val_set = train_val_split(full_train, args.val_size)   # validation = the LAST val_size digits
if args.limit_train is not None:
    train_set = Subset(full_train, numpy.arange(min(args.limit_train, len(train_set))))

transform = Compose([ToFloat(), Normalize(mean=0.1307, std=0.3081)])   # MNIST pixel statistics
sampler = DistributedSampler(train_set, seed=args.seed) if args.distributed else None   # this rank's shard
train_loader = DataLoader(train_set, args.batch_size // world, shuffle=sampler is None, sampler=sampler,
                          seed=args.seed, transform=transform, device=args.device)
val_share = Subset(val_set, numpy.arange(rank, len(val_set), world))         # every world-th digit: disjoint shares
val_loader = DataLoader(val_share, 1000, seed=0, transform=transform, device=args.device)
test_loader = DataLoader(test_set, 1000, seed=0, transform=transform, device=args.device)
say(f"data: {len(train_set)} train, {len(val_set)} validation, {len(test_set)} test digits from {args.data_dir}")

# ---------------------------------------------------------------------------------------- 3. model
hidden = [int(width) for width in args.hidden.split(",") if width]
net = MLP(28 * 28, hidden, 10, dropout=args.dropout).to(args.device)   # no batch norm: nothing to synchronise
model = net                                                              # what trains; wrapped in DDP below
if args.optimizer == "adam":
    optimizer = optim.Adam(model.parameters(), lr=args.lr, weight_decay=args.weight_decay)
else:
    optimizer = optim.SGD(model.parameters(), lr=args.lr, momentum=0.9, nesterov=True,
                          weight_decay=args.weight_decay)
scheduler = optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=args.epochs)   # stepped once per epoch
say(f"model: MLP 784-{'-'.join(map(str, hidden))}-10, {model.num_parameters():,} parameters, "
    f"{args.optimizer} lr={args.lr}, cosine schedule over {args.epochs} epochs, device {args.device}"
    + (f"; {world} processes x {args.batch_size // world} images" if args.distributed else ""))

history = MetricHistory(out / "metrics" if rank == 0 else None)   # rank 0 writes the log
stopper = EarlyStopping(patience=args.patience, mode="max") if args.patience > 0 else None
start_epoch, best_val_acc, partial = 0, 0.0, None
if args.resume:
    try:
        meta = load_checkpoint(args.resume, net, optimizer, scheduler, loaders={"train": train_loader})
    except (FileNotFoundError, ValueError) as error:
        fail(error)
    partial = meta["extra"].get("interrupted_epoch")    # an epoch stopped between two batches, or None
    start_epoch, best_val_acc = meta["epoch"] + (1 if partial is None else 0), meta["best_metric"]
    history.rows = meta["extra"]["history"]
    history.truncate(start_epoch)
    if stopper is not None and meta["extra"].get("early_stopping"):
        stopper.load_state_dict(meta["extra"]["early_stopping"])
    where = "" if partial is None else f", batch {train_loader.state_dict()['position'] + 1}"
    say(f"resumed from {args.resume}: continuing at epoch {start_epoch + 1}{where}")
    planned = meta["extra"]["config"]["epochs"]
    if planned != args.epochs:
        say(f"note: the learning-rate schedule continues as saved, planned for {planned} epochs")
if args.distributed:
    model = nn.parallel.DistributedDataParallel(net)        # rank 0's weights to all; gradients averaged


def checkpoint_state(epoch, interrupted_epoch=None):
    extra = {"history": history.rows, "config": vars(args),
             "early_stopping": stopper.state_dict() if stopper is not None else None,
             "interrupted_epoch": interrupted_epoch}
    return dict(model=net, optimizer=optimizer, scheduler=scheduler, epoch=epoch,
                best_metric=best_val_acc, extra=extra, loaders={"train": train_loader})


# ---------------------------------------------------------------------------------------- 4. train
def validate():
    """Held-out loss and accuracy, each rank on its share, summed over the ranks."""
    return ranks.evaluate(net, val_loader)


def save(path, state):
    return ranks.save_checkpoint(path, **state)


epoch = start_epoch - 1
try:
    with stop_between_batches():               # Ctrl-C and `kill` stop between two batches, never inside one
        for epoch in range(start_epoch, args.epochs):
            model.train()                      # dropout on, batch norm on batch statistics
            lr = optimizer.param_groups[0]["lr"] if partial is None else partial["lr"]   # at the epoch's start
            if sampler is not None:
                sampler.set_epoch(epoch)       # a new shuffle of the shards each epoch, the same on all ranks
            bar = train_one_epoch(model, train_loader, optimizer, F.cross_entropy, scheduler=None,
                                  desc=f"epoch {epoch + 1}/{args.epochs}",
                                  progress=not args.no_progress and rank == 0, resume=partial)
            partial = None                 # the next epochs start at their first batch
            scheduler.step()

            val_loss, val_acc = validate()
            loss_sum, correct, count = reduced(bar.loss * bar.count, bar.accuracy * bar.count, bar.count)
            train_loss, train_acc = loss_sum / count, correct / count
            images_per_second = count / bar.elapsed if bar.elapsed else float("nan")
            history.log(epoch=epoch + 1, train_loss=train_loss, train_acc=train_acc, val_loss=val_loss,
                        val_acc=val_acc, lr=lr, seconds=round(bar.elapsed, 2),
                        images_per_second=round(images_per_second, 1))
            say(f"epoch {epoch + 1}/{args.epochs}: train loss {train_loss:.4f} acc {train_acc:.2%} | "
                f"val loss {val_loss:.4f} acc {val_acc:.2%} | {bar.elapsed:.1f} s, "
                f"{images_per_second:,.0f} img/s")
            improved = val_acc > best_val_acc
            best_val_acc = max(best_val_acc, val_acc)
            stop = stopper is not None and stopper.step(val_acc)
            save(out / "last.ckpt", checkpoint_state(epoch))
            if improved:
                save(out / "best.ckpt", checkpoint_state(epoch))
            if stop:
                say(f"early stopping: no val accuracy gain for {args.patience} epochs")
                break
            if args.stop_after is not None and epoch + 1 - start_epoch >= args.stop_after:
                say(f"stopping after {args.stop_after} epoch(s) as asked; --resume {out / 'last.ckpt'} continues")
                break
except TrainingInterrupted as interrupt:
    # Between two batches: the weights, the optimizer, the scheduler and the loader's position agree, so
    # --resume continues this epoch at its next batch, as if it had never stopped.
    path = save(out / "interrupted.ckpt", checkpoint_state(epoch, dict(interrupt.progress, lr=lr)))
    say(f"\ninterrupted: checkpoint saved to {path}; continue with --resume {path}", file=sys.stderr)
    sys.exit(130)
except KeyboardInterrupt:
    print(f"\nstopped at once (a second Ctrl-C), in the middle of a step: no checkpoint of this moment; "
          f"--resume {out / 'last.ckpt'} continues from the last finished epoch", file=sys.stderr)
    sys.exit(130)

# ---------------------------------------------------------------------------------------- 5. report
if not ranks.finish():                    # training is over; rank 0 alone evaluates and draws below
    sys.exit(0)
test_loss, test_acc, predicted, targets = evaluate(net, test_loader)
plot_training_curves(history, out / "curves.png", title="MNIST MLP")
plot_confusion_matrix(confusion_matrix(predicted, targets, 10), out / "confusion.png",
                      title=f"MNIST test set, accuracy {test_acc:.2%}")
images, labels = test_set.get_batch(numpy.arange(min(32, len(test_set))))
with minigrad.no_grad():
    net.eval()
    scores = net(minigrad.Tensor(transform(images), device=args.device)).numpy()
plot_sample_predictions(images, labels, scores, out / "samples.png")
last = history.rows[-1] if history.rows else {}
print(f"summary: mnist_mlp test_acc={test_acc:.4f} test_loss={test_loss:.4f} "
      f"best_val_acc={best_val_acc:.4f} train_loss={last.get('train_loss', float('nan')):.4f} "
      f"epochs={len(history)} | checkpoint {out / 'last.ckpt'} | log {history.csv_path} | "
      f"plots {out / 'curves.png'}, {out / 'confusion.png'}, {out / 'samples.png'}")
