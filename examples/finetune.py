"""Fine-tuning: reuse a network trained on one task to learn another from few labels.

    python examples/finetune.py --arch resnet20 --pretrain-epochs 10 --shots 100 --epochs 30
    python examples/finetune.py --pretrained runs/finetune_resnet20/pretrained.ckpt --shots 20
    python examples/finetune.py --arch torchvision_resnet18 --pretrained resnet18-f37072fd.pth --upscale 4

The two tasks, both cut from CIFAR-10:

    source task   classes 0-4 (airplane, automobile, bird, cat, deer), every training image:
                  the backbone is PRE-TRAINED here (or loaded with --pretrained);
    target task   classes 5-9 (dog, frog, horse, ship, truck), only --shots labelled images
                  per class: this is where the three ways below compete.

Honest evaluation: the LAST --val-size (5,000) training images are held out
from everything; the target accuracy printed is on the held-out images of
classes 5-9 (about 2,500), never trained on. The official test_batch is not used.

The three ways to learn the target task, each with the same epochs, batches and head init:

    (a) scratch        a fresh network, every weight trained on the few target images;
    (b) linear_probe   the pre-trained backbone FROZEN (requires_grad=False, and BN in
                       eval mode so its running statistics stay those of pre-training);
                       only a new 5-way head `fc` is trained: a linear classifier on
                       features learned from the source task;
    (c) finetune       the pre-trained backbone AND the new head are trained, the backbone
                       with a smaller learning rate (lr * --backbone-lr-factor) through
                       the optimizer's parameter groups, so the features move a little
                       while the random head learns quickly.

Why it works: early layers learn edges, colours and textures that both tasks
share. With 500 images, training from scratch must learn them from too few
examples and overfits; the pre-trained backbone brings them for free.

Top to bottom:
 1. config (argparse) and the device check (--device gpu without CUDA: one line, exit 2);
 2. data: the source / target / held-out splits, normalisation, augmentation;
 3. the backbone: load --pretrained, or reuse <out>/pretrained.ckpt, or pre-train now;
 4. the three ways, one after the other, evaluated on the held-out target images every epoch;
 5. report: table, results.json/csv, per-epoch curves.csv, plot finetune.png, summary line.
"""
import argparse
import json
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))  # so the script runs from a checkout without `pip install -e .`

import numpy  # noqa: E402

import minigrad  # noqa: E402
import minigrad.nn.functional as F  # noqa: E402
from minigrad import backend, models, optim  # noqa: E402
from minigrad.data import (  # noqa: E402
    CIFAR10, Compose, DataLoader, DatasetFormatError, DatasetNotFoundError, DownloadError, Normalize, RandomCrop,
    RandomHorizontalFlip, TensorDataset, ToFloat, Transform, default_data_dir, train_val_split,
)
from minigrad.utils.cli import HelpWithDefaults  # noqa: E402
from minigrad.utils.checkpoint import CheckpointError, read_checkpoint, save_checkpoint  # noqa: E402
from minigrad.utils.history import MetricHistory, write_text_atomically  # noqa: E402
from minigrad.utils.plots import plot_training_curves  # noqa: E402
from minigrad.utils.training import evaluate, train_one_epoch  # noqa: E402
from minigrad.utils.torch_import import load_torch_state_dict  # noqa: E402

ARCHITECTURES = {"resnet20": models.resnet20, "resnet18": models.resnet18,
                 "torchvision_resnet18": models.torchvision_resnet18}
SOURCE_CLASSES = (0, 1, 2, 3, 4)
TARGET_CLASSES = (5, 6, 7, 8, 9)
METHODS = ("scratch", "linear_probe", "finetune")
IMAGENET_MEAN, IMAGENET_STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)   # torchvision's weights


def fail(message):
    """One clear message and exit code 2, no traceback (bad device, missing data or weights)."""
    print(f"finetune.py: error: {message}", file=sys.stderr)
    sys.exit(2)


# ---------------------------------------------------------------------------------------- 1. config
parser = argparse.ArgumentParser(description="Pre-train on CIFAR-10 classes 0-4, transfer to 5-9 with few labels.",
                                 formatter_class=HelpWithDefaults)
