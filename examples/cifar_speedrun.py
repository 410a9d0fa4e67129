"""Train CIFAR-10 fast: the airbench94 recipe, written out top to bottom with minigrad.

    python examples/cifar_speedrun.py                                    # 10 epochs, held-out val accuracy
    python examples/cifar_speedrun.py --device gpu --val-size 0          # all 50,000; test accuracy
    python examples/cifar_speedrun.py --epochs 1 --limit-train 2000      # a smoke test
    python examples/cifar_speedrun.py --resume runs/cifar_speedrun/last.ckpt   # carry on after a stop
    python examples/cifar_speedrun.py --filter-optimizer sgd             # an ablation: one trick off

docs/12_a_speed_record.md explains every trick below and gives the measured accuracy and time.

The recipe is Keller Jordan's airbench ("94% on CIFAR-10 in 3.29 seconds on a single GPU",
arXiv:2404.00498, github.com/KellerJordan/cifar10-airbench, and its airbench94_muon.py); the code
here is minigrad's own. What makes it fast:
  - the network (minigrad.models.AirbenchNet): a frozen 2x2 patch-whitening conv set from the data,
    three small conv groups, batch norm with only the shift learned;
  - Muon for the conv filters (each step the nearest orthogonal matrix to the momentum), the filters
    renormalised to a fixed norm before each step, and Nesterov SGD for the rest (biases, head);
  - label smoothing 0.2 and a learning rate that falls linearly to 0 over the run;
  - the whitening bias trained for the first --whiten-bias-epochs only (its lr falls to 0 by then);
  - augmentation: translation by up to 2 pixels, and the "alternating flip" (below);
  - the loss summed over the batch, not averaged: the SGD learning rates assume it;
  - test-time augmentation: the logits of six views (the image, its mirror, both shifted by a pixel
    each diagonal way) are averaged; the accuracy is reported at each level of it.

Honest evaluation: by default the model trains on the FIRST 45,000 training images and the accuracy
reported is on the LAST --val-size (5,000), never trained on, as in cifar_resnet.py. --val-size 0 trains
on all 50,000 and evaluates on the official test_batch (if the data folder has it).

Timing: train_seconds counts the epochs only (augmentation, forward, backward, steps; the per-epoch
evaluation is excluded, as in airbench); setup_seconds is the one-off rest (reading the data, the
whitening init, one warm-up step that compiles the kernels, then undone).

Checkpoints: after every epoch, OUT/last.ckpt holds the model, both optimizers' states, the data
generator, the step and the seconds so far; --resume OUT/last.ckpt continues exactly where it
stopped (the same weights as an uninterrupted run), refusing a checkpoint made with other settings.
"""
import argparse
import json
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))  # so the script runs from a checkout without `pip install -e .`

import numpy  # noqa: E402
from numpy.lib.stride_tricks import sliding_window_view  # noqa: E402

import minigrad  # noqa: E402
import minigrad.nn.functional as F  # noqa: E402
from minigrad import backend, optim  # noqa: E402
from minigrad.data import (  # noqa: E402
    CIFAR10, DatasetFormatError, DatasetNotFoundError, DownloadError, default_data_dir,
)
from minigrad.models.airbench import AirbenchNet  # noqa: E402
from minigrad.utils.checkpoint import CheckpointError, load_checkpoint, save_checkpoint  # noqa: E402
from minigrad.utils.cli import HelpWithDefaults  # noqa: E402
from minigrad.utils.history import MetricHistory  # noqa: E402
from minigrad.utils.progress import progress_bar  # noqa: E402


def fail(message):
    """One clear message and exit code 2, no traceback (bad device, missing data)."""
    print(f"cifar_speedrun.py: error: {message}", file=sys.stderr)
    sys.exit(2)


