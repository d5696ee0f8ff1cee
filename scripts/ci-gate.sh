#!/usr/bin/env bash
# The CI throughput gate: runs the kernel benchmarks' decode cases (5 repetitions) and the
# fixed run configs/ci-gate.json, then compares both with the baseline of this kind of
# machine in results/ci-baseline/KIND/ through `attnbench compare`; exits non-zero on a
# regression.
#
#   bash scripts/ci-gate.sh             # check (after a Release build)
#   bash scripts/ci-gate.sh --refresh   # measure and write this kind's baseline, on purpose
#
# A kind of machine is the CPU vendor and the SIMD target the kernels run
# (AuthenticAMD-AVX3, GenuineIntel-AVX2, ...): speed ratios do not carry between kinds
# (with the same kernels the decode's ratio to the old probe was 0.74 on the first baseline's
# AMD EPYC, 0.47 on an AMD EPYC with AVX-512 and 0.50 on an Intel Xeon with AVX-512), so speed is
# judged only against a baseline from the same kind. On a kind with
# no baseline the speed figures are printed beside another kind's, not judged, and the
# gate says so; accuracy is judged against any kind (the SIMD target changes only the
# order of a dot product's sums, which could flip a near-tie between two answers, so a
# kind's first run that fails on accuracy alone deserves a look before a refresh).
#
# What is compared:
# - kernels: ceiling_ratio of decode fp16, GQA 1, 32K tokens, 1 thread (the decode step's
#   bytes per second over a pass of the read ceiling's best method run just before each
#   step, in the same process), threshold 10%. GQA 1 is memory-bound, so the ratio carries
#   over between machines of one kind and similar memory (GQA 4 turns compute-bound on
#   machines with more bandwidth, so it is not gated). When the ceiling itself differs
#   from the baseline's by more than 30% either way, the machine is not like the
#   baseline's and the threshold widens to 25%, with a note saying so. A baseline recorded
#   before the read ceiling (its kernels.json has no ceiling_ratio) is not judged on
#   kernel speed until it is refreshed;
# - run: accuracy (1 point) and speedup_vs_dense of tokenselect and quest (per-sample
#   ratios to dense in the same run, compared sample by sample), threshold 30%: cells
#   run one after another, so machine drift between the dense cell and the others moves
#   these by up to 20% on unchanged code; the kernel case carries the finer bar.
# A worse figure fails only when it is also 3 standard errors of its repetitions out, so a
# noisy machine reports "noisy" instead of failing.
set -euo pipefail
cd "$(dirname "$0")/.."
build=build/release
baselines=results/ci-baseline
out=build/ci-gate
refresh=0
[[ "${1:-}" == "--refresh" ]] && refresh=1
[[ -x $build/attnbench && -x $build/attnbench_bench ]] || { echo "ci-gate: build $build first" >&2; exit 2; }

rm -rf "$out"
mkdir -p "$out"
bench_status=0
$build/attnbench_bench --benchmark_filter='^decode/fp16/gqa1/ctx:32768/threads:1/' \
  --benchmark_repetitions=5 --benchmark_format=json --benchmark_out="$out/kernels.json" > /dev/null 2> "$out/bench.err" ||
  bench_status=$?
cat "$out/bench.err" >&2
(( bench_status == 0 )) || { echo "ci-gate: attnbench_bench failed (exit $bench_status)" >&2; exit 1; }
vendor=$(awk -F': *' '/^vendor_id/ { print $2; exit }' /proc/cpuinfo 2> /dev/null || true)
target=$(sed -n 's/^kernel target //p' "$out/bench.err" | head -n 1)
kind="${vendor:-unknown}-${target:-unknown}"
$build/attnbench -q run configs/ci-gate.json --out "$out/run" > /dev/null

if (( refresh )); then
  rm -rf "${baselines:?}/$kind"
  mkdir -p "$baselines/$kind"
  cp "$out/kernels.json" "$baselines/$kind/kernels.json"
  cp -r "$out/run" "$baselines/$kind/run"
  rm -f "$baselines/$kind/run/.attnbench-lock"
  echo "ci-gate: new baseline for $kind in $baselines/$kind; commit it with the change that explains it"
  exit 0
fi

baseline=$baselines/$kind
gated=1
if [[ ! -d $baseline ]]; then
  gated=0
  others=
  [[ -d $baselines ]] && others=$(find "$baselines" -mindepth 1 -maxdepth 1 -type d -printf '%f\n' | sort)
  [[ -n $others ]] || { echo "ci-gate: no baseline in $baselines (run bash scripts/ci-gate.sh --refresh)" >&2; exit 2; }
  baseline=$baselines/$(head -n 1 <<< "$others")
  echo "ci-gate: no baseline for this kind of machine ($kind; there are: $(paste -sd, - <<< "$others"))."
  echo "ci-gate: speed is printed beside $baseline's, not judged; accuracy is judged."
  echo "ci-gate: on such a machine, bash scripts/ci-gate.sh --refresh records its baseline."
fi

kernels_gated=$gated
if (( gated )) && ! grep -q '"ceiling_ratio"' "$baseline/kernels.json"; then
  kernels_gated=0
  echo "ci-gate: $baseline/kernels.json predates the read ceiling (no ceiling_ratio): kernel speed is printed, not"
  echo "ci-gate: judged; bash scripts/ci-gate.sh --refresh on this kind of machine records a new baseline."
fi
status=0
threshold=10
# Slower by more than 30% (new < 0.7 base), or faster by more than 30% (base < new / 1.3).
probe() { $build/attnbench compare "$1" "$2" --metric ceiling_bytes_per_s --threshold "$3" --noise-sigmas 0 > /dev/null; }
if (( kernels_gated )) && { ! probe "$baseline/kernels.json" "$out/kernels.json" 30 || ! probe "$out/kernels.json" "$baseline/kernels.json" 23.1; }; then
  threshold=25
  echo "ci-gate: this machine's read bandwidth differs from the baseline's by more than 30%;"
  echo "ci-gate: the kernel threshold widens to ${threshold}% (refresh the baseline on this kind of machine)"
fi
echo "## Kernels against $baseline/kernels.json$( (( kernels_gated )) || echo ' (not judged)')"
# compare exits 7 on a regression; any other failure is the gate's own and always fails.
rc=0
if (( kernels_gated )); then
  $build/attnbench compare "$baseline/kernels.json" "$out/kernels.json" --metric ceiling_ratio --threshold $threshold || rc=$?
  status=$rc
else
  $build/attnbench compare "$out/kernels.json" "$out/kernels.json" --metric ceiling_ratio --threshold $threshold || rc=$?
  if (( rc != 0 && rc != 7 )); then status=$rc; fi
fi
echo
echo "## configs/ci-gate.json against $baseline/run"
if (( gated )); then
  $build/attnbench compare "$baseline/run" "$out/run" --metric accuracy --metric speedup_vs_dense --threshold 30 ||
    status=$(( status ? status : $? ))
else
  $build/attnbench compare "$baseline/run" "$out/run" --metric accuracy --threshold 30 || status=$(( status ? status : $? ))
  echo "### speedups (another kind of machine: not judged)"
  rc=0
  $build/attnbench compare "$baseline/run" "$out/run" --metric speedup_vs_dense --threshold 30 || rc=$?
  if (( rc != 0 && rc != 7 )); then status=$(( status ? status : rc )); fi
fi
exit $status
