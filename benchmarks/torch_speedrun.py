"""examples/cifar_speedrun.py's recipe in PyTorch (CPU, float32): the oracle for its time and accuracy.

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE .venv/bin/python benchmarks/torch_speedrun.py \
        --data-dir ../shared/data --out /tmp/torch_speedrun          # 10 epochs, held-out accuracy
    ... --epochs 1 --limit-train 2000                                 # a smoke test

Everything that can be shared with the minigrad run is shared, so that only the engine differs:
  - the data: the same split (train on the first 45,000 images, evaluate on the last --val-size),
    the same normalisation, the same whitening filters (minigrad's patch_whitening_weights, NumPy);
  - the initial weights: a minigrad AirbenchNet is built with the same seed and its weights are
    copied into the PyTorch network (bench_speedrun.torch_airbench), so both start identical;
  - the random stream: shuffling, the alternating flip's base bits and the translations come
    from NumPy generators seeded as in the example, so both see the same batches in the same order;
  - the optimisers: torch.optim.SGD (Nesterov, the example's three groups, weight decay
    decay / lr) and Muon as minigrad/optim/muon.py computes it (PyTorch's own torch.optim.Muon
    takes 2-D parameters only, so the few lines are written out below on the flattened filters);
    the filters renormalised before each step, the loss summed over the batch, label smoothing,
    the linear decay, the whitening bias trained for its first epochs;
  - evaluation: the same test-time augmentation levels.
The augmentation and the step run in torch (what a PyTorch user would write); nothing of minigrad
runs inside the timed epochs. It prints the example's summary line and writes the same
metrics.csv / summary.json, so benchmarks/bench_speedrun.py --recipe can time an epoch of each
in one run and plots can set the two accuracy-against-time curves side by side.
"""
import argparse
import json
import math
import sys
import time
from pathlib import Path

import numpy

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_speedrun import torch_airbench  # noqa: E402


def parse():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--epochs", type=int, default=10)
    p.add_argument("--batch-size", type=int, default=2000)
    p.add_argument("--lr", type=float, default=0.053)
    p.add_argument("--head-lr", type=float, default=0.67)
    p.add_argument("--muon-lr", type=float, default=0.24)
    p.add_argument("--momentum", type=float, default=0.85)
    p.add_argument("--muon-momentum", type=float, default=0.6)
    p.add_argument("--weight-decay", type=float, default=2e-6)
    p.add_argument("--label-smoothing", type=float, default=0.2)
    p.add_argument("--whiten-bias-epochs", type=float, default=3)
    p.add_argument("--tta", type=int, default=2, choices=[0, 1, 2])
    p.add_argument("--data-dir", default="../shared/data")
    p.add_argument("--val-size", type=int, default=5000)
    p.add_argument("--limit-train", type=int, default=None)
    p.add_argument("--out", default="runs/torch_speedrun")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=None, help="torch.set_num_threads (default: torch's own)")
    p.add_argument("--save-weights", default=None, help="write the final weights to this .npz (for comparisons)")
    return p.parse_args()


def muon_step(torch, params, buffers, lr, momentum, ns_steps=5, coefficients=(3.4445, -4.7750, 2.0315), eps=1e-7):
    """minigrad.optim.Muon's update (nesterov, no weight decay), each filter bank as a (F, C*KH*KW) matrix."""
    a, b, c = coefficients
    for p, buffer in zip(params, buffers):
        g = p.grad
        buffer.lerp_(g, 1 - momentum)                               # b = momentum b + (1 - momentum) g
        u = g.lerp(buffer, momentum).reshape(len(p), -1)            # (1 - momentum) g + momentum b
        x = u.T if u.shape[0] > u.shape[1] else u
        x = x / max(float(x.norm()), eps)
        for _ in range(ns_steps):
            gram = x @ x.T
            x = a * x + (b * gram + c * (gram @ gram)) @ x
        o = x.T if u.shape[0] > u.shape[1] else x
        rows, cols = u.shape
        p.data.add_(o.reshape(p.shape), alpha=-lr * math.sqrt(max(1.0, rows / cols)))