# ---------------------------------------------------------------------------------------- 1. config
# Defaults: airbench94_muon.py's published values (batch 2000; Muon lr 0.24 momentum 0.6; SGD bias lr
# 0.053, head lr 0.67, momentum 0.85, weight decay 2e-6 per image of the batch). Those SGD rates were
# tuned for a loss SUMMED over the batch (not averaged) and a head of std-1 weights whose output is
# divided by its width, 256; both conventions are kept here, as the rates mean nothing without them.
# Epochs: 10, not airbench's 8, as this trains on 45,000 images, not 50,000 (the rest are held out).
parser = argparse.ArgumentParser(description="CIFAR-10 speedrun (airbench94 recipe), held-out evaluation.",
                                 formatter_class=HelpWithDefaults)
parser.add_argument("--device", default="cpu", choices=["cpu", "gpu"])
parser.add_argument("--epochs", type=int, default=10)
parser.add_argument("--batch-size", type=int, default=2000)
parser.add_argument("--lr", type=float, default=0.053, help="SGD lr of the biases (batch-norm shifts, whitening bias)")
parser.add_argument("--head-lr", type=float, default=0.67, help="SGD lr of the linear head")
parser.add_argument("--muon-lr", type=float, default=0.24, help="Muon lr of the conv filters")
parser.add_argument("--momentum", type=float, default=0.85, help="SGD (Nesterov) momentum")
parser.add_argument("--muon-momentum", type=float, default=0.6)
parser.add_argument("--weight-decay", type=float, default=2e-6,
                    help="per image: each SGD group gets weight_decay = this * batch_size / its lr, as in airbench")
parser.add_argument("--label-smoothing", type=float, default=0.2)
parser.add_argument("--whiten-bias-epochs", type=float, default=3, help="train the whitening bias this long")
parser.add_argument("--tta", type=int, default=2, choices=[0, 1, 2],
                    help="test-time augmentation: 0 none, 1 image and mirror, 2 also both one-pixel translations")
# Ablations: each switch turns one trick off (docs/12 gives each one's measured effect); the defaults are the recipe.
parser.add_argument("--whitening", default="data", choices=["data", "none"],
                    help="none: the first layer is an ordinary 2x2 conv, default init, trained (and renormalised) "
                         "with the other filters")
parser.add_argument("--no-dirac", action="store_true", help="the 3x3 convs keep the default init instead of the identity start")
parser.add_argument("--filter-optimizer", default="muon", choices=["muon", "sgd"],
                    help="sgd: Nesterov SGD for the conv filters at --filter-lr, not renormalised, as airbench94 before Muon")
parser.add_argument("--filter-lr", type=float, default=11.5 / (1024 * (1 + 1 / (1 - 0.85))),
                    help="SGD lr of the conv filters with --filter-optimizer sgd (airbench94's 11.5 / its kilostep scale)")
parser.add_argument("--flip", default="alternate", choices=["alternate", "random"],
                    help="random: mirror each image with probability 1/2 afresh every epoch")
parser.add_argument("--data-dir", default=str(default_data_dir()), help="folder holding cifar-10-batches-py/")
parser.add_argument("--no-download", action="store_true", help="fail if the data is missing instead of downloading it")
parser.add_argument("--val-size", type=int, default=5000,
                    help="the last N training images, held out; 0: train on all, evaluate on test_batch")
parser.add_argument("--limit-train", type=int, default=None, help="train on the first N images only (smoke tests)")
parser.add_argument("--out", default="runs/cifar_speedrun")
parser.add_argument("--seed", type=int, default=0)
parser.add_argument("--no-progress", action="store_true", help="no progress bars")
parser.add_argument("--resume", default=None, help="continue from this checkpoint (OUT/last.ckpt of an earlier run)")
parser.add_argument("--stop-after", type=int, default=None,
                    help="train at most this many epochs in this run (to fit a time slot); --resume continues")
args = parser.parse_args()
if args.epochs < 1 or args.batch_size < 1:
    fail(f"--epochs and --batch-size must be at least 1, got {args.epochs} and {args.batch_size}")
if args.stop_after is not None and args.stop_after < 1:
    fail(f"--stop-after must be at least 1 (epochs to train in this run), got {args.stop_after}")
try:
    backend.module_for(args.device)  # --device gpu without CuPy/CUDA stops here
except backend.DeviceError as error:
    fail(error)
