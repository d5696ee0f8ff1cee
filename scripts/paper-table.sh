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
# A table whose policies need calibrated files (tca's budgets) lists the calibrations in
# configs/papers/NAME.calibrate, one `attnbench calibrate` argument line each.
if [[ -f configs/papers/$name.calibrate ]]; then
  while read -r line; do
    [[ -z $line || $line == \#* ]] && continue
    read -ra args <<< "$line"
    for ((i = 0; i < ${#args[@]}; ++i)); do
      [[ ${args[i]} == --out ]] && mkdir -p "$(dirname "${args[i + 1]}")"
    done
    $build/attnbench calibrate "${args[@]}" > /dev/null
  done < "configs/papers/$name.calibrate"
fi
$build/attnbench run "$config" --out "$run" "$@" > /dev/null
$build/attnbench report "$run" --out "results/papers/$name"
