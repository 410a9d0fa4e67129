"""One ResNet-20 training step (CIFAR-10 shape, float32): minigrad vs PyTorch, same threads.

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE .venv/bin/python benchmarks/bench_resnet_step.py
    ... bench_resnet_step.py --profile        # cProfile one minigrad step, top functions by own time

A step = zero_grad, forward, cross-entropy loss, backward, SGD(momentum 0.9) update.
The PyTorch model below is the same architecture as minigrad.models.resnet20
(3x3 convs without bias, BatchNorm, ReLU, 1x1 projection shortcuts, global
average pool, fc); only time is compared, so the weights need not match.
"""
import cProfile
import json
import pstats
import subprocess
import sys

import numpy

import common


def torch_resnet20(torch, num_classes=10):
    nn = torch.nn

    class Block(nn.Module):
        def __init__(self, in_planes, planes, stride):
            super().__init__()
            self.conv1 = nn.Conv2d(in_planes, planes, 3, stride, 1, bias=False)
            self.bn1 = nn.BatchNorm2d(planes)
            self.conv2 = nn.Conv2d(planes, planes, 3, 1, 1, bias=False)
            self.bn2 = nn.BatchNorm2d(planes)
            self.shortcut = nn.Identity()
            if stride != 1 or in_planes != planes:
                self.shortcut = nn.Sequential(nn.Conv2d(in_planes, planes, 1, stride, bias=False), nn.BatchNorm2d(planes))

        def forward(self, x):
            out = torch.relu(self.bn1(self.conv1(x)))
            return torch.relu(self.bn2(self.conv2(out)) + self.shortcut(x))

    layers = [nn.Conv2d(3, 16, 3, 1, 1, bias=False), nn.BatchNorm2d(16), nn.ReLU()]
    in_planes = 16
    for stage, width in enumerate([16, 32, 64]):
        for b in range(3):
            layers.append(Block(in_planes, width, 2 if (stage > 0 and b == 0) else 1))
            in_planes = width
    layers += [nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(64, num_classes)]
    return nn.Sequential(*layers)


def argparse_hidden():
    import argparse
    return argparse.SUPPRESS


def first_step_rss(args, side):
    """Peak RSS added by the first training step of `side`, measured in a fresh child process.

    In this process both allocators already hold the memory from earlier steps
    (an RSS delta would read ~0), so a child builds the model and data, runs a
    tiny convolution on each side (loads Numba's and oneDNN's code), then runs
    ONE step between resetting and reading the peak RSS.
    """
    command = [sys.executable, __file__, "--memory-child", side, "--threads", str(args.threads),
               "--batch", str(args.batch), "--device", args.device, "--conv", args.conv] + (["--reference"] if args.reference else [])
    result = subprocess.run(command, capture_output=True, text=True)
    lines = [line for line in result.stdout.splitlines() if line.startswith("{")]
    return json.loads(lines[-1])["rss_mib"] if lines else None


def main():
    p = common.parser(__doc__.splitlines()[0])
    p.add_argument("--batch", type=int, default=128)
    p.add_argument("--profile", action="store_true", help="cProfile one minigrad step and print the top 30")
    p.add_argument("--memory-child", choices=["minigrad", "torch"], help=argparse_hidden())
    p.set_defaults(repeats=5)
    args = p.parse_args()
    torch = common.setup(args)
    import minigrad
    from minigrad.models.resnet import resnet20
    from minigrad.nn.functional import cross_entropy
    from minigrad.ops.conv import conv2d

    rng = numpy.random.default_rng(0)
    images = rng.standard_normal((args.batch, 3, 32, 32)).astype(numpy.float32)
    labels = rng.integers(0, 10, size=args.batch)

    model = resnet20().to(args.device) if args.device != "cpu" else resnet20()
    optimizer = minigrad.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    x_m, y_m = common.to_device_minigrad(images, args.device), common.to_device_minigrad(labels, args.device)

    if torch is not None:
        torch_model = torch_resnet20(torch).to("cuda" if args.device == "gpu" else "cpu")
        torch_optimizer = torch.optim.SGD(torch_model.parameters(), lr=0.01, momentum=0.9)
        x_t, y_t = common.to_device_torch(torch, images, args.device), common.to_device_torch(torch, labels, args.device)

    def step_minigrad():
        optimizer.zero_grad()
        loss = cross_entropy(model(x_m), y_m)
        loss.backward()
        optimizer.step()

    def step_torch():
        torch_optimizer.zero_grad()
        loss = torch.nn.functional.cross_entropy(torch_model(x_t), y_t)
        loss.backward()
        torch_optimizer.step()

    if args.memory_child:      # a fresh process: peak RSS of its FIRST step (see first_step_rss)
        step = step_minigrad if args.memory_child == "minigrad" else step_torch
        # Load the kernels first (Numba's compiled code, oneDNN's), with a tiny conv on both
        # sides, so that the figure is the step's memory, not the one-off cost of loading code.
        tiny = numpy.ones((2, 3, 8, 8), numpy.float32)
        conv2d(minigrad.tensor(tiny, requires_grad=True), minigrad.tensor(numpy.ones((2, 3, 3, 3), numpy.float32)),
               padding=1).sum().backward()
        torch.nn.functional.conv2d(torch.tensor(tiny, requires_grad=True), torch.ones(2, 3, 3, 3), padding=1).sum().backward()
        print(json.dumps({"rss_mib": common.peak_rss_mib(step), "tracemalloc_mib": None}))
        return

    if args.profile:
        step_minigrad()                                   # compile / warm up first
        profiler = cProfile.Profile()
        profiler.enable()
        step_minigrad()
        profiler.disable()
        print(f"\ncProfile of one minigrad ResNet-20 step, batch {args.batch} (sorted by own time)")
        pstats.Stats(profiler).sort_stats("tottime").print_stats(30)
        return

    ours, theirs = common.time_pair(step_minigrad, step_torch, args)
    headers = ["ResNet-20 training step", "minigrad ms", "torch ms", "ratio"]
    ratio = "n/a (--only)" if ours is None or theirs is None else f"{ours / theirs:.2f}"
    row = [f"batch {args.batch}, SGD momentum", "-" if ours is None else common.ms(ours),
           "-" if theirs is None else common.ms(theirs), ratio]
    if args.memory:
        headers += ["mg tracemalloc MiB", "mg first-step RSS MiB", "torch first-step RSS MiB"]
        common.clear_workspace()
        row += [common.fmt_mib(common.peak_tracemalloc_mib(step_minigrad)),
                common.fmt_mib(first_step_rss(args, "minigrad")), common.fmt_mib(first_step_rss(args, "torch"))]
    print()
    common.print_table(headers, [row])


if __name__ == "__main__":
    main()
