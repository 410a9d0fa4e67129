"""The CIFAR-10 speed-record network (airbench94), one training step: minigrad vs PyTorch, same threads.

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE .venv/bin/python benchmarks/bench_speedrun.py
    ... bench_speedrun.py --batches 256,1024        # several batch sizes (default: --batch 512)
    ... bench_speedrun.py --epoch                   # also an ESTIMATE of one epoch (45,000 images)
    ... bench_speedrun.py --threads 2 --only minigrad / --only torch   (each library alone)
    ... bench_speedrun.py --recipe --data-dir ../shared/data       # TIMED epochs of the whole recipe

What is measured, float32, on pre-made random images (N, 3, 32, 32) and labels:
  - "training step": zero_grad, forward, cross-entropy with label smoothing 0.2, backward,
    SGD (momentum 0.9, Nesterov) over every trainable parameter. airbench94 itself uses two
    parameter groups with different learning rates (or Muon for the filters); plain SGD on both
    sides keeps the optimizer's cost comparable and small;
  - "forward+backward": zero_grad, forward, the same loss, backward (no optimizer step);
  - with --epoch, "epoch estimate": ceil(45000 / batch) steps times the median step time, for
    each library. It is an extrapolation, not a timed epoch (no data loading, no augmentation).
  - with --recipe, "one epoch of the recipe": examples/cifar_speedrun.py and its PyTorch twin
    benchmarks/torch_speedrun.py (same data, weights, batches, optimisers), each run for one
    epoch of the 45,000 training images at its default batch (2000) in a child process, the two
    alternating, --recipe-repeats times; the median of each side's train_seconds (augmentation,
    forward, backward, both optimisers; set-up and evaluation excluded) and their ratio.

minigrad's side is minigrad.models.airbench.AirbenchNet; the PyTorch side is the same network
written below (whitening 2x2 conv 3->24 without padding, GELU, three conv groups
conv3x3 - maxpool 2 - BN - GELU - conv3x3 - BN - GELU of widths 64/256/256, maxpool 3, flatten,
linear 256->10 without bias, times 1/9). On both sides the whitening filters and the BN scales
are frozen (requires_grad False) and BN's momentum is 0.4: minigrad counts BN momentum as
PyTorch does (the weight of the new batch's statistics). The trainable weights are copied from
the minigrad model into the PyTorch one, so both compute the same function; only time is
compared. Like every benchmark here it prints tables and never asserts.
"""
import json
import math
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy

import common

EPOCH_IMAGES = 45000          # airbench's training split: 50,000 images less 5,000 held out
LABEL_SMOOTHING = 0.2


def torch_airbench(torch, widths=(64, 256, 256), num_classes=10, momentum=0.4, eps=1e-12, head_scale=1 / 9):
    """The airbench94 network in PyTorch, with the attribute names of minigrad's AirbenchNet."""
    nn = torch.nn

    def batch_norm(channels):
        norm = nn.BatchNorm2d(channels, eps=eps, momentum=momentum)
        norm.weight.requires_grad_(False)                     # gamma frozen at 1
        return norm

    class ConvGroup(nn.Module):
        def __init__(self, c_in, c_out):
            super().__init__()
            self.conv1 = nn.Conv2d(c_in, c_out, 3, padding=1, bias=False)
            self.pool = nn.MaxPool2d(2)
            self.norm1 = batch_norm(c_out)
            self.conv2 = nn.Conv2d(c_out, c_out, 3, padding=1, bias=False)
            self.norm2 = batch_norm(c_out)
            self.activation = nn.GELU()

        def forward(self, x):
            x = self.activation(self.norm1(self.pool(self.conv1(x))))
            return self.activation(self.norm2(self.conv2(x)))

    class Airbench(nn.Module):
        def __init__(self):
            super().__init__()
            self.whiten = nn.Conv2d(3, 24, kernel_size=2, padding=0, bias=True)
            self.whiten.weight.requires_grad_(False)
            self.activation = nn.GELU()
            self.group1 = ConvGroup(24, widths[0])
            self.group2 = ConvGroup(widths[0], widths[1])
            self.group3 = ConvGroup(widths[1], widths[2])
            self.pool = nn.MaxPool2d(3)
            self.flatten = nn.Flatten()
            self.head = nn.Linear(widths[2], num_classes, bias=False)
            self.head_scale = head_scale

        def forward(self, x):
            x = self.activation(self.whiten(x))
            x = self.pool(self.group3(self.group2(self.group1(x))))
            return self.head(self.flatten(x)) * self.head_scale

    return Airbench()


