"""A/B of the fifth round's fused ops, 1 thread: batch norm + ReLU (`bn(x, relu=True)`) and relu(a + b)
(`add_relu`) against the separate ops they replace.

Part 1, one process: forward + backward of one batch norm + ReLU pair, fused and separate.
Part 2, the ResNet-20 step (`bench_resnet_step.py --threads 1 --memory`, minigrad against torch) with
neither fusion, with the batch norm one only, and with both, in that order, two rounds.
Run from the repository root:
    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE .venv/bin/python benchmarks/raw/round5/adhoc/fused_ops_ab.py
"""
import subprocess
import sys

PAIRS = """
import time, numpy, numba
from threadpoolctl import threadpool_limits
threadpool_limits(1); numba.set_num_threads(1)
import minigrad
from minigrad.ops.activation import relu
from minigrad.ops.norm import batch_norm, batch_norm_relu
rng = numpy.random.default_rng(0)
def median_ms(step):
    for _ in range(3): step()
    times = []
    for _ in range(20):
        start = time.perf_counter(); step(); times.append(time.perf_counter() - start)
    return 1e3 * numpy.median(times)
for shape in [(128, 16, 32, 32), (128, 32, 16, 16), (128, 64, 8, 8)]:
    x = minigrad.tensor(rng.standard_normal(shape).astype(numpy.float32), requires_grad=True)
    g = minigrad.tensor(numpy.ones(shape[1], numpy.float32), requires_grad=True)
    b = minigrad.tensor(numpy.zeros(shape[1], numpy.float32), requires_grad=True)
    dz = rng.standard_normal(shape).astype(numpy.float32)
    def fused():
        x.grad = g.grad = b.grad = None
        batch_norm_relu(x, None, None, g, b, training=True).backward(dz)
    def separate():
        x.grad = g.grad = b.grad = None
        relu(batch_norm(x, None, None, g, b, training=True)).backward(dz)
    print("  bn + relu %s: fused %.2f ms, separate %.2f ms" % ("x".join(map(str, shape)), median_ms(fused), median_ms(separate)))
"""
STEP = ("import sys; sys.argv = ['bench_resnet_step.py', '--threads', '1', '--memory']; sys.path.insert(0, 'benchmarks')\n"
        "import minigrad.models.resnet as resnet, minigrad.nn.normalization as normalization\n"
        "from minigrad.ops.activation import relu\n"
        "if not {add}:\n"
        "    resnet.add_relu = lambda a, b: relu(a + b)\n"
        "if not {bn}:\n"
        "    fused_forward = normalization._BatchNorm.forward\n"
        "    normalization._BatchNorm.forward = lambda self, x, relu_after=False, **k: (\n"
        "        relu(fused_forward(self, x)) if k.get('relu') else fused_forward(self, x))\n"
        "import bench_resnet_step; bench_resnet_step.main()")

print("part 1, one batch norm + ReLU pair, forward + backward:")
print(subprocess.run([sys.executable, "-c", PAIRS], capture_output=True, text=True, check=True).stdout, end="")
print("part 2, ResNet-20 step: minigrad ms, torch ms, ratio, tracemalloc MiB, first-step RSS minigrad / torch MiB")
for round_number in range(2):
    for bn, add, name in [(False, False, "no fusion"), (True, False, "bn + relu fused"), (True, True, "both fused")]:
        out = subprocess.run([sys.executable, "-c", STEP.format(bn=bn, add=add)], capture_output=True, text=True,
                             check=True).stdout.strip().splitlines()[-1].split()
        print(f"  round {round_number + 1}, {name:16s}: {' '.join(out[4:])}", flush=True)
