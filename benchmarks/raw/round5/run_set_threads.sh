#!/bin/bash
# usage: run_set_threads.sh <prefix>: the 2-thread runs (and a 1-thread check) of the fifth round's
# final code; same naming as run_set.sh (README.md in this folder).
cd "$(dirname "$0")/../../.."
P=benchmarks/raw/round5/$1
B="env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE .venv/bin/python benchmarks"
date -u +%H:%M > ${P}_started.txt
$B/bench_conv.py --threads 1 > ${P}_conv_t1.txt 2>&1
$B/bench_conv.py --threads 2 --only minigrad > ${P}_conv_t2_minigrad.txt 2>&1
$B/bench_conv.py --threads 2 --only torch > ${P}_conv_t2_torch.txt 2>&1
for i in 1 2; do $B/bench_resnet_step.py --threads 1 > ${P}_step_t1_$i.txt 2>&1; done
$B/bench_resnet_step.py --threads 2 --memory > ${P}_step_t2_one_process.txt 2>&1
for i in 1 2; do
  $B/bench_resnet_step.py --threads 2 --only minigrad > ${P}_step_t2_minigrad_$i.txt 2>&1
  $B/bench_resnet_step.py --threads 2 --only torch > ${P}_step_t2_torch_$i.txt 2>&1
done
$B/bench_mlp_epoch.py --threads 2 --only minigrad > ${P}_mlp_t2_minigrad.txt 2>&1
$B/bench_mlp_epoch.py --threads 2 --only torch > ${P}_mlp_t2_torch.txt 2>&1
date -u +%H:%M > ${P}_finished.txt
