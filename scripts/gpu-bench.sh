#!/usr/bin/env bash
# Builds the CUDA decode kernel, checks it and times it, in one call on a GPU machine:
#   bash scripts/gpu-bench.sh [OUT_DIR]      (default results/gpu/latest)
# Needs nvcc (CUDA 12 or later) and PyTorch with CUDA. Writes OUT_DIR/gpu-bench.json
# and prints a summary. scripts/gpu-bench.py says what is measured.
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-results/gpu/latest}
mkdir -p "$out" build/gpu
nvidia-smi --query-gpu=name,clocks.max.sm,clocks.max.mem --format=csv,noheader
nvcc -O3 -arch=sm_90 -std=c++17 -shared -Xcompiler -fPIC -Xptxas -v kernels/cuda/decode.cu \
  -o build/gpu/libattnbench_cuda.so 2> build/gpu/ptxas.txt
grep -E "spill|stack" build/gpu/ptxas.txt | sort | uniq -c
python3 scripts/gpu-bench.py build/gpu/libattnbench_cuda.so "$out"
