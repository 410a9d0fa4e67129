"""A/B of KEEP_COLS_UP_TO (minigrad/ops/conv.py): bench_conv.py's ResNet-20 layers with strided layers
keeping cols from forward (the default, 4) and rebuilding it in backward (0), three rounds alternating.

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE .venv/bin/python benchmarks/raw/round5/adhoc/keep_cols_ab.py
"""
import subprocess
import sys

RUN = ("import sys; sys.argv = ['bench_conv.py', '--threads', '1', '--repeats', '15']; "
       "sys.path.insert(0, 'benchmarks'); import minigrad.ops.conv as conv; conv.KEEP_COLS_UP_TO = {limit}; "
       "import bench_conv; bench_conv.main()")

for round_number in range(3):
    for limit in (4, 0):
        output = subprocess.run([sys.executable, "-c", RUN.format(limit=limit)], capture_output=True, text=True,
                                check=True).stdout
        table = output.split("layer  ")[1].splitlines()
        print(f"round {round_number + 1}, KEEP_COLS_UP_TO = {limit}:")
        print("\n".join("  " + line for line in table if "k3 s2" in line), flush=True)
