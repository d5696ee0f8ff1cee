#!/usr/bin/env bash
# The paper-scale plan of docs/scale.md, from sweep's cost estimate (calibrated on the
# reference machine's measured per-cell times, run/src/shards.cpp): each paper config at
# 25 samples over 4K-128K (and up to 1M on the mechanistic model), its core-hours, its
# longest cell, the memory a task needs, and the wall time on 1, 16, 64 and 256 nodes of 64
# cores (32 two-thread tasks a node, shards balanced by cost).
#   bash scripts/scale-plan.sh [ATTNBENCH]
set -euo pipefail
cd "$(dirname "$0")/.."
exe=${1:-build/release/attnbench}
lengths_trained='[4096,8192,16384,32768,65536,131072]'
lengths_mech='[4096,8192,16384,32768,65536,131072,262144,524288,1048576]'
printf '| config | model | lengths | cells | core-hours | longest cell | memory a task | wall, 1 node | 16 nodes | 64 nodes | 256 nodes |\n'
printf '|---|---|---|---|---|---|---|---|---|---|---|\n'
row() {
  local config=$1 model=$2 lengths=$3 label=$4
  shift 4
  local out
  if ! out=$("$exe" -q sweep "$config" --slurm --shards 1 --out /tmp/attnbench-scale-plan --dry-run \
    --set samples=25 --set "context_lengths=$lengths" "$@" 2>&1); then
    # A task that cannot fill the longest lengths (its vocabulary runs out): the row
    # says so and stops at 128K.
    label="4K-128K ($(sed -n 's/.*task \([a-z0-9_]*\) cannot build a sample of \([0-9]*\) tokens.*/\1 cannot build \2/p' <<< "$out"))"
    if ! out=$("$exe" -q sweep "$config" --slurm --shards 1 --out /tmp/attnbench-scale-plan --dry-run \
      --set samples=25 --set "context_lengths=$lengths_trained" "$@" 2>&1); then
      printf '| %s | %s | not estimated: %s |\n' "$config" "$model" "$(sed 's/^\[error\] //; s/|/\\|/g' <<< "$out" | head -1)"
      return
    fi
  fi
  local cells seconds longest mem
  cells=$(sed -n 's/.*: \([0-9]*\) cells in .*/\1/p' <<< "$out" | head -1)
  seconds=$(sed -n 's/.*reference machine (\([0-9]*\) s,.*/\1/p' <<< "$out" | head -1)
  longest=$(sed -n 's/.*longest cell \([0-9]*\) s.*/\1/p' <<< "$out" | head -1)
  mem=$(sed -n 's/^memory per task: about \([0-9.]*\) GiB.*/\1/p' <<< "$out")
  awk -v c="$config" -v m="$model" -v l="$label" -v n="$cells" -v s="$seconds" -v lc="$longest" -v mem="$mem" 'BEGIN {
    split("1 16 64 256", nodes, " ");
    line = sprintf("| %s | %s | %s | %d | %.0f | %.1f h | %.1f GiB |", c, m, l, n, 2 * s / 3600, lc / 3600, mem);
    for (i = 1; i <= 4; ++i) {
      w = s / (32 * nodes[i]); if (w < lc) w = lc;
      line = line sprintf(" %.1f h |", w / 3600);
    }
    print line }'
}
for f in configs/papers/*.json; do
  row "$f" mechanistic "$lengths_mech" "4K-1M"
done
for f in configs/papers/*.json; do
  row "$f" "trained (models/niah-2x128)" "$lengths_trained" "4K-128K" --set model.kind=trained --set model.weights=models/niah-2x128
done
