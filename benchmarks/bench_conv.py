"""conv2d, max pool and batch norm, forward + backward: minigrad vs PyTorch, layer by layer.

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE .venv/bin/python benchmarks/bench_conv.py
    ... bench_conv.py --resnet18                   # also ResNet-18's (CIFAR variant) layers, batch 128
    ... bench_conv.py --resnet18 --batch18 32      # ... at batch 32 (four times quicker)
    ... bench_conv.py --speedrun                   # also the airbench94 (CIFAR-10 speed record) 3x3 convs, batch 512
    ... bench_conv.py --speedrun --batch-speedrun 64

For every DISTINCT convolution of ResNet-20 (CIFAR, 32x32 input) at --batch,
one call = y = conv2d(x, w); y.backward(dy) with fresh gradients, float32.
The ratio column is minigrad time / PyTorch time (lower is better, 1 = parity).
"""
import numpy

import common


def resnet_conv_layers(widths, image=32):
    """Distinct (C_in, F, H, kernel, stride) of a CIFAR ResNet: stem, 3x3 convs, 1x1 shortcuts."""
    layers = [(3, widths[0], image, 3, 1)]
    size, in_planes = image, widths[0]
    for stage, width in enumerate(widths):
        stride = 1 if stage == 0 else 2
        layers.append((in_planes, width, size, 3, stride))              # first conv of the stage
        if stride != 1 or in_planes != width:
            layers.append((in_planes, width, size, 1, stride))          # projection shortcut
        size //= stride
        layers.append((width, width, size, 3, 1))                       # every other conv
        in_planes = width
    return list(dict.fromkeys(layers))


def speedrun_conv_layers(widths=(64, 256, 256), whiten_width=24, image=32):
    """Distinct (C_in, F, H, kernel, stride) of airbench94's 3x3 convs (minigrad/models/airbench.py).

    The 2x2 whitening conv (no padding) leaves image - 1 = 31; each group runs conv1 at its input
    size, max-pools by 2 (floor), runs conv2 at the pooled size: 24->64 @31, 64->64 @15,
    64->256 @15, 256->256 @7 (twice: group 2's conv2 and group 3's conv1), 256->256 @3.
    """
    layers, size, c_in = [], image - 1, whiten_width
    for width in widths:
        layers.append((c_in, width, size, 3, 1))                        # conv1, before the pool
        size //= 2
        layers.append((width, width, size, 3, 1))                       # conv2, after the pool
        c_in = width
    return list(dict.fromkeys(layers))