def main():
    args = parse()
    import torch
    import torch.nn.functional as F

    import minigrad
    from minigrad.data import CIFAR10
    from minigrad.models.airbench import AirbenchNet

    if args.threads:
        torch.set_num_threads(args.threads)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    setup_start = time.perf_counter()
    full = CIFAR10(args.data_dir, train=True, download=False)
    cut = len(full) - args.val_size if args.val_size else len(full)
    if args.val_size:
        eval_images, eval_labels = full.data[cut:], full.targets[cut:]
    else:
        test = CIFAR10(args.data_dir, train=False, download=False)
        eval_images, eval_labels = test.data, test.targets
    n_train = cut if args.limit_train is None else min(args.limit_train, cut)
    train_images, train_labels = full.data[:n_train], full.targets[:n_train]

    # the example's channel statistics and normalisation, to the last rounding
    sums, squares = numpy.zeros(3), numpy.zeros(3)
    for start in range(0, n_train, 5000):
        part = train_images[start:start + 5000].astype(numpy.float64) / 255.0
        sums, squares = sums + part.sum(axis=(0, 2, 3)), squares + (part ** 2).sum(axis=(0, 2, 3))
    mean = sums / (n_train * 32 * 32)
    std = numpy.sqrt(squares / (n_train * 32 * 32) - mean ** 2)
    scale = torch.from_numpy((1 / (255.0 * std)).astype(numpy.float32)).view(3, 1, 1)
    shift = torch.from_numpy((mean / std).astype(numpy.float32)).view(3, 1, 1)

    def normalise(images):                          # uint8 tensor (N, 3, H, W) -> float32
        return images.float() * scale - shift

    # the same initial weights: a minigrad model built exactly as the example builds it
    minigrad.manual_seed(args.seed)
    rng = numpy.random.default_rng(args.seed)
    reference = AirbenchNet(head_scale=1 / 256, head_weight_std=1.0)
    reference.init_whitening(normalise(torch.from_numpy(train_images[:: max(1, n_train // 5000)])).numpy())
    model = torch_airbench(torch, head_scale=1 / 256)
    weights = {name: numpy.array(getattr(value, "array", value)) for name, value in reference.state_dict().items()}
    with torch.no_grad():
        for name, p in model.named_parameters():
            p.copy_(torch.from_numpy(weights[name]))
        for name, b in model.named_buffers():
            if b.dtype.is_floating_point:                           # running statistics: the same names
                b.copy_(torch.from_numpy(weights[name]))
    train_x, train_y = torch.from_numpy(train_images), torch.from_numpy(train_labels.astype(numpy.int64))
    eval_x, eval_y = torch.from_numpy(eval_images), torch.from_numpy(eval_labels.astype(numpy.int64))

    filters = [p for p in model.parameters() if p.requires_grad and p.ndim == 4]
    head, whiten_bias = model.head.weight, model.whiten.bias
    biases = [p for p in model.parameters() if p.requires_grad and p.ndim != 4 and p is not head and p is not whiten_bias]
    decay = args.weight_decay * args.batch_size
    sgd = torch.optim.SGD([dict(params=[whiten_bias], lr=args.lr, weight_decay=decay / args.lr),
                           dict(params=biases, lr=args.lr, weight_decay=decay / args.lr),
                           dict(params=[head], lr=args.head_lr, weight_decay=decay / args.head_lr)],
                          lr=args.lr, momentum=args.momentum, nesterov=True)
    initial = [g["lr"] for g in sgd.param_groups]
    buffers = [torch.zeros_like(p) for p in filters]

    base_flip = numpy.random.default_rng([args.seed, 1]).random(n_train) < 0.5
    steps_per_epoch = max(1, n_train // args.batch_size)
    total_steps = args.epochs * steps_per_epoch
    whiten_bias_steps = max(1, int(args.whiten_bias_epochs * steps_per_epoch))

    def augment(images, flip_mask, dy, dx, pad=2):
        """flip where flip_mask, then shift by (dy, dx) with reflection: the example's flip and translate."""
        images = torch.where(torch.from_numpy(flip_mask).view(-1, 1, 1, 1), images.flip(-1), images)
        n, _, h, w = images.shape
        padded = F.pad(images, (pad,) * 4, mode="reflect")
        windows = padded.unfold(2, h, 1).unfold(3, w, 1)           # (N, C, 2pad+1, 2pad+1, H, W)
        return windows[torch.arange(n), :, torch.from_numpy(pad - dy), torch.from_numpy(pad - dx)].contiguous()

    def tta_logits(images, tta):
        def mirrored(x):
            return model(x) if tta == 0 else 0.5 * (model(x) + model(x.flip(-1)))
        logits = mirrored(images)
        if tta == 2:
            h, w = images.shape[2:]
            padded = F.pad(images, (1, 1, 1, 1), mode="reflect")
            logits = 0.5 * logits + 0.25 * (mirrored(padded[:, :, :h, :w]) + mirrored(padded[:, :, 2:, 2:]))
        return logits

    def evaluate(tta=0, batch_size=1000):
        model.eval()
        loss_sum, correct = 0.0, 0
        with torch.no_grad():
            for start in range(0, len(eval_y), batch_size):
                y = eval_y[start:start + batch_size]
                logits = tta_logits(normalise(eval_x[start:start + batch_size]), tta)
                loss_sum += float(F.cross_entropy(logits, y)) * len(y)
                correct += int((logits.argmax(1) == y).sum())
        model.train()
        return loss_sum / len(eval_y), correct / len(eval_y)

    def train_step(images, labels, step):
        bias = whiten_bias if step < whiten_bias_steps else whiten_bias.detach()
        x = F.gelu(F.conv2d(images, model.whiten.weight, bias))
        x = model.pool(model.group3(model.group2(model.group1(x))))
        logits = model.head(model.flatten(x)) * model.head_scale
        loss = F.cross_entropy(logits, labels, label_smoothing=args.label_smoothing, reduction="sum")
        sgd.zero_grad(set_to_none=True)
        for p in filters:
            p.grad = None
        loss.backward()
        fraction = 1 - step / total_steps
        sgd.param_groups[0]["lr"] = initial[0] * max(0.0, 1 - step / whiten_bias_steps)
        for group, lr in zip(sgd.param_groups[1:], initial[1:]):
            group["lr"] = lr * fraction
        with torch.no_grad():
            for p in filters:
                p.mul_(math.sqrt(len(p)) / p.norm())
            sgd.step()
            muon_step(torch, filters, buffers, args.muon_lr * fraction, args.muon_momentum)
        return float(loss.detach()), int((logits.argmax(1) == labels).sum())

    # Warm-up, as the example does: one step and one evaluation batch outside the timed epochs (PyTorch's
    # one-off set-up of its kernels and allocator), then every weight, buffer and optimiser state undone.
    saved = {name: value.clone() for name, value in model.state_dict().items()}
    warm = min(args.batch_size, n_train)
    train_step(normalise(train_x[:warm]), train_y[:warm], 0)
    model.eval()
    with torch.no_grad():
        tta_logits(normalise(eval_x[:1000]), 0)
    model.train()
    model.load_state_dict(saved)
    sgd.state.clear()
    for buffer in buffers:
        buffer.zero_()
    setup_seconds = time.perf_counter() - setup_start
    print(f"data: {n_train} training images, {len(eval_y)} evaluation images; torch {torch.__version__}, "
          f"{torch.get_num_threads()} threads; set-up {setup_seconds:.1f} s", flush=True)
    rows, train_seconds, step = [], 0.0, 0
    model.train()
    for epoch in range(args.epochs):
        start = time.perf_counter()
        order = rng.permutation(n_train)
        flips = base_flip ^ bool(epoch % 2)
        loss_sum, correct, seen = 0.0, 0, 0
        for b in range(steps_per_epoch):
            index = order[b * args.batch_size:(b + 1) * args.batch_size]
            dy, dx = rng.integers(-2, 3, size=(2, len(index)))
            images = augment(normalise(train_x[index]), flips[index], dy, dx)
            batch_loss, batch_correct = train_step(images, train_y[index], step)
            loss_sum, correct, seen, step = loss_sum + batch_loss, correct + batch_correct, seen + len(index), step + 1
        seconds = time.perf_counter() - start
        train_seconds += seconds
        val_loss, val_acc = evaluate()
        rows.append(dict(epoch=epoch + 1, train_loss=loss_sum / seen, train_acc=correct / seen, val_loss=val_loss,
                         val_acc=val_acc, seconds=round(seconds, 2)))
        print(f"epoch {epoch + 1}/{args.epochs}: train loss {loss_sum / seen:.4f} acc {correct / seen:.2%} | "
              f"val acc {val_acc:.2%} (no TTA) | {seconds:.1f} s", flush=True)
        with open(out / "metrics.csv", "w") as file:
            file.write(",".join(rows[0]) + "\n" + "".join(",".join(str(v) for v in r.values()) + "\n" for r in rows))
    _, accuracy = evaluate(tta=args.tta)
    if args.save_weights:
        numpy.savez(args.save_weights, **{name: value.detach().numpy() for name, value in model.state_dict().items()})
    (out / "summary.json").write_text(json.dumps(dict(
        accuracy=accuracy, tta=args.tta, train_seconds=round(train_seconds, 1), setup_seconds=round(setup_seconds, 1),
        epochs=args.epochs, seed=args.seed, batch_size=args.batch_size, engine=f"torch {torch.__version__}"), indent=1))
    print(f"summary: torch_speedrun val_acc={accuracy:.4f} (tta={args.tta}) train_seconds={train_seconds:.1f} "
          f"setup_seconds={setup_seconds:.1f} epochs={args.epochs}")


if __name__ == "__main__":
    main()