out = Path(args.out)
out.mkdir(parents=True, exist_ok=True)
minigrad.manual_seed(args.seed)                      # the model's initial weights
rng = numpy.random.default_rng(args.seed)            # shuffling and translations
setup_start = time.perf_counter()

# ---------------------------------------------------------------------------------------- 2. data
try:
    full_train = CIFAR10(args.data_dir, train=True, download=not args.no_download)
    if not 0 <= args.val_size < len(full_train):
        fail(f"--val-size must lie in [0, {len(full_train)}), got {args.val_size}")
    if args.val_size > 0:                            # held out: the LAST val_size training images
        cut = len(full_train) - args.val_size
        eval_images, eval_labels = full_train.data[cut:], full_train.targets[cut:]
        eval_name = f"held-out validation, last {args.val_size} training images"
    else:
        test = CIFAR10(args.data_dir, train=False)
        cut, eval_images, eval_labels = len(full_train), test.data, test.targets
        eval_name = f"official test_batch, {len(test)} images; trained on all {cut}"
except DatasetNotFoundError as error:
    hint = "\n(--val-size 0 evaluates on test_batch, so the folder needs it)" if args.val_size == 0 else ""
    fail(f"{error}{hint}")
except (DatasetFormatError, DownloadError) as error:
    fail(error)
n_train = cut if args.limit_train is None else min(args.limit_train, cut)
train_images, train_labels = full_train.data[:n_train], full_train.targets[:n_train]   # uint8 (N, 3, 32, 32)

# Channel mean and std of the training images only, in [0, 1] units (float64 sums, chunk by chunk).
sums, squares = numpy.zeros(3), numpy.zeros(3)
for start in range(0, n_train, 5000):
    part = train_images[start:start + 5000].astype(numpy.float64) / 255.0
    sums, squares = sums + part.sum(axis=(0, 2, 3)), squares + (part ** 2).sum(axis=(0, 2, 3))
mean = sums / (n_train * 32 * 32)
std = numpy.sqrt(squares / (n_train * 32 * 32) - mean ** 2)


def normalise(images):
    """uint8 (N, 3, H, W) -> float32, each channel at mean 0 and std 1 over the training images."""
    scale = (1 / (255.0 * std)).astype(numpy.float32)[:, None, None]
    return images.astype(numpy.float32) * scale - (mean / std).astype(numpy.float32)[:, None, None]


def translate(images, dy, dx, pad=2):
    """Shift image n down by dy[n] and right by dx[n] pixels (|d| <= pad), filling from a mirror image.

    Reflect-pad by `pad`, then cut the H x W window at (pad - dy, pad - dx): out[y, x] = in[y - dy, x - dx]
    wherever that pixel exists. airbench pads by reflection too: no black borders the test set never has."""
    n, _, h, w = images.shape
    padded = numpy.pad(images, ((0, 0), (0, 0), (pad, pad), (pad, pad)), mode="reflect")
    windows = sliding_window_view(padded, (h, w), axis=(2, 3))             # (N, C, 2pad+1, 2pad+1, H, W), no copy
    return numpy.ascontiguousarray(windows[numpy.arange(n), :, pad - dy, pad - dx])   # (N, C, H, W)


def alternating_flips(base_flip, epoch):
    """Which images to mirror in `epoch`: the random base_flip bits in even epochs, their opposite in odd.

    airbench's "alternating flip": a random flip each epoch shows some images the same way twice in a
    row; flipping on alternate epochs instead shows every image both ways in every two epochs."""
    return base_flip ^ bool(epoch % 2)


def flip(images, mask):
    """Mirror (left-right) the images where mask is True."""
    return numpy.where(mask[:, None, None, None], images[..., ::-1], images)


