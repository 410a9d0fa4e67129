"""One MNIST-shaped MLP training epoch: minigrad vs PyTorch, same threads.

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE .venv/bin/python benchmarks/bench_mlp_epoch.py

Synthetic data of MNIST's shape (60000 x 784 float32, labels 0..9): only time is
measured, so real digits are not needed. The epoch is what an example script
does: shuffle, then for each batch slice the arrays, wrap them as tensors,
zero_grad, forward (784 -> 256 -> 128 -> 10, ReLU), cross-entropy, backward, SGD step.
"""
import numpy

import common


def main():
    p = common.parser(__doc__.splitlines()[0])
    p.add_argument("--batch", type=int, default=128)
    p.add_argument("--samples", type=int, default=60000)
    p.add_argument("--hidden", type=int, nargs="+", default=[256, 128])
    p.set_defaults(repeats=3, warmup=1)
    args = p.parse_args()
    torch = common.setup(args)
    import minigrad
    from minigrad.models.mlp import MLP
    from minigrad.nn.functional import cross_entropy

    rng = numpy.random.default_rng(0)
    images = rng.random((args.samples, 784), dtype=numpy.float32)
    labels = rng.integers(0, 10, size=args.samples)
    device = "cuda" if args.device == "gpu" else "cpu"

    model = MLP(784, args.hidden, 10)
    if args.device != "cpu":
        model = model.to(args.device)
    optimizer = minigrad.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    sizes = [784] + args.hidden
    if torch is not None:                      # None with --only minigrad
        torch_layers = []
        for fan_in, fan_out in zip(sizes[:-1], sizes[1:]):
            torch_layers += [torch.nn.Linear(fan_in, fan_out), torch.nn.ReLU()]
        torch_model = torch.nn.Sequential(*torch_layers, torch.nn.Linear(sizes[-1], 10)).to(device)
        torch_optimizer = torch.optim.SGD(torch_model.parameters(), lr=0.05, momentum=0.9)

    def epoch_minigrad():
        order = rng.permutation(args.samples)
        for start in range(0, args.samples, args.batch):
            index = order[start:start + args.batch]
            x = common.to_device_minigrad(images[index], args.device)
            y = common.to_device_minigrad(labels[index], args.device)
            optimizer.zero_grad()
            cross_entropy(model(x), y).backward()
            optimizer.step()

    def epoch_torch():
        order = rng.permutation(args.samples)
        for start in range(0, args.samples, args.batch):
            index = order[start:start + args.batch]
            x = common.to_device_torch(torch, images[index], args.device)
            y = common.to_device_torch(torch, labels[index], args.device)
            torch_optimizer.zero_grad()
            torch.nn.functional.cross_entropy(torch_model(x), y).backward()
            torch_optimizer.step()

    ours, theirs = common.time_pair(epoch_minigrad, epoch_torch, args)
    steps = -(-args.samples // args.batch)
    headers = ["MLP epoch", "minigrad s", "torch s", "ratio", "minigrad us/step", "torch us/step"]
    seconds = lambda t: "-" if t is None else f"{t:.2f}"                          # noqa: E731
    per_step = lambda t: "-" if t is None else f"{1e6 * t / steps:.0f}"          # noqa: E731
    ratio = f"{ours / theirs:.2f}" if ours and theirs else "n/a (--only)"
    row = [f"784-{'-'.join(map(str, args.hidden))}-10, batch {args.batch}", seconds(ours), seconds(theirs),
           ratio, per_step(ours), per_step(theirs)]
    print()
    common.print_table(headers, [row])


if __name__ == "__main__":
    main()
