"""Train a residual network on CIFAR-10, on the CPU or the GPU, with exact resume.

    python examples/cifar_resnet.py --device gpu --arch resnet20 --epochs 40
    python examples/cifar_resnet.py --device cpu --arch resnet20 --epochs 1 --limit-train 2000
    python examples/cifar_resnet.py --resume runs/cifar_resnet20/last.ckpt     # carry on exactly
    mpiexec -n 2 python examples/cifar_resnet.py --distributed                 # two processes, one model

Honest evaluation. The model trains on the FIRST 45,000 CIFAR-10 training
images; the LAST --val-size (5,000) are held out and never trained on. The
accuracy printed every epoch is that HELD-OUT VALIDATION accuracy, which
also picks the best checkpoint. It is not test accuracy: if the official
`test_batch` is in the data folder it is evaluated once, at the very end, and
reported separately as test accuracy.

Top to bottom:
 1. config (argparse) and the device check: --device gpu without CUDA/CuPy
    stops here with one message saying what is missing and how to install it;
 2. data: split, per-channel mean/std from the training images only,
    augmentation (random 32x32 crop of the image padded by 4, random flip);
 3. model, optimizer (sgd | adam | rmsprop), schedule (onecycle | cosine | multistep);
 4. epochs: train with a progress bar, validate, log, checkpoint every epoch;
 5. report: plots, optional test accuracy, one summary line.

Ctrl-C saves <out>/interrupted.ckpt and exits with code 130.

--distributed (under mpiexec -n N): data-parallel training, one process per rank
(minigrad.distributed, chapter 11). --batch-size stays the GLOBAL batch, split
evenly over the ranks, so the learning rate and schedule mean the same; each
rank reads its shard (DistributedSampler), batch norm is synchronised across
ranks (SyncBatchNorm) and DistributedDataParallel averages the gradients.
Metrics are reduced over the ranks; only rank 0 prints, shows progress, writes
logs, plots and checkpoints. A checkpoint holds the plain model (no DDP
wrapper), so it resumes with the same number of ranks or loads into one process.
"""
import argparse
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))  # so the script runs from a checkout without `pip install -e .`

import numpy  # noqa: E402

import minigrad  # noqa: E402
import minigrad.nn.functional as F  # noqa: E402
from minigrad import backend, models, nn, optim  # noqa: E402
from minigrad.data import (  # noqa: E402
    CIFAR10, Compose, DataLoader, DatasetFormatError, DatasetNotFoundError, DistributedSampler, DownloadError,
    Normalize, RandomCrop, RandomHorizontalFlip, Subset, ToFloat, default_data_dir, train_val_split,
)
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

ARCHITECTURES = {"resnet20": models.resnet20, "resnet32": models.resnet32,
                 "resnet56": models.resnet56, "resnet18": models.resnet18}
DEFAULT_LR = {"sgd": 0.1, "adam": 2e-3, "rmsprop": 1e-3}


def fail(message):
    """One clear message and exit code 2, no traceback (bad device, missing data)."""
    print(f"cifar_resnet.py: error: {message}", file=sys.stderr)
    sys.exit(2)


# ---------------------------------------------------------------------------------------- 1. config
parser = argparse.ArgumentParser(description="Train a ResNet on CIFAR-10 (held-out validation split).",
                                 formatter_class=HelpWithDefaults)
parser.add_argument("--device", default="cpu", choices=["cpu", "gpu"])
parser.add_argument("--arch", default="resnet20", choices=sorted(ARCHITECTURES))
parser.add_argument("--epochs", type=int, default=40)
parser.add_argument("--batch-size", type=int, default=128)
parser.add_argument("--optimizer", default="sgd", choices=["sgd", "adam", "rmsprop"])
parser.add_argument("--lr", type=float, default=None, help="peak lr; default sgd 0.1, adam 2e-3, rmsprop 1e-3")
parser.add_argument("--weight-decay", type=float, default=5e-4)
parser.add_argument("--schedule", default="onecycle", choices=["onecycle", "cosine", "multistep"])
parser.add_argument("--label-smoothing", type=float, default=0.1)
parser.add_argument("--data-dir", default=str(default_data_dir()), help="folder holding cifar-10-batches-py/ (default: %(default)s)")
parser.add_argument("--no-download", action="store_true",
                    help="fail if the data is missing instead of downloading it (checksummed) into --data-dir")
