#!/bin/bash
# usage: run_set.sh <prefix>: the sixth round's runs, 1 thread and 2 threads (README.md in this folder).
cd "$(dirname "$0")/../../.."
P=benchmarks/raw/round6/$1
B="env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE .venv/bin/python benchmarks"
date -u +%H:%M > ${P}_started.txt
git rev-parse --short HEAD > ${P}_commit.txt
$B/bench_conv.py --threads 1 --resnet18 --batch18 32 > ${P}_conv_t1_resnet18.txt 2>&1
$B/bench_conv.py --threads 1 > ${P}_conv_t1_a.txt 2>&1
$B/bench_conv.py --threads 1 > ${P}_conv_t1_b.txt 2>&1
for i in 1 2 3; do $B/bench_resnet_step.py --threads 1 > ${P}_step_t1_$i.txt 2>&1; done
$B/bench_resnet_step.py --threads 1 --memory > ${P}_step_t1_memory.txt 2>&1
$B/bench_mlp_epoch.py --threads 1 > ${P}_mlp_t1.txt 2>&1
$B/bench_conv.py --threads 2 --only minigrad > ${P}_conv_t2_minigrad.txt 2>&1
$B/bench_conv.py --threads 2 --only torch > ${P}_conv_t2_torch.txt 2>&1
$B/bench_conv.py --threads 2 --blocks > ${P}_conv_t2_blocks.txt 2>&1
$B/bench_resnet_step.py --threads 2 --only minigrad > ${P}_step_t2_minigrad.txt 2>&1
$B/bench_resnet_step.py --threads 2 --only torch > ${P}_step_t2_torch.txt 2>&1
if [ -n "$BATCH128" ]; then $B/bench_conv.py --threads 1 --resnet18 --batch18 128 > ${P}_conv_t1_resnet18_b128.txt 2>&1; fi
date -u +%H:%M > ${P}_finished.txt