parser.add_argument("--device", default="cpu", choices=["cpu", "gpu"])
parser.add_argument("--arch", default="resnet20", choices=sorted(ARCHITECTURES))
parser.add_argument("--data-dir", default=str(default_data_dir()), help="folder holding cifar-10-batches-py/ (default: %(default)s)")
parser.add_argument("--no-download", action="store_true",
                    help="fail if the data is missing instead of downloading it (checksummed) into --data-dir")
parser.add_argument("--out", default=None, help="default runs/finetune_<arch>")
parser.add_argument("--pretrained", default=None,
                    help="backbone weights: a .ckpt written by this script, or a state_dict as .npz/.pt/.pth "
                         "(default: reuse <out>/pretrained.ckpt if present, else pre-train now)")
parser.add_argument("--pretrain-epochs", type=int, default=10)
parser.add_argument("--pretrain-lr", type=float, default=0.1, help="peak lr of the one-cycle schedule")
parser.add_argument("--pretrain-batch-size", type=int, default=128)
parser.add_argument("--shots", type=int, default=100, help="labelled training images per target class")
parser.add_argument("--epochs", type=int, default=30, help="epochs of each of the three ways")
parser.add_argument("--batch-size", type=int, default=64)
parser.add_argument("--lr", type=float, default=0.05, help="lr of the head, and of every weight when from scratch")
parser.add_argument("--backbone-lr-factor", type=float, default=0.1, help="finetune: backbone lr = lr * this")
parser.add_argument("--weight-decay", type=float, default=5e-4)
parser.add_argument("--upscale", type=int, default=1,
                    help="enlarge images k times (nearest neighbour); ImageNet weights want bigger images")
parser.add_argument("--val-size", type=int, default=5000, help="the last N training images, held out")
parser.add_argument("--limit-pretrain", type=int, default=None, help="pre-train on the first N source images (smoke tests)")
parser.add_argument("--limit-val", type=int, default=None, help="evaluate on the first N held-out images of each task")
parser.add_argument("--seed", type=int, default=0)
parser.add_argument("--no-progress", action="store_true", help="no progress bars")
args = parser.parse_args()

out = Path(args.out if args.out is not None else f"runs/finetune_{args.arch}")
try:
    backend.module_for(args.device)  # --device gpu without CuPy/CUDA stops here
except backend.DeviceError as error:
    fail(error)
if args.pretrained is not None and not Path(args.pretrained).is_file():
    fail(f"--pretrained {args.pretrained}: no such file")
if args.shots < 1 or args.epochs < 1 or args.upscale < 1:
    fail(f"--shots, --epochs and --upscale must be >= 1, got {args.shots}, {args.epochs}, {args.upscale}")
out.mkdir(parents=True, exist_ok=True)
minigrad.manual_seed(args.seed)
started = time.perf_counter()

# ---------------------------------------------------------------------------------------- 2. data
try:
    full_train = CIFAR10(args.data_dir, train=True, download=not args.no_download)
except (DatasetNotFoundError, DatasetFormatError, DownloadError) as error:
    fail(error)
train_part, held_out = train_val_split(full_train, args.val_size)    # held out = the LAST val_size images
labels = full_train.targets


def indices_of(indices, classes):
    """The entries of `indices` whose image belongs to one of `classes`, in order."""
    return indices[numpy.isin(labels[indices], classes)]


def task_dataset(indices, classes):
    """The images at `indices`, labels renumbered 0..len(classes)-1 (class 5 -> 0, ..., 9 -> 4)."""
    renumber = numpy.full(10, -1, dtype=numpy.int64)
    renumber[list(classes)] = numpy.arange(len(classes))
    return TensorDataset(full_train.data[indices], renumber[labels[indices]])       # (n, 3, 32, 32), (n,)


source_train = indices_of(train_part.indices, SOURCE_CLASSES)[:args.limit_pretrain]
source_val = indices_of(held_out.indices, SOURCE_CLASSES)[:args.limit_val]
target_val = indices_of(held_out.indices, TARGET_CLASSES)[:args.limit_val]
# The few labelled target images: `shots` drawn at random from each class (fewer if a class has fewer).
shot_rng = numpy.random.default_rng(args.seed)
target_train = numpy.sort(numpy.concatenate([
    shot_rng.choice(pool, size=min(args.shots, len(pool)), replace=False)
    for pool in (indices_of(train_part.indices, [c]) for c in TARGET_CLASSES)
]))
if min(len(source_train), len(target_train), len(target_val)) == 0:
    fail(f"a split is empty (source train {len(source_train)}, target train {len(target_train)}, "
         f"target held-out {len(target_val)} images): is --val-size or a --limit too small?")
