#!/usr/bin/env bash
# The CI throughput gate: runs the kernel benchmarks' decode cases (5 repetitions) and the
# fixed run configs/ci-gate.json, then compares both with the baseline in
# results/ci-baseline/ through `attnbench compare`; exits non-zero on a regression.
#
#   bash scripts/ci-gate.sh             # check (after a Release build)
#   bash scripts/ci-gate.sh --refresh   # measure and write a new baseline, on purpose
#
# What is compared, chosen to be stable across machines like the CI's:
# - kernels: probe_ratio of decode fp16, GQA 1, 32K tokens, 1 thread (the decode step's
#   bytes per second over the read-bandwidth probe run just before each step, in the
#   same process), threshold 10%. GQA 1 is memory-bound, so the ratio carries over
#   between machines of similar memory (GQA 4 turns compute-bound on machines with
#   more bandwidth, so it is not gated). When the probe itself differs from
#   the baseline's by more than 30% either way, the machine is not like the baseline's
#   and the threshold widens to 25%, with a note saying so;
# - run: accuracy (1 point) and speedup_vs_dense of tokenselect and quest (per-sample
#   ratios to dense in the same run, compared sample by sample), threshold 30%: cells
#   run one after another, so machine drift between the dense cell and the others moves
#   these by up to 20% on unchanged code; the kernel case carries the finer bar.
# A worse figure fails only when it is also 3 standard errors of its repetitions out, so a
# noisy machine reports "noisy" instead of failing.
set -euo pipefail
cd "$(dirname "$0")/.."
build=build/release
baseline=results/ci-baseline
out=build/ci-gate
refresh=0
[[ "${1:-}" == "--refresh" ]] && refresh=1
[[ -x $build/attnbench && -x $build/attnbench_bench ]] || { echo "ci-gate: build $build first" >&2; exit 2; }

rm -rf "$out"
mkdir -p "$out"
$build/attnbench_bench --benchmark_filter='^decode/fp16/gqa1/ctx:32768/threads:1/' \
  --benchmark_repetitions=5 --benchmark_format=json --benchmark_out="$out/kernels.json" > /dev/null
$build/attnbench -q run configs/ci-gate.json --out "$out/run" > /dev/null

if (( refresh )); then
  rm -rf "$baseline"
  mkdir -p "$baseline"
  cp "$out/kernels.json" "$baseline/kernels.json"
  cp -r "$out/run" "$baseline/run"
  echo "ci-gate: new baseline in $baseline; commit it with the change that explains it"
  exit 0
fi

status=0
threshold=10
# Slower by more than 30% (new < 0.7 base), or faster by more than 30% (base < new / 1.3).
probe() { $build/attnbench compare "$1" "$2" --metric probe_bytes_per_s --threshold "$3" --noise-sigmas 0 > /dev/null; }
if ! probe "$baseline/kernels.json" "$out/kernels.json" 30 || ! probe "$out/kernels.json" "$baseline/kernels.json" 23.1; then
  threshold=25
  echo "ci-gate: this machine's read bandwidth differs from the baseline's by more than 30%;"
  echo "ci-gate: the kernel threshold widens to ${threshold}% (refresh the baseline on this kind of machine)"
fi
echo "## Kernels against $baseline/kernels.json"
$build/attnbench compare "$baseline/kernels.json" "$out/kernels.json" --metric probe_ratio --threshold $threshold ||
  status=$?
echo
echo "## configs/ci-gate.json against $baseline/run"
$build/attnbench compare "$baseline/run" "$out/run" --metric accuracy --metric speedup_vs_dense --threshold 30 ||
  status=$(( status ? status : $? ))
exit $status
