#!/usr/bin/env bash
# Checks and times the CUDA kernels in one call on a GPU machine (issue 9):
#   bash scripts/gpu-bench.sh [OUT_DIR] [BIN_DIR]        (default results/gpu/latest, build/cuda)
# BIN_DIR holds attnbench_cuda_tests, libattnbench_cuda.so, attnbench and the art plugin:
# built here with the cuda preset when missing, or packed by scripts/gpu-pack.sh on a
# machine that has the build dependencies (with their shared libraries in BIN_DIR/lib).
# Runs the GPU tests, then a subset of them under compute-sanitizer, dumps the synthetic
# model's K/V with `attnbench dump-kv`, and runs scripts/gpu-bench.py (needs PyTorch with
# CUDA). Writes OUT_DIR/tests.json, sanitizer.txt and gpu-bench.json.
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-results/gpu/latest}
bin=${2:-build/cuda}
mkdir -p "$out"
if [ ! -x "$bin/attnbench_cuda_tests" ]; then
  cmake --preset cuda && cmake --build --preset cuda
fi
if [ -d "$bin/lib" ]; then
  export LD_LIBRARY_PATH="$bin/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
fi
nvidia-smi --query-gpu=name,clocks.max.sm,clocks.max.mem --format=csv,noheader | tee "$out/gpu.txt"

echo "== GPU tests"
"$bin/attnbench_cuda_tests" --gtest_output=json:"$out/tests.json" > "$out/tests.txt" 2>&1 || true
grep -E "^\[  (PASSED|FAILED|SKIPPED) |^\[  FAILED  \]|Failure|error" "$out/tests.txt" | head -40

echo "== compute-sanitizer (memcheck) on a subset of the tests"
sanitizer=$(command -v compute-sanitizer || echo /usr/local/cuda/bin/compute-sanitizer)
rc=0
"$sanitizer" --tool memcheck --error-exitcode 9 "$bin/attnbench_cuda_tests" \
  --gtest_filter='CudaSparse.*:CudaArt.*:CudaSelect.*:Shapes/CudaDense.MatchesFloat64AtEveryLengthAndSplit/d128_gqa4_fp16' \
  > "$out/sanitizer.txt" 2>&1 || rc=$?
echo "compute-sanitizer exit $rc" | tee -a "$out/sanitizer.txt"
grep -E "ERROR SUMMARY|PASSED|FAILED" "$out/sanitizer.txt" | tail -4

echo "== dump the synthetic model's K/V, then time"
dump=$(mktemp -d)
# The profile by path: on the GPU machine the binary's built-in profile folder (this
# machine's source tree) does not exist.
"$bin/attnbench" dump-kv configs/papers/art-policies.json --set model.profile=../profiles/default.json \
  --task niah_single_2 --length 32768 --out "$dump"
python3 scripts/gpu-bench.py "$bin/libattnbench_cuda.so" "$out" "$dump"
rm -rf "$dump"
