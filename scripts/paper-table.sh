#!/usr/bin/env bash
# One paper table, one command: runs configs/papers/NAME.json and writes its report
# (tables as markdown and CSV, plots, report.md) to results/papers/NAME/.
#
#   bash scripts/paper-table.sh NAME [--set PATH=VALUE]...   # e.g. --set samples=20
#
# The run folder itself goes to build/papers/NAME (not committed); report.md names the
# commit and machine it came from. docs/papers.md sets each table beside the paper's.
set -euo pipefail
cd "$(dirname "$0")/.."
name=${1:?usage: bash scripts/paper-table.sh NAME [--set PATH=VALUE]...}
shift
config=configs/papers/$name.json
[[ -f $config ]] || { echo "paper-table: no $config (see configs/papers/)" >&2; exit 3; }
build=build/release
[[ -x $build/attnbench ]] || { echo "paper-table: build $build first (README)" >&2; exit 2; }
run=build/papers/$name
rm -rf "$run" "results/papers/$name"
$build/attnbench run "$config" --out "$run" "$@" > /dev/null
$build/attnbench report "$run" --out "results/papers/$name"
