#!/usr/bin/env bash
# The papers' main tables on both models at 4K-16K, for the ranking agreement of
# docs/papers.md ("The two models side by side"): TokenSelect's RULER across lengths
# (tokenselect-ruler), ART on each base policy (art-policies) and TCA's headline
# (tca-headline), each run as configs/papers/NAME.json with the context lengths set to
# 4K, 8K and 16K, once on the mechanistic default profile and once on the trained model
# (MODEL, default models/needle-4x128). tca's budgets are calibrated on each model the way
# configs/tca-budgets-default.json was (qa_1, 2 samples), at 16K. Then the rankings:
#
#   bash scripts/papers-two-models.sh [MODEL]
#
# Reports go to results/papers-two-models/{mechanistic,trained}/NAME/ and the rankings to
# results/papers-two-models/rankings.md (scripts/rank-agreement.py); run folders to
# build/papers-two-models/ (not committed).
set -euo pipefail
cd "$(dirname "$0")/.."
weights=${1:-models/needle-4x128}
bin=build/release/attnbench
[[ -x $bin ]] || { echo "papers-two-models: build build/release first (README)" >&2; exit 2; }
[[ -f $weights/config.json ]] || { echo "papers-two-models: no model folder $weights" >&2; exit 3; }
runs=build/papers-two-models out=results/papers-two-models
# Reports are written beside the old ones and replace them only when every run succeeded.
rm -rf "$runs" "$out.new" && mkdir -p "$runs" "$out.new"
lengths='context_lengths=[4096,8192,16384]'
declare -A model=(
  [mechanistic]='{"kind": "mechanistic", "profile": "default", "dtype": "fp16", "block_size": 64, "seed": 1}'
  [trained]="{\"kind\": \"trained\", \"weights\": \"$weights\", \"dtype\": \"fp16\", \"block_size\": 64}")
for m in mechanistic trained; do
  budgets=$runs/tca-budgets-$m.json
  # The trained model answers no qa_1 question: its budgets cover the heads' attention
  # mass on qa_1's prompts all the same, which is what calibration measures.
  $bin calibrate configs/default.json --set "model=${model[$m]}" --task qa_1 --length 16384 --samples 2 \
    --out "$budgets" > /dev/null
  for name in tokenselect-ruler art-policies tca-headline; do
    config=configs/papers/$name.json
    sets=(--set "model=${model[$m]}" --set "$lengths")
    # Every tca entry (a name or an object) gets this model's budgets.
    while IFS= read -r set; do sets+=(--set "$set"); done < <(python3 - "$config" "$budgets" <<'PY'
import json, sys
for i, p in enumerate(json.load(open(sys.argv[1]))["policies"]):
    entry = {"name": p} if isinstance(p, str) else dict(p)
    if entry["name"] == "tca":
        entry["params"] = dict(entry.get("params", {}), budgets=sys.argv[2])
        print(f"policies.{i}=" + json.dumps(entry))
PY
    )
    $bin run "$config" --out "$runs/$m/$name" "${sets[@]}" > /dev/null
    $bin report "$runs/$m/$name" --out "$out.new/$m/$name" > /dev/null
    echo "papers-two-models: $m $name done"
  done
done
python3 scripts/rank-agreement.py "$runs" > "$out.new/rankings.md"
rm -rf "$out" && mv "$out.new" "$out"
cat "$out/rankings.md"
