"""A/B of the fifth round's two thread changes, at 2 threads (minigrad alone, torch not imported):

  one_blas_thread: the Winograd weight transforms on one BLAS thread (on) or on BLAS's two (off), timed
                   on the 64->64 8x8 layer (forward + backward, batch 128) and on the ResNet-20 step;
  chunks_for:      at least one image chunk per block thread (on) or one chunk when the batch fits (off),
                   timed on the 1x1 32->64 stride-2 shortcut.

Three rounds, on/off alternating within each. Run from the repository root:
    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE .venv/bin/python benchmarks/raw/round5/adhoc/threads_ab.py
"""
import subprocess
import sys

LAYER = """
import contextlib, time, numpy, numba
from threadpoolctl import threadpool_limits
threadpool_limits(2); numba.set_num_threads(2)
import minigrad
from minigrad.ops import conv, cpu_threads, winograd
if not {on}:
    winograd.one_blas_thread = lambda device: contextlib.nullcontext()
    conv.chunks_for = lambda n, size, budget, device: cpu_threads.image_chunks(n, size, budget)
rng = numpy.random.default_rng(0)
def median_ms(c_in, c_out, size, kernel, stride):
    x = minigrad.tensor(rng.standard_normal((128, c_in, size, size)).astype(numpy.float32), requires_grad=True)
    w = minigrad.tensor(rng.standard_normal((c_out, c_in, kernel, kernel)).astype(numpy.float32) * 0.1, requires_grad=True)
    dy = rng.standard_normal((128, c_out, size // stride, size // stride)).astype(numpy.float32)
    def step():
        x.grad = w.grad = None
        conv.conv2d(x, w, stride=stride, padding=kernel // 2).backward(dy)
    for _ in range(3): step()
    times = []
    for _ in range(15):
        start = time.perf_counter(); step(); times.append(time.perf_counter() - start)
    return 1e3 * numpy.median(times)
print("64->64 8x8 k3 s1 %.2f ms | 32->64 16x16 k1 s2 %.2f ms" % (median_ms(64, 64, 8, 3, 1), median_ms(32, 64, 16, 1, 2)))
"""
STEP = ("import sys, contextlib; sys.argv = ['bench_resnet_step.py', '--threads', '2', '--only', 'minigrad']; "
        "sys.path.insert(0, 'benchmarks'); from minigrad.ops import conv, cpu_threads, winograd\n"
        "if not {on}:\n"
        "    winograd.one_blas_thread = lambda device: contextlib.nullcontext()\n"
        "    conv.chunks_for = lambda n, size, budget, device: cpu_threads.image_chunks(n, size, budget)\n"
        "import bench_resnet_step; bench_resnet_step.main()")

for round_number in range(3):
    for on in (True, False):
        layer = subprocess.run([sys.executable, "-c", LAYER.format(on=on)], capture_output=True, text=True, check=True)
        step = subprocess.run([sys.executable, "-c", STEP.format(on=on)], capture_output=True, text=True, check=True)
        print(f"round {round_number + 1}, thread changes {'on ' if on else 'off'}: {layer.stdout.strip()} | "
              f"step {step.stdout.strip().splitlines()[-1].split()[4]} ms", flush=True)