names = full_train.classes or [str(c) for c in range(10)]
print(f"data from {args.data_dir}: source task {[names[c] for c in SOURCE_CLASSES]}: {len(source_train)} training, "
      f"{len(source_val)} held-out images; target task {[names[c] for c in TARGET_CLASSES]}: "
      f"{len(target_train)} training images ({args.shots} per class asked), {len(target_val)} held-out images "
      f"(held out = the last {len(held_out)} training images)")


class Upscale(Transform):
    """Nearest-neighbour enlargement by an integer factor k: (N, C, H, W) -> (N, C, k H, k W)."""

    def __init__(self, factor):
        self.factor = factor

    def batch(self, x, rng=None):
        if self.factor == 1:
            return x
        return x.repeat(self.factor, axis=2).repeat(self.factor, axis=3)      # (N, C, kH, kW)


def channel_statistics(images, chunk=5000):
    """Per-channel mean and std of uint8 images (N, 3, H, W) scaled to [0, 1], in chunks of images."""
    total, total_of_squares = numpy.zeros(3), numpy.zeros(3)
    for start in range(0, len(images), chunk):
        part = images[start:start + chunk].astype(numpy.float64) / 255.0            # (n, 3, H, W)
        total += part.sum(axis=(0, 2, 3))
        total_of_squares += (part ** 2).sum(axis=(0, 2, 3))
    count = len(images) * images.shape[2] * images.shape[3]
    mean = total / count
    return mean, numpy.sqrt(total_of_squares / count - mean ** 2)


def loaders(train_indices, val_indices, classes, batch_size, mean, std):
    """(shuffled, augmented training loader; plain held-out loader) for one task."""
    normalize = Normalize(mean=mean, std=std)
    train_transform = Compose([RandomCrop(32, padding=4), RandomHorizontalFlip(), ToFloat(), normalize,
                               Upscale(args.upscale)])
    eval_transform = Compose([ToFloat(), normalize, Upscale(args.upscale)])
    train_loader = DataLoader(task_dataset(train_indices, classes), batch_size, shuffle=True, seed=args.seed,
                              transform=train_transform, device=args.device, prefetch=True)
    val_loader = DataLoader(task_dataset(val_indices, classes), 250, transform=eval_transform, device=args.device)
    return train_loader, val_loader


# ---------------------------------------------------------------------------------------- 3. backbone
pretrained_path = Path(args.pretrained) if args.pretrained is not None else out / "pretrained.ckpt"
pretrain_info = {"source": str(pretrained_path)}
mean = std = None
if pretrained_path.is_file() and pretrained_path.suffix == ".ckpt":
    try:
        payload = read_checkpoint(pretrained_path)
    except CheckpointError as error:
        fail(error)
    extra = payload["extra"]
    if extra.get("arch", args.arch) != args.arch:
        fail(f"{pretrained_path} holds a {extra['arch']} backbone but --arch is {args.arch}")
    backbone_state = payload["model"]
    mean, std = extra.get("mean"), extra.get("std")       # the input normalisation it was trained with
    pretrain_info.update(reused=True, source_val_acc=payload["best_metric"], seconds=extra.get("seconds"))
    print(f"backbone: reusing {pretrained_path} ({args.arch}, source-task held-out accuracy "
          f"{payload['best_metric']:.2%})")
elif pretrained_path.is_file():
    try:
        backbone_state = load_torch_state_dict(pretrained_path)         # .npz, or .pt/.pth with torch
    except (ImportError, ValueError, TypeError) as error:
        fail(error)
    if args.arch == "torchvision_resnet18":
        mean, std = IMAGENET_MEAN, IMAGENET_STD     # what torchvision's ImageNet weights were trained on
    pretrain_info.update(reused=True, source_val_acc=None)
    print(f"backbone: {args.arch} weights from {pretrained_path} ({len(backbone_state)} tensors)")
else:
    backbone_state = None
if mean is None:   # statistics of the source training images only: no held-out image is looked at
    mean, std = channel_statistics(full_train.data[source_train])