parser.add_argument("--out", default=None, help="default runs/cifar_<arch>")
parser.add_argument("--resume", default=None, help="checkpoint to continue from")
parser.add_argument("--limit-train", type=int, default=None, help="train on the first N images only (smoke tests)")
parser.add_argument("--val-size", type=int, default=5000, help="the last N training images, held out")
parser.add_argument("--stop-after", type=int, default=None,
                    help="train at most this many epochs in this run (to fit a time slot); --resume continues")
parser.add_argument("--patience", type=int, default=0, help="early stopping on val accuracy; 0 = off")
parser.add_argument("--seed", type=int, default=0)
parser.add_argument("--no-progress", action="store_true", help="no progress bars")
parser.add_argument("--distributed", action="store_true",
                    help="data-parallel over the processes of mpiexec -n N (--batch-size is the global batch)")
args = parser.parse_args()
args.lr = args.lr if args.lr is not None else DEFAULT_LR[args.optimizer]

try:
    ranks = Ranks(distributed=args.distributed, global_batch=args.batch_size)    # one process, or rank r of N
except (ImportError, ValueError) as error:
    fail(error)
rank, world, say, reduced = ranks.rank, ranks.world, ranks.say, ranks.summed

out = Path(args.out if args.out is not None else f"runs/cifar_{args.arch}")
try:
    backend.module_for(args.device)  # --device gpu without CuPy/CUDA stops here
except backend.DeviceError as error:
    fail(error)
out.mkdir(parents=True, exist_ok=True)
minigrad.manual_seed(args.seed)

# ---------------------------------------------------------------------------------------- 2. data
try:
    full_train = CIFAR10(args.data_dir, train=True, download=not args.no_download)
except (DatasetNotFoundError, DatasetFormatError, DownloadError) as error:
    fail(error)
train_set, val_set = train_val_split(full_train, args.val_size)   # val = the LAST val_size images
if args.limit_train is not None:
    train_set = Subset(full_train, numpy.arange(min(args.limit_train, len(train_set))))


def channel_statistics(images, chunk=5000):
    """Per-channel mean and std of uint8 images (N, 3, H, W) scaled to [0, 1], in chunks of images."""
    total = numpy.zeros(3)
    total_of_squares = numpy.zeros(3)
    for start in range(0, len(images), chunk):
        part = images[start:start + chunk].astype(numpy.float64) / 255.0            # (n, 3, H, W)
        total += part.sum(axis=(0, 2, 3))
        total_of_squares += (part ** 2).sum(axis=(0, 2, 3))
    count = len(images) * images.shape[2] * images.shape[3]
    mean = total / count
    return mean, numpy.sqrt(total_of_squares / count - mean ** 2)   # E[x^2] - E[x]^2, fine in float64


# Statistics from the training images only: the validation images stay unseen.
mean, std = channel_statistics(full_train.data[train_set.indices])
normalize = Normalize(mean=mean, std=std)
train_transform = Compose([RandomCrop(32, padding=4), RandomHorizontalFlip(), ToFloat(), normalize])
eval_transform = Compose([ToFloat(), normalize])
sampler = DistributedSampler(train_set, seed=args.seed) if args.distributed else None   # this rank's shard
train_loader = DataLoader(train_set, args.batch_size // world, shuffle=sampler is None, sampler=sampler,
                          seed=args.seed, transform=train_transform, device=args.device, prefetch=True)
val_share = Subset(val_set, numpy.arange(rank, len(val_set), world))         # every world-th image: disjoint shares
val_loader = DataLoader(val_share, 500, seed=0, transform=eval_transform, device=args.device)
say(f"data: {len(train_set)} training images, {len(val_set)} held-out validation images "
      f"(the last {len(val_set)} of the training set) from {args.data_dir}; "
      f"channel mean {numpy.round(mean, 4)}, std {numpy.round(std, 4)}")

# ---------------------------------------------------------------------------------------- 3. model
net = ARCHITECTURES[args.arch](num_classes=10).to(args.device)
if args.distributed:
    net = nn.SyncBatchNorm.convert_sync_batchnorm(net)      # batch statistics over the global batch
model = net                                                  # what trains; wrapped in DDP below
if args.optimizer == "sgd":
    optimizer = optim.SGD(model.parameters(), lr=args.lr, momentum=0.9, nesterov=True,
                          weight_decay=args.weight_decay)
elif args.optimizer == "adam":
    optimizer = optim.Adam(model.parameters(), lr=args.lr, weight_decay=args.weight_decay)
