"""Per-op overhead: microseconds per call on tiny tensors, where Python bookkeeping dominates.

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE .venv/bin/python benchmarks/bench_ops_overhead.py

`a + b` on (4,) tensors, without and with autograd recording, and a Linear
forward+backward on a (4, 8) batch. Each number is the median over --repeats
rounds of the mean over --calls calls.
"""
import statistics
import time

import numpy

import common


def per_call_us(run, calls, repeats):
    run()
    rounds = []
    for _ in range(repeats):
        start = time.perf_counter()
        for _ in range(calls):
            run()
        rounds.append((time.perf_counter() - start) / calls)
    return 1e6 * statistics.median(rounds)


def main():
    p = common.parser(__doc__.splitlines()[0])
    p.add_argument("--calls", type=int, default=2000)
    args = p.parse_args()
    torch = common.setup(args)
    import minigrad
    from minigrad import nn

    a_np, b_np = numpy.ones(4, numpy.float32), numpy.ones(4, numpy.float32)
    a, b = common.to_device_minigrad(a_np, args.device), common.to_device_minigrad(b_np, args.device)
    ag, bg = common.to_device_minigrad(a_np, args.device, True), common.to_device_minigrad(b_np, args.device, True)
    th = lambda array, grad=False: None if torch is None else common.to_device_torch(torch, array, args.device, grad)  # noqa: E731
    at, bt, atg, btg = th(a_np), th(b_np), th(a_np, True), th(b_np, True)

    x_np = numpy.ones((4, 8), numpy.float32)
    layer = nn.Linear(8, 8)
    if args.device != "cpu":
        layer = layer.to(args.device)
    x = common.to_device_minigrad(x_np, args.device)
    torch_layer = None if torch is None else torch.nn.Linear(8, 8).to("cuda" if args.device == "gpu" else "cpu")
    xt = th(x_np)

    def linear_minigrad():
        layer.zero_grad()
        layer(x).sum().backward()

    def linear_torch():
        torch_layer.zero_grad()
        torch_layer(xt).sum().backward()

    cases = [
        ("a + b, (4,), no grad", lambda: a + b, lambda: at + bt),
        ("a + b, (4,), requires_grad", lambda: ag + bg, lambda: atg + btg),
        ("Linear(8, 8) fwd+bwd, (4, 8)", linear_minigrad, linear_torch),
    ]
    rows = []
    for name, run_minigrad, run_torch in cases:
        ours = None if args.only == "torch" else per_call_us(run_minigrad, args.calls, args.repeats)
        theirs = None if torch is None else per_call_us(run_torch, args.calls, args.repeats)
        rows.append([name, "-" if ours is None else f"{ours:.1f}", "-" if theirs is None else f"{theirs:.1f}",
                     f"{ours / theirs:.2f}" if ours and theirs else "n/a (--only)"])
    print()
    common.print_table(["op", "minigrad us/call", "torch us/call", "ratio"], rows)
    del minigrad


if __name__ == "__main__":
    main()