mean, std = numpy.asarray(mean, dtype=numpy.float64), numpy.asarray(std, dtype=numpy.float64)

if backbone_state is None:
    # Pre-train on the source task: SGD with Nesterov momentum and a one-cycle schedule.
    pre_train_loader, pre_val_loader = loaders(source_train, source_val, SOURCE_CLASSES,
                                               args.pretrain_batch_size, mean, std)
    model = ARCHITECTURES[args.arch](num_classes=len(SOURCE_CLASSES)).to(args.device)
    optimizer = optim.SGD(model.parameters(), lr=args.pretrain_lr, momentum=0.9, nesterov=True,
                          weight_decay=args.weight_decay)
    scheduler = optim.lr_scheduler.OneCycleLR(optimizer, max_lr=args.pretrain_lr, epochs=args.pretrain_epochs,
                                              steps_per_epoch=len(pre_train_loader))
    print(f"pre-training {args.arch} ({model.num_parameters():,} parameters) on the source task for "
          f"{args.pretrain_epochs} epochs on {args.device}")
    pretrain_start, source_val_acc = time.perf_counter(), float("nan")
    for epoch in range(args.pretrain_epochs):
        model.train()
        bar = train_one_epoch(model, pre_train_loader, optimizer, F.cross_entropy,
                              desc=f"pretrain {epoch + 1}/{args.pretrain_epochs}", progress=not args.no_progress,
                              scheduler=scheduler)
        source_val_acc = evaluate(model, pre_val_loader).accuracy if len(source_val) else float("nan")
        print(f"pretrain epoch {epoch + 1}/{args.pretrain_epochs}: train loss {bar.loss:.4f} acc "
              f"{bar.accuracy:.2%} | source held-out acc {source_val_acc:.2%} | {bar.elapsed:.1f} s")
    pretrain_seconds = time.perf_counter() - pretrain_start
    save_checkpoint(pretrained_path, model, epoch=args.pretrain_epochs - 1, best_metric=source_val_acc,
                    extra={"arch": args.arch, "mean": mean, "std": std, "source_classes": list(SOURCE_CLASSES),
                           "seconds": round(pretrain_seconds, 1), "config": vars(args)})
    backbone_state = model.state_dict()
    pretrain_info.update(reused=False, source_val_acc=source_val_acc, seconds=round(pretrain_seconds, 1))
    print(f"backbone saved to {pretrained_path} ({pretrain_seconds:.0f} s); later runs reuse it")
# The source task's head is of no use for the target task: keep everything but `fc`.
backbone_state = {name: value for name, value in backbone_state.items() if not name.startswith("fc.")}

# ---------------------------------------------------------------------------------------- 4. three ways
train_loader, val_loader = loaders(target_train, target_val, TARGET_CLASSES, args.batch_size, mean, std)
first_batches = train_loader.state_dict()
history = MetricHistory(out / "curves")
results = {}
for method in METHODS:
    minigrad.manual_seed(args.seed)              # the same head initialisation for all three,
    train_loader.load_state_dict(first_batches)  # and the same batches and augmentations
    model = ARCHITECTURES[args.arch](num_classes=len(TARGET_CLASSES)).to(args.device)
    if method != "scratch":
        # Every weight but the new, randomly initialised 5-way head `fc` comes from the backbone.
        try:
            missing, unexpected = model.load_state_dict(backbone_state, strict=False)
        except RuntimeError as error:      # shapes differ: weights of another architecture
            fail(f"the backbone weights do not fit {args.arch}: {error}")
        if sorted(missing) != ["fc.bias", "fc.weight"] or unexpected:
            fail(f"the backbone weights do not fit {args.arch}: missing {missing}, unexpected {unexpected}")
    head = list(model.fc.parameters())
    backbone = [p for name, p in model.named_parameters() if not name.startswith("fc.")]

    if method == "linear_probe":
        for p in backbone:
            p.requires_grad = False          # no gradient, no update, and no graph through the backbone
        groups = [{"params": head, "lr": args.lr}]
    elif method == "finetune":
        groups = [{"params": backbone, "lr": args.lr * args.backbone_lr_factor},     # move the features gently
                  {"params": head, "lr": args.lr}]                                   # learn the head quickly
    else:
        groups = [{"params": backbone + head, "lr": args.lr}]
    optimizer = optim.SGD(groups, lr=args.lr, momentum=0.9, nesterov=True, weight_decay=args.weight_decay)
    scheduler = optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=args.epochs)   # stepped every epoch
    trainable = sum(p.numel() for group in groups for p in group["params"])
    rates = ", ".join(f"{group['lr']:g}" for group in groups)
    print(f"\n{method}: {trainable:,} of {model.num_parameters():,} parameters trained, lr {rates}, "
          f"{args.epochs} epochs")

    method_start, accuracies = time.perf_counter(), []
    for epoch in range(args.epochs):
        # linear probe: BN layers of the frozen backbone stay in eval mode (their running statistics
        # are part of the pre-trained features); the other two train BN normally.
        model.train(method != "linear_probe")
        bar = train_one_epoch(model, train_loader, optimizer, F.cross_entropy,
                              desc=f"{method} {epoch + 1}/{args.epochs}", progress=not args.no_progress)
        scheduler.step()
        val_loss, val_acc, _, _ = evaluate(model, val_loader)
        accuracies.append(val_acc)
        history.log(method=method, epoch=epoch + 1, train_loss=bar.loss, train_acc=bar.accuracy,
                    val_loss=val_loss, val_acc=val_acc, seconds=round(bar.elapsed, 2))
        print(f"{method} epoch {epoch + 1}/{args.epochs}: train loss {bar.loss:.4f} acc {bar.accuracy:.2%} | "
              f"target held-out loss {val_loss:.4f} acc {val_acc:.2%} | {bar.elapsed:.1f} s")
    results[method] = {"final_val_acc": accuracies[-1], "best_val_acc": max(accuracies),
                       "trainable_parameters": trainable, "seconds": round(time.perf_counter() - method_start, 1)}