def step_pairs(torch, args, batch, rng):
    """((step_minigrad, step_torch), (fwd_bwd_minigrad, fwd_bwd_torch)) on one fixed batch."""
    import minigrad
    from minigrad.models.airbench import AirbenchNet
    from minigrad.nn.functional import cross_entropy

    images = rng.standard_normal((batch, 3, 32, 32)).astype(numpy.float32)
    labels = rng.integers(0, 10, size=batch)

    model = AirbenchNet(batchnorm_momentum=0.4)
    model.init_whitening(images)                                # on the CPU; copied to torch below first
    cpu_weights = {name: numpy.array(p.array) for name, p in model.named_parameters()}
    frozen = {name: not p.requires_grad for name, p in model.named_parameters()}
    if args.device != "cpu":
        model = model.to(args.device)
    model.train()
    trainable = [p for p in model.parameters() if p.requires_grad]
    optimizer = minigrad.optim.SGD(trainable, lr=0.01, momentum=0.9, nesterov=True)
    xm, ym = common.to_device_minigrad(images, args.device), common.to_device_minigrad(labels, args.device)

    def fwd_bwd_minigrad():
        optimizer.zero_grad()
        cross_entropy(model(xm), ym, label_smoothing=LABEL_SMOOTHING).backward()

    def step_minigrad():
        fwd_bwd_minigrad()
        optimizer.step()

    step_torch = fwd_bwd_torch = None
    if torch is not None:
        theirs = torch_airbench(torch)
        with torch.no_grad():                                   # same weights: same function on both sides
            for name, p in theirs.named_parameters():
                p.copy_(torch.from_numpy(cpu_weights[name]))
                if p.requires_grad == frozen[name]:             # a set-up check, not a timing one
                    raise RuntimeError(f"bench_speedrun: {name} is frozen on one side only")
        theirs = theirs.to("cuda" if args.device == "gpu" else "cpu").train()
        torch_optimizer = torch.optim.SGD([p for p in theirs.parameters() if p.requires_grad],
                                          lr=0.01, momentum=0.9, nesterov=True)
        xt, yt = common.to_device_torch(torch, images, args.device), common.to_device_torch(torch, labels, args.device)

        def fwd_bwd_torch():
            torch_optimizer.zero_grad()
            torch.nn.functional.cross_entropy(theirs(xt), yt, label_smoothing=LABEL_SMOOTHING).backward()

        def step_torch():
            fwd_bwd_torch()
            torch_optimizer.step()
    return (step_minigrad, step_torch), (fwd_bwd_minigrad, fwd_bwd_torch)


def recipe_epochs(args):
    """{"minigrad": [seconds...], "torch": [...]}: one-epoch runs of the example and its PyTorch twin,
    alternating, each in a child process with --threads threads."""
    here = Path(__file__).resolve().parent
    scripts = {"minigrad": [str(here.parent / "examples" / "cifar_speedrun.py"), "--no-download", "--no-progress"],
               "torch": [str(here / "torch_speedrun.py"), "--threads", str(args.threads)]}
    environment = dict(os.environ, OMP_NUM_THREADS=str(args.threads), NUMBA_NUM_THREADS=str(args.threads),
                       OPENBLAS_NUM_THREADS=str(args.threads), MKL_NUM_THREADS=str(args.threads))
    seconds = {name: [] for name in scripts}
    with tempfile.TemporaryDirectory() as folder:
        for repeat in range(args.recipe_repeats):
            for name, script in scripts.items():
                out = Path(folder) / f"{name}{repeat}"
                command = [sys.executable, *script, "--data-dir", args.data_dir, "--out", str(out), "--epochs", "1",
                           "--tta", "0", "--seed", str(repeat)]
                done = subprocess.run(command, env=environment, capture_output=True, text=True)
                if done.returncode != 0:
                    raise SystemExit(f"bench_speedrun --recipe: {name} failed ({done.returncode}):\n{done.stderr[-2000:]}")
                seconds[name].append(json.loads((out / "summary.json").read_text())["train_seconds"])
                print(f"  recipe epoch, {name}, round {repeat + 1}: {seconds[name][-1]:.1f} s", flush=True)
    return seconds


