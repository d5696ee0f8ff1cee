#!/usr/bin/env bash
# Packs what a training call needs on the GPU machine beyond the repository: the release
# attnbench binary (for `attnbench corpus`) and the shared libraries it needs there
# (Highway, oneTBB, spdlog, fmt), about 5 MB, in build/train-pack (or DIR).
#   bash scripts/train/pack.sh [DIR]
# A call carries the repository (about 7 MB), this pack and the checkpoint (51 MB for the
# default model in float32): together under the 64 MiB that may travel.
set -euo pipefail
cd "$(dirname "$0")/../.."
dir=${1:-build/train-pack}
cmake --preset release > /dev/null && cmake --build --preset release --target attnbench > /dev/null
rm -rf "$dir" && mkdir -p "$dir/lib"
cp build/release/attnbench "$dir/"
ldd build/release/attnbench | awk '/=> \// {print $3}' | grep -E 'libhwy|libtbb|libspdlog|libfmt' | sort -u |
  xargs -r cp -L -t "$dir/lib"
du -sh "$dir"