else:
    optimizer = optim.RMSprop(model.parameters(), lr=args.lr, weight_decay=args.weight_decay)

steps_per_epoch = len(train_loader)
if args.schedule == "onecycle":        # stepped every batch
    scheduler = optim.lr_scheduler.OneCycleLR(optimizer, max_lr=args.lr, epochs=args.epochs,
                                              steps_per_epoch=steps_per_epoch,
                                              cycle_momentum=args.optimizer != "rmsprop")
elif args.schedule == "cosine":        # stepped every epoch
    scheduler = optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=args.epochs)
else:                                  # x0.1 at 50% and 75% of the epochs
    milestones = sorted({max(1, args.epochs // 2), max(1, (3 * args.epochs) // 4)})
    scheduler = optim.lr_scheduler.MultiStepLR(optimizer, milestones=milestones, gamma=0.1)
step_every_batch = args.schedule == "onecycle"
say(f"model: {args.arch}, {model.num_parameters():,} parameters on {args.device}; {args.optimizer} "
      f"lr={args.lr} wd={args.weight_decay}, {args.schedule} schedule, {args.epochs} epochs, "
      f"label smoothing {args.label_smoothing}" + (f"; {world} processes x {args.batch_size // world} images"
                                                    if args.distributed else ""))

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
def training_loss(logits, labels):
    """Cross-entropy with label smoothing (validation uses the plain loss)."""
    return F.cross_entropy(logits, labels, label_smoothing=args.label_smoothing)


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
                sampler.set_epoch(epoch)           # a new shuffle of the shards each epoch, the same on all ranks
            bar = train_one_epoch(model, train_loader, optimizer, training_loss,
                                  scheduler=scheduler if step_every_batch else None, desc=f"epoch {epoch + 1}/{args.epochs}",
                                  progress=not args.no_progress and rank == 0, resume=partial)
            partial = None                 # the next epochs start at their first batch
            if not step_every_batch:
                scheduler.step()

            val_loss, val_acc = validate()
            loss_sum, correct, count = reduced(bar.loss * bar.count, bar.accuracy * bar.count, bar.count)
            train_loss, train_acc = loss_sum / count, correct / count
            images_per_second = count / bar.elapsed if bar.elapsed else float("nan")
            history.log(epoch=epoch + 1, train_loss=train_loss, train_acc=train_acc, val_loss=val_loss,
                        val_acc=val_acc, lr=lr, seconds=round(bar.elapsed, 2),
                        images_per_second=round(images_per_second, 1))
            say(f"epoch {epoch + 1}/{args.epochs}: train loss {train_loss:.4f} acc {train_acc:.2%} | "
                f"held-out val loss {val_loss:.4f} acc {val_acc:.2%} | {bar.elapsed:.1f} s, "
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
val_loss, val_acc, predicted, targets = evaluate(net, DataLoader(val_set, 500, transform=eval_transform,
                                                                 device=args.device))
names = full_train.classes
plot_training_curves(history, out / "curves.png", title=f"CIFAR-10 {args.arch}")
plot_confusion_matrix(confusion_matrix(predicted, targets, 10), out / "confusion.png", class_names=names,
                      title=f"held-out validation, accuracy {val_acc:.2%}")
sample_index = numpy.arange(min(32, len(val_set)))
images, labels = val_set.get_batch(sample_index)
plot_sample_predictions(images, labels, predicted[sample_index], out / "samples.png", class_names=names)

test_text = "test_acc=n/a (no test_batch in the data dir)"
try:
    test_set = CIFAR10(args.data_dir, train=False)
except DatasetNotFoundError:
    test_set = None
if test_set is not None:
    test_loader = DataLoader(test_set, 500, seed=0, transform=eval_transform, device=args.device)
    test_loss, test_acc, _, _ = evaluate(net, test_loader)
    test_text = f"test_acc={test_acc:.4f} (official test_batch, {len(test_set)} images)"
last = history.rows[-1] if history.rows else {}
print(f"summary: cifar_resnet {args.arch} val_acc={val_acc:.4f} (held-out validation, last "
      f"{len(val_set)} training images) best_val_acc={best_val_acc:.4f} {test_text} "
      f"train_loss={last.get('train_loss', float('nan')):.4f} epochs={len(history)} | "
      f"checkpoint {out / 'last.ckpt'} | log {history.csv_path} | "
      f"plots {out / 'curves.png'}, {out / 'confusion.png'}, {out / 'samples.png'}")