def main():
    p = common.parser(__doc__.splitlines()[0])
    p.add_argument("--batch", type=int, default=512, help="batch size (ignored when --batches is given)")
    p.add_argument("--batches", help="comma-separated batch sizes, e.g. 256,1024")
    p.add_argument("--epoch", action="store_true",
                   help=f"also print an ESTIMATE of one epoch: ceil({EPOCH_IMAGES} / batch) x median step time")
    p.add_argument("--recipe", action="store_true",
                   help="time one epoch of the whole recipe, minigrad's example against its PyTorch twin")
    p.add_argument("--recipe-repeats", type=int, default=3, help="rounds of --recipe (median reported)")
    p.add_argument("--data-dir", default="../shared/data", help="for --recipe: the folder with cifar-10-batches-py/")
    p.set_defaults(repeats=5)
    args = p.parse_args()
    batches = [int(b) for b in args.batches.split(",")] if args.batches else [args.batch]
    torch = common.setup(args)
    rng = numpy.random.default_rng(0)

    rows, epoch_rows = [], []
    if args.recipe:                                         # the timed recipe alone (each run takes minutes)
        batches = []

    def cell(seconds):
        return "-" if seconds is None else common.ms(seconds)

    def ratio(ours, theirs):
        return f"{ours / theirs:.2f}" if ours and theirs else "n/a (--only)"

    for batch in batches:
        step, fwd_bwd = step_pairs(torch, args, batch, rng)
        for name, pair in ((f"training step, batch {batch}", step), (f"forward+backward, batch {batch}", fwd_bwd)):
            ours, theirs = common.time_pair(*pair, args)
            rows.append([name, cell(ours), cell(theirs), ratio(ours, theirs)])
            print("  " + "  ".join(rows[-1]), flush=True)
            if name.startswith("training step"):
                steps = math.ceil(EPOCH_IMAGES / batch)
                epoch_rows.append([f"epoch ESTIMATE, batch {batch} ({steps} steps x median step)",
                                   "-" if ours is None else f"{steps * ours:.2f}",
                                   "-" if theirs is None else f"{steps * theirs:.2f}", ratio(ours, theirs)])

    if rows:
        print("\nairbench94 network (CIFAR-10 speed record), float32, SGD Nesterov, label smoothing 0.2")
        common.print_table(["case", "minigrad ms", "torch ms", "ratio"], rows)
    if args.epoch:
        print(f"\nONE EPOCH, ESTIMATED (not timed): ceil({EPOCH_IMAGES} / batch) x the median training step above")
        common.print_table(["estimate", "minigrad s", "torch s", "ratio"], epoch_rows)
    if args.recipe:
        seconds = recipe_epochs(args)
        ours, theirs = statistics.median(seconds["minigrad"]), statistics.median(seconds["torch"])
        print(f"\nONE EPOCH OF THE RECIPE, TIMED ({EPOCH_IMAGES} images, batch 2000, {args.threads} threads, "
              f"median of {args.recipe_repeats})")
        common.print_table(["case", "minigrad s", "torch s", "ratio"],
                           [["cifar_speedrun.py epoch", f"{ours:.1f}", f"{theirs:.1f}", ratio(ours, theirs)]])


if __name__ == "__main__":
    main()