def main():
    p = common.parser(__doc__.splitlines()[0])
    p.add_argument("--batch", type=int, default=128, help="batch size for ResNet-20's layers")
    p.add_argument("--resnet18", action="store_true", help="also time ResNet-18's layers")
    p.add_argument("--batch18", type=int, default=128, help="batch size for ResNet-18's layers")
    p.add_argument("--speedrun", action="store_true",
                   help="also time the 3x3 convs of airbench94 (the CIFAR-10 speed-record net, padding 1)")
    p.add_argument("--batch-speedrun", type=int, default=512, help="batch size for the airbench94 layers")
    args = p.parse_args()
    torch = common.setup(args)
    import minigrad
    from minigrad.ops.conv import conv2d
    from minigrad.ops.norm import batch_norm
    from minigrad.ops.pool import max_pool2d

    rng = numpy.random.default_rng(0)
    mg = lambda a, g=False: common.to_device_minigrad(a, args.device, g)        # noqa: E731
    th = lambda a, g=False: None if torch is None else common.to_device_torch(torch, a, args.device, g)  # noqa: E731
    headers = ["layer", "minigrad ms", "torch ms", "ratio"] + (["mg tracemalloc MiB"] if args.memory else [])

    def measure(name, build):
        """build() -> (run_minigrad, run_torch); append one table row."""
        run_minigrad, run_torch = build()
        ours, theirs = common.time_pair(run_minigrad, run_torch, args)
        row = [name, common.ms(ours) if ours else "-", common.ms(theirs) if theirs else "-",
               f"{ours / theirs:.2f}" if ours and theirs else "n/a (--only)"]
        if args.memory:                  # torch's memory: see bench_resnet_step.py --memory
            common.clear_workspace()
            row.append(common.fmt_mib(common.peak_tracemalloc_mib(run_minigrad)))
        print("  " + "  ".join(row), flush=True)
        return row

    def conv_case(n, c, f, size, kernel, stride):
        def build():
            x = rng.standard_normal((n, c, size, size)).astype(numpy.float32)
            w = (rng.standard_normal((f, c, kernel, kernel)) * (2 / (c * kernel * kernel)) ** 0.5).astype(numpy.float32)
            out = (size + 2 * (kernel // 2) - kernel) // stride + 1
            dy = rng.standard_normal((n, f, out, out)).astype(numpy.float32)
            xm, wm, dym = mg(x, True), mg(w, True), mg(dy)
            xt, wt, dyt = th(x, True), th(w, True), th(dy)

            def run_minigrad():
                xm.grad = wm.grad = None
                conv2d(xm, wm, None, stride=stride, padding=kernel // 2).backward(dym)

            def run_torch():
                xt.grad = wt.grad = None
                torch.nn.functional.conv2d(xt, wt, None, stride=stride, padding=kernel // 2).backward(dyt)
            return run_minigrad, run_torch
        return build

    sections = [("ResNet-20", args.batch, resnet_conv_layers([16, 32, 64]))]
    if args.resnet18:
        sections.append(("ResNet-18", args.batch18, resnet_conv_layers([64, 128, 256, 512])))
    if args.speedrun:
        sections.append(("airbench94 (CIFAR-10 speed record)", args.batch_speedrun, speedrun_conv_layers()))
    for title, n, layers in sections:
        print(f"\nconv2d forward+backward, {title} layers, batch {n}, float32")
        rows = [measure(f"{c}->{f} {size}x{size} k{k} s{s}", conv_case(n, c, f, size, k, s))
                for c, f, size, k, s in layers]
        common.print_table(headers, rows)

    def pool_case(n, c, size, kernel, stride, padding):
        def build():
            x = rng.standard_normal((n, c, size, size)).astype(numpy.float32)
            out = (size + 2 * padding - kernel) // stride + 1
            dy = rng.standard_normal((n, c, out, out)).astype(numpy.float32)
            xm, dym, xt, dyt = mg(x, True), mg(dy), th(x, True), th(dy)

            def run_minigrad():
                xm.grad = None
                max_pool2d(xm, kernel, stride, padding).backward(dym)

            def run_torch():
                xt.grad = None
                torch.nn.functional.max_pool2d(xt, kernel, stride, padding).backward(dyt)
            return run_minigrad, run_torch
        return build

    def bn_case(n, c, size):
        def build():
            x = rng.standard_normal((n, c, size, size)).astype(numpy.float32)
            gamma, beta = numpy.ones(c, numpy.float32), numpy.zeros(c, numpy.float32)
            dy = rng.standard_normal(x.shape).astype(numpy.float32)
            xm, gm, bm, dym = mg(x, True), mg(gamma, True), mg(beta, True), mg(dy)
            xt, gt, bt, dyt = th(x, True), th(gamma, True), th(beta, True), th(dy)
            mean_m, var_m = mg(numpy.zeros(c, numpy.float32)), mg(numpy.ones(c, numpy.float32))
            mean_t, var_t = th(numpy.zeros(c, numpy.float32)), th(numpy.ones(c, numpy.float32))

            def run_minigrad():
                xm.grad = gm.grad = bm.grad = None
                batch_norm(xm, mean_m, var_m, gm, bm, training=True).backward(dym)

            def run_torch():
                xt.grad = gt.grad = bt.grad = None
                torch.nn.functional.batch_norm(xt, mean_t, var_t, gt, bt, training=True).backward(dyt)
            return run_minigrad, run_torch
        return build

    n = args.batch
    print(f"\nmax_pool2d and batch_norm (training) forward+backward, batch {n}, float32")
    rows = [measure(f"max_pool k2 s2 {n}x16x32x32", pool_case(n, 16, 32, 2, 2, 0)),
            measure(f"max_pool k3 s2 p1 {n}x64x32x32", pool_case(n, 64, 32, 3, 2, 1)),
            measure(f"batch_norm {n}x16x32x32", bn_case(n, 16, 32)),
            measure(f"batch_norm {n}x64x8x8", bn_case(n, 64, 8))]
    common.print_table(headers, rows)
    del minigrad


if __name__ == "__main__":
    main()
