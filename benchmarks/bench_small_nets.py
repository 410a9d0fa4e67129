"""The networks students write first: LeNet (the CIFAR-10 tutorial's) and the canonical MNIST CNN, minigrad vs PyTorch.

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE .venv/bin/python benchmarks/bench_small_nets.py --threads 1
    ... --threads 2 --only minigrad / --only torch     (each library alone in its process)
    ... --rows convs --compare-im2col                   (the conv layers only, and each one's im2col path beside it)
    ... --rows layers                                   (ReLU, max-pool and Linear at the two networks' shapes)

Four tables: a training step (zero_grad, forward, cross-entropy, backward, SGD with momentum) on
pre-made tensors at batches 4, 32 and 128; each convolution layer's forward + backward (with bias) at
batch 128; every other layer's (ReLU, 2x2 max-pool, Linear) at the shapes these networks give it at
batch 128; and an epoch of the MNIST CNN on 10,000 synthetic MNIST-shaped images at batch 64 (the
data pre-made, so the epoch is the steps). The same architectures on both sides, weights not shared
(only time is compared).
"""
import numpy

import common

LENET = "lenet"
MNIST_CNN = "mnist_cnn"


def build(kind, nn, F, flatten):
    """The network `kind`, written once for both libraries (they share these names)."""
    class LeNet(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv1, self.conv2 = nn.Conv2d(3, 6, 5), nn.Conv2d(6, 16, 5)
            self.fc1, self.fc2, self.fc3 = nn.Linear(400, 120), nn.Linear(120, 84), nn.Linear(84, 10)

        def forward(self, x):
            x = F.max_pool2d(F.relu(self.conv1(x)), 2)
            x = F.max_pool2d(F.relu(self.conv2(x)), 2)
            x = flatten(x, 1)
            return self.fc3(F.relu(self.fc2(F.relu(self.fc1(x)))))

    class MnistCnn(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv1, self.conv2 = nn.Conv2d(1, 32, 3), nn.Conv2d(32, 64, 3)
            self.fc1, self.fc2 = nn.Linear(9216, 128), nn.Linear(128, 10)

        def forward(self, x):
            x = F.max_pool2d(F.relu(self.conv2(F.relu(self.conv1(x)))), 2)
            return self.fc2(F.relu(self.fc1(flatten(x, 1))))

    return LeNet() if kind == LENET else MnistCnn()


def minigrad_net(kind):
    import minigrad
    return build(kind, minigrad.nn, minigrad.nn.functional, minigrad.flatten)


def torch_net(torch, kind):
    return build(kind, torch.nn, torch.nn.functional, torch.flatten)


def image_shape(kind):
    return (3, 32, 32) if kind == LENET else (1, 28, 28)


def step_pair(torch, kind, batch, rng):
    """(run_minigrad, run_torch): one training step each on a fixed batch."""
    import minigrad
    x = rng.standard_normal((batch,) + image_shape(kind)).astype(numpy.float32)
    y = rng.integers(0, 10, batch)
    model = minigrad_net(kind)
    optimizer = minigrad.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    xm, ym = minigrad.tensor(x), minigrad.tensor(y)

    def run_minigrad():
        optimizer.zero_grad()
        minigrad.nn.functional.cross_entropy(model(xm), ym).backward()
        optimizer.step()

    run_torch = None
    if torch is not None:
        theirs = torch_net(torch, kind)
        torch_optimizer = torch.optim.SGD(theirs.parameters(), lr=0.01, momentum=0.9)
        xt, yt = torch.from_numpy(x), torch.from_numpy(y)

        def run_torch():
            torch_optimizer.zero_grad()
            torch.nn.functional.cross_entropy(theirs(xt), yt).backward()
            torch_optimizer.step()
    return run_minigrad, run_torch


def conv_pair(torch, n, c, f, size, kernel, rng):
    import minigrad
    from minigrad.ops.conv import conv2d
    x = rng.standard_normal((n, c, size, size)).astype(numpy.float32)
    w = (rng.standard_normal((f, c, kernel, kernel)) * (2 / (c * kernel * kernel)) ** 0.5).astype(numpy.float32)
    b = rng.standard_normal(f).astype(numpy.float32)
    dy = rng.standard_normal((n, f, size - kernel + 1, size - kernel + 1)).astype(numpy.float32)
    xm, wm, bm = (minigrad.tensor(a, requires_grad=True) for a in (x, w, b))
    dym = minigrad.tensor(dy)

    def run_minigrad():
        xm.grad = wm.grad = bm.grad = None
        conv2d(xm, wm, bm).backward(dym)

    run_torch = None
    if torch is not None:
        xt, wt, bt = (torch.tensor(a, requires_grad=True) for a in (x, w, b))
        dyt = torch.from_numpy(dy)

        def run_torch():
            xt.grad = wt.grad = bt.grad = None
            torch.nn.functional.conv2d(xt, wt, bt).backward(dyt)
    return run_minigrad, run_torch


# The non-conv layers of both networks at batch 128: (name, function name, input shape, Linear out features).
LAYERS = [("lenet relu 6x28x28", "relu", (128, 6, 28, 28), None),
          ("lenet max-pool 6x28x28", "max_pool2d", (128, 6, 28, 28), None),
          ("lenet relu 16x10x10", "relu", (128, 16, 10, 10), None),
          ("lenet max-pool 16x10x10", "max_pool2d", (128, 16, 10, 10), None),
          ("lenet fc1 400->120", "linear", (128, 400), 120),
          ("lenet fc2 120->84", "linear", (128, 120), 84),
          ("lenet fc3 84->10", "linear", (128, 84), 10),
          ("mnist relu 32x26x26", "relu", (128, 32, 26, 26), None),
          ("mnist relu 64x24x24", "relu", (128, 64, 24, 24), None),
          ("mnist max-pool 64x24x24", "max_pool2d", (128, 64, 24, 24), None),
          ("mnist fc1 9216->128", "linear", (128, 9216), 128),
          ("mnist fc2 128->10", "linear", (128, 128), 10)]


def layer_pair(torch, function, shape, out_features, rng):
    """(run_minigrad, run_torch): forward + backward of one functional layer (ReLU, 2x2 max-pool or Linear
    with bias), the input's gradient always and the Linear's weight and bias gradients too."""
    import minigrad
    arrays = [rng.standard_normal(shape).astype(numpy.float32)]
    if function == "linear":
        arrays += [(rng.standard_normal((out_features, shape[1])) / shape[1] ** 0.5).astype(numpy.float32),
                   rng.standard_normal(out_features).astype(numpy.float32)]
    extra = (2,) if function == "max_pool2d" else ()              # the kernel size

    def runner(library, make, functional):
        tensors = [make(a) for a in arrays]
        op = getattr(functional, function)
        out_shape = op(*tensors, *extra).shape
        seed = library.tensor(rng.standard_normal(tuple(out_shape)).astype(numpy.float32))

        def run():
            for t in tensors:
                t.grad = None
            op(*tensors, *extra).backward(seed)
        return run

    run_minigrad = runner(minigrad, lambda a: minigrad.tensor(a, requires_grad=True), minigrad.nn.functional)
    run_torch = None
    if torch is not None:
        run_torch = runner(torch, lambda a: torch.tensor(a, requires_grad=True), torch.nn.functional)
    return run_minigrad, run_torch


def forcing_im2col(run):
    """run() with the fast conv2d's chooser held to im2col (minigrad/fast/conv.py), for an A/B in one process."""
    from minigrad.fast import conv

    def run_im2col():
        conv.install(use_winograd=False)
        try:
            run()
        finally:
            conv.install()
    return run_im2col


def main():
    p = common.parser(__doc__.splitlines()[0])
    p.add_argument("--epoch-images", type=int, default=10000, help="images in the MNIST CNN epoch")
    p.add_argument("--rows", default="all", choices=["all", "steps", "convs", "layers", "epoch"],
                   help="which table(s) to run")
    p.add_argument("--compare-im2col", action="store_true",
                   help="after each conv row, time minigrad's im2col path against its default (direct loops or "
                        "Winograd where they suit), alternating in this process: ratio = default / im2col")
    args = p.parse_args()
    torch = common.setup(args)
    rng = numpy.random.default_rng(0)
    rows = []

    def row(name, pair, repeats=None):
        saved = args.repeats
        args.repeats = repeats or args.repeats
        ours, theirs = common.time_pair(*pair, args)
        args.repeats = saved
        rows.append([name, common.ms(ours) if ours else "-", common.ms(theirs) if theirs else "-",
                     f"{ours / theirs:.2f}" if ours and theirs else "n/a (--only)"])
        print("  " + "  ".join(rows[-1]), flush=True)

    if args.rows in ("all", "steps"):
        for kind in (LENET, MNIST_CNN):
            for batch in (4, 32, 128):
                row(f"{kind} step, batch {batch}", step_pair(torch, kind, batch, rng))
    if args.rows in ("all", "convs"):
        for name, shape in [("lenet conv1 3->6 5x5 @32", (3, 6, 32, 5)),
                            ("lenet conv2 6->16 5x5 @14", (6, 16, 14, 5)),
                            ("mnist conv1 1->32 3x3 @28", (1, 32, 28, 3)),
                            ("mnist conv2 32->64 3x3 @26", (32, 64, 26, 3))]:
            pair = conv_pair(torch, 128, *shape, rng)
            row(f"{name}, batch 128", pair)
            if args.compare_im2col and args.only is None:
                row("  (minigrad default / im2col)", (pair[0], forcing_im2col(pair[0])))
    if args.rows in ("all", "layers"):
        for name, function, shape, out_features in LAYERS:
            row(f"{name}, forward + backward", layer_pair(torch, function, shape, out_features, rng))
    if args.rows not in ("all", "epoch"):
        common.print_table(["case", "minigrad ms", "torch ms", "ratio"], rows)
        return

    steps = args.epoch_images // 64
    run_minigrad, run_torch = step_pair(torch, MNIST_CNN, 64, rng)
    epoch = (lambda: [run_minigrad() for _ in range(steps)],
             None if run_torch is None else (lambda: [run_torch() for _ in range(steps)]))
    row(f"mnist_cnn epoch, {steps} steps of 64", epoch, repeats=3)
    common.print_table(["case", "minigrad ms", "torch ms", "ratio"], rows)


if __name__ == "__main__":
    main()