# ---------------------------------------------------------------------------------------- 5. report
LABELS = {"scratch": "(a) from scratch", "linear_probe": "(b) linear probe (frozen)",
          "finetune": "(c) full fine-tune"}
table = [f"{'method':<28}{'trained params':>15}{'final acc':>11}{'best acc':>10}{'seconds':>9}"]
for method, r in results.items():
    table.append(f"{LABELS[method]:<28}{r['trainable_parameters']:>15,}{r['final_val_acc']:>11.2%}"
                 f"{r['best_val_acc']:>10.2%}{r['seconds']:>9.1f}")
print(f"\nheld-out accuracy on target classes 5-9 ({len(target_val)} images), {args.arch}, "
      f"{args.shots} shots per class, {args.epochs} epochs:")
print("\n".join(table))

results_json = out / "results.json"
write_text_atomically(results_json, json.dumps({
    "config": vars(args), "pretrain": pretrain_info, "methods": results,
    "target_train_images": int(len(target_train)), "target_val_images": int(len(target_val)),
    "total_seconds": round(time.perf_counter() - started, 1)}, indent=1, default=float) + "\n")
results_csv = out / "results.csv"
write_text_atomically(results_csv, "method,trainable_parameters,final_val_acc,best_val_acc,seconds\n" + "".join(
    f"{m},{r['trainable_parameters']},{r['final_val_acc']:.4f},{r['best_val_acc']:.4f},{r['seconds']}\n"
    for m, r in results.items()))

# One line per way: training loss (left) and held-out target accuracy (right) per epoch.
curves = {"epoch": list(range(1, args.epochs + 1))}
for row in history.rows:
    curves.setdefault(f"{row['method']} train_loss", []).append(row["train_loss"])
    curves.setdefault(f"{row['method']} val_acc", []).append(row["val_acc"])
plot_path = plot_training_curves(curves, out / "finetune.png",
                                 title=f"{args.arch}: CIFAR-10 classes 5-9, {args.shots} shots/class",
                                 pairs=(tuple(f"{m} train_loss" for m in METHODS),
                                        tuple(f"{m} val_acc" for m in METHODS)))
print(f"summary: finetune {args.arch} shots={args.shots} epochs={args.epochs} "
      + " ".join(f"{m}={r['final_val_acc']:.4f}" for m, r in results.items())
      + f" (final held-out accuracy, classes 5-9, {len(target_val)} images) | total "
      f"{time.perf_counter() - started:.0f} s | results {results_json}, {results_csv} | curves "
      f"{history.csv_path} | plot {plot_path} | backbone {pretrained_path}")
