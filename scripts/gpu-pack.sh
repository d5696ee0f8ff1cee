#!/usr/bin/env bash
# Packs what scripts/gpu-bench.sh runs into one folder for a GPU machine that lacks the
# build dependencies: the cuda preset's binaries, the art plugin and the shared libraries
# they need beyond the C/C++ runtime (Highway, oneTBB, spdlog, fmt) in lib/.
#   bash scripts/gpu-pack.sh [DIR]        (default build/gpu-pack)
set -euo pipefail
cd "$(dirname "$0")/.."
dir=${1:-build/gpu-pack}
cmake --preset cuda > /dev/null && cmake --build --preset cuda
rm -rf "$dir" && mkdir -p "$dir/lib"
cp build/cuda/attnbench_cuda_tests build/cuda/libattnbench_cuda.so build/cuda/attnbench \
  build/cuda/attnbench-plugin-art.so "$dir/"
ldd build/cuda/attnbench_cuda_tests build/cuda/attnbench build/cuda/attnbench-plugin-art.so |
  awk '/=> \// {print $3}' | grep -E 'libhwy|libtbb|libspdlog|libfmt' | sort -u | xargs -r cp -L -t "$dir/lib"
du -sh "$dir"