base_flip = numpy.random.default_rng([args.seed, 1]).random(n_train) < 0.5     # one bit per training image
steps_per_epoch = max(1, n_train // args.batch_size)    # the last partial batch is dropped, as in airbench
total_steps = args.epochs * steps_per_epoch
whiten_bias_steps = max(1, int(args.whiten_bias_epochs * steps_per_epoch))
print(f"data: {n_train} training images, {len(eval_labels)} evaluation images ({eval_name}) from {args.data_dir}")

# ---------------------------------------------------------------------------------------- 3. model, optimizers
model = AirbenchNet(head_scale=1 / 256, head_weight_std=1.0, dirac=not args.no_dirac)     # airbench94_muon's head
if args.whitening == "data":
    model.init_whitening(normalise(train_images[:: max(1, n_train // 5000)]))   # about 5,000 images, spread evenly
else:                                                    # ablation: a learned first layer like any other
    model.whiten.weight.requires_grad_(True)
model = model.to(args.device)
head, whiten_bias = model.head.weight, model.whitening_bias
biases = [p for p in model.other_parameters() if p is not head and p is not whiten_bias]
decay = args.weight_decay * args.batch_size              # airbench: weight_decay = decay / lr, per group
sgd = optim.SGD([dict(params=[whiten_bias], lr=args.lr, weight_decay=decay / args.lr),
                 dict(params=biases, lr=args.lr, weight_decay=decay / args.lr),
                 dict(params=[head], lr=args.head_lr, weight_decay=decay / args.head_lr)],
                lr=args.lr, momentum=args.momentum, nesterov=True)
if args.filter_optimizer == "muon":
    filter_optimizer = optim.Muon(model.muon_parameters(), lr=args.muon_lr, momentum=args.muon_momentum, nesterov=True,
                                  weight_decay=0)
else:                                                    # ablation: airbench94's SGD for the filters
    filter_optimizer = optim.SGD(model.muon_parameters(), lr=args.filter_lr, momentum=args.momentum, nesterov=True,
                                 weight_decay=decay / args.filter_lr)
for group in sgd.param_groups + filter_optimizer.param_groups:
    group["initial_lr"] = group["lr"]


def set_learning_rates(step):
    """Linear decay to 0: lr = initial_lr * (1 - step / total_steps); the whitening bias's over its own steps.
    Set by hand each step (a LambdaLR per optimizer would do the same for the shared part)."""
    for group in sgd.param_groups[1:] + filter_optimizer.param_groups:
        group["lr"] = group["initial_lr"] * (1 - step / total_steps)
    sgd.param_groups[0]["lr"] = sgd.param_groups[0]["initial_lr"] * max(0.0, 1 - step / whiten_bias_steps)


def renormalise_filters():
    """Scale each conv weight to Frobenius norm sqrt(filters), as airbench's Muon does before each step.
    Batch norm follows every conv, so the filters' scale does not change the output; fixing it keeps the
    step Muon takes (of a fixed size) at a fixed size relative to the weights."""
    xp = backend.array_module(filter_optimizer.param_groups[0]["params"][0].array)
    for p in filter_optimizer.param_groups[0]["params"]:
        p.array *= numpy.sqrt(p.shape[0]) / xp.linalg.norm(p.array)   # on the device: no wait for the GPU


def train_step(images, labels, epoch, step):
    """One step on a normalised, augmented batch; returns the (device) loss sum and correct count.
    The loss is summed over the batch, not averaged: the SGD learning rates above assume it (Muon's
    step does not depend on the gradient's scale)."""
    x = minigrad.tensor(images, device=args.device)
    y = minigrad.tensor(labels, device=args.device)
    logits = model(x, whiten_bias_grad=step < whiten_bias_steps)                # (B, 10)
    loss = F.cross_entropy(logits, y, label_smoothing=args.label_smoothing, reduction="sum")
    sgd.zero_grad()
    filter_optimizer.zero_grad()
    loss.backward()
    set_learning_rates(step)
    if args.filter_optimizer == "muon":
        renormalise_filters()
    sgd.step()
    filter_optimizer.step()
    return loss.array, (logits.array.argmax(axis=1) == y.array).sum()


def tta_logits(images, tta):
    """The model's logits (B, 10) for normalised images (B, 3, 32, 32) at every test-time augmentation
    level up to `tta`, as a list [level 0, level 1, ...] (the higher levels reuse the lower ones' passes):
      0: the image alone;
      1: (image + its mirror) / 2;
      2: 1/2 of level 1, plus 1/4 each of level 1 on the image shifted by one pixel diagonally, one
         way and the other (reflect-padded), as airbench: six passes, weighted 1/4 x 2 and 1/8 x 4."""
    def view(x):
        return model(minigrad.tensor(numpy.ascontiguousarray(x), device=args.device))
    def mirrored(x):
        return 0.5 * (view(x) + view(x[..., ::-1]))
    plain = view(images)
    levels = [plain] if tta == 0 else [plain, 0.5 * (plain + view(images[..., ::-1]))]
    if tta == 2:
        h, w = images.shape[2:]
        padded = numpy.pad(images, ((0, 0), (0, 0), (1, 1), (1, 1)), mode="reflect")
        shifted = mirrored(padded[:, :, :h, :w]) + mirrored(padded[:, :, 2:, 2:])      # one pixel each diagonal way
        levels.append(0.5 * levels[1] + 0.25 * shifted)
    return levels


def evaluate(tta=0, batch_size=1000):
    """(loss, accuracy, accuracies) on the evaluation images: the loss (plain cross-entropy, averaged)
    and accuracy at TTA level `tta`, and the accuracy at every level up to it, from the same passes.
    Each epoch is evaluated without TTA (one pass, cheap); the final model with --tta, as airbench."""
    model.eval()
    loss_sum, correct = 0.0, numpy.zeros(tta + 1, dtype=int)
    with minigrad.no_grad():
        for start in range(0, len(eval_labels), batch_size):
            y = minigrad.tensor(eval_labels[start:start + batch_size], device=args.device)
            levels = tta_logits(normalise(eval_images[start:start + batch_size]), tta)     # each (B, 10)
            loss_sum += backend.to_python(F.cross_entropy(levels[-1], y).array) * len(y)
            correct += [int(backend.to_python((logits.array.argmax(axis=1) == y.array).sum())) for logits in levels]
    model.train()
    accuracies = correct / len(eval_labels)
    return loss_sum / len(eval_labels), float(accuracies[-1]), [float(a) for a in accuracies]


# Warm-up: one step and one evaluation batch compile the kernels (counted in set-up); then undone.
weights = model.state_dict()                          # copies
warm = min(args.batch_size, n_train)
train_step(normalise(train_images[:warm]), train_labels[:warm], 0, 0)
model.eval()
with minigrad.no_grad():
    tta_logits(normalise(eval_images[:1000]), 0)
model.train()
model.load_state_dict(weights)
sgd.state.clear()
filter_optimizer.state.clear()
setup_seconds = time.perf_counter() - setup_start
filter_lr = args.muon_lr if args.filter_optimizer == "muon" else args.filter_lr
print(f"model: AirbenchNet, {model.num_parameters():,} parameters on {args.device}; {args.filter_optimizer} lr {filter_lr:g} "
      f"for {len(filter_optimizer.param_groups[0]['params'])} conv filters, SGD lr {args.lr} / head {args.head_lr}; "
      f"{steps_per_epoch} steps of {args.batch_size} per epoch; set-up {setup_seconds:.1f} s")

# ---------------------------------------------------------------------------------------- 4. train
# What a checkpoint must match: everything that changes the run's numbers (not the paths or bars).
# (--tta only changes the final evaluation, so --resume of a finished run may re-evaluate it at another level.)
RECIPE = [name for name in vars(args)
          if name not in ("data_dir", "no_download", "out", "no_progress", "resume", "stop_after", "tta")]
history = MetricHistory(out / "metrics")
train_seconds, step, start_epoch = 0.0, 0, 0
if args.resume:
    try:
        meta = load_checkpoint(args.resume, model, optimizer=filter_optimizer)
        saved = meta["extra"]["config"]
        saved = {k: saved.get(k, parser.get_default(k)) for k in RECIPE}   # a setting added later: its default
        changed = {k: (saved[k], getattr(args, k)) for k in RECIPE if saved[k] != getattr(args, k)}
        if changed:
            fail(f"--resume {args.resume} was made with other settings (saved, now): {changed}")
        sgd.load_state_dict(meta["extra"]["sgd"])
        rng.bit_generator.state = meta["extra"]["data_rng"]
        step, train_seconds = meta["extra"]["step"], meta["extra"]["train_seconds"]
        history.rows[:] = meta["extra"]["history"]
        start_epoch = meta["epoch"] + 1
    except (FileNotFoundError, CheckpointError, KeyError) as error:
        fail(f"cannot resume from {args.resume}: {error}")
    print(f"resumed from {args.resume}: continuing at epoch {start_epoch + 1}, {train_seconds:.1f} s trained so far")
model.train()
end_epoch = args.epochs if args.stop_after is None else min(args.epochs, start_epoch + args.stop_after)
for epoch in range(start_epoch, end_epoch):
    start = time.perf_counter()
    order = rng.permutation(n_train)
    loss_sum, correct, seen = 0.0, 0, 0
    batches = progress_bar(range(steps_per_epoch), desc=f"epoch {epoch + 1}/{args.epochs}", enabled=not args.no_progress)
    for b in batches:
        index = order[b * args.batch_size:(b + 1) * args.batch_size]
        mirror = alternating_flips(base_flip[index], epoch) if args.flip == "alternate" else rng.random(len(index)) < 0.5
        images = flip(normalise(train_images[index]), mirror)
        dy, dx = rng.integers(-2, 3, size=(2, len(index)))
        batch_loss, batch_correct = train_step(translate(images, dy, dx), train_labels[index], epoch, step)
        loss_sum, correct, seen, step = loss_sum + batch_loss, correct + batch_correct, seen + len(index), step + 1
    # to_python waits for the device, so `seconds` is the whole epoch's work
    train_loss, train_acc = backend.to_python(loss_sum) / seen, int(backend.to_python(correct)) / seen
    seconds = time.perf_counter() - start
    train_seconds += seconds
    eval_loss, eval_acc, _ = evaluate()
    history.log(epoch=epoch + 1, train_loss=train_loss, train_acc=train_acc, val_loss=eval_loss, val_acc=eval_acc,
                seconds=round(seconds, 2))
    print(f"epoch {epoch + 1}/{args.epochs}: train loss {train_loss:.4f} acc {train_acc:.2%} | "
          f"{'test' if args.val_size == 0 else 'held-out val'} acc {eval_acc:.2%} (no TTA) | {seconds:.1f} s")
    save_checkpoint(out / "last.ckpt", model, optimizer=filter_optimizer, epoch=epoch,
                    extra={"sgd": sgd.state_dict(), "config": vars(args), "history": history.rows,
                           "data_rng": rng.bit_generator.state, "step": step, "train_seconds": train_seconds})

if end_epoch < args.epochs:
    print(f"stopping after epoch {end_epoch} as asked (--stop-after); --resume {out / 'last.ckpt'} continues")
    sys.exit(0)

# ---------------------------------------------------------------------------------------- 5. report
eval_loss, eval_acc, by_level = evaluate(tta=args.tta)  # the final model, with test-time augmentation
last = history.rows[-1]
accuracy = f"val_acc={eval_acc:.4f}" if args.val_size > 0 else f"val_acc=n/a test_acc={eval_acc:.4f}"
print(f"summary: cifar_speedrun {accuracy} ({eval_name}, tta={args.tta}) train_seconds={train_seconds:.1f} "
      f"setup_seconds={setup_seconds:.1f} epochs={args.epochs} train_loss={last['train_loss']:.4f} | "
      f"checkpoint {out / 'last.ckpt'} | log {history.csv_path}")
print("accuracy by test-time augmentation level: " + ", ".join(f"{k}: {a:.4f}" for k, a in enumerate(by_level)))
(out / "summary.json").write_text(json.dumps(dict(
    accuracy=eval_acc, accuracy_by_tta_level=by_level, evaluated_on=eval_name, tta=args.tta, train_seconds=round(train_seconds, 1),
    setup_seconds=round(setup_seconds, 1), epochs=args.epochs, seed=args.seed, batch_size=args.batch_size,
    config={name: getattr(args, name) for name in RECIPE}), indent=1))
