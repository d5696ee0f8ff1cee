#!/usr/bin/env bash
# Several training runs side by side in one GPU call (a small model leaves the GPU mostly
# idle; results/train/NOTES.md), each for MINUTES, on one corpus; the KEEP best come back.
#   bash scripts/train/side-by-side.sh PACK CORPUS_CONFIG HELD_OUT_CONFIG TOKENS MINUTES KEEP \
#     'RUN OPTIONS' ['RUN OPTIONS' ...]
# Each RUN OPTIONS is train.py options for one run (shape, --lr, --grow-from DIR, ...); one
# that starts with `resume=DIR ` continues the carried checkpoint DIR instead, and one that
# starts (after that) with `corpus=CONFIG ` trains on that corpus config's sequences
# (TOKENS of them, written once per config) instead of CORPUS_CONFIG's. Options
# common to all runs go in TRAIN_OPTIONS (the environment). The corpus (TOKENS tokens) and
# the held-out corpus (HELD_OUT_TOKENS, 3M unless set) are written on the machine. "Best" is the last held-out evaluation's
# exact answers summed over its longest length, token accuracy breaking ties. The best
# runs' checkpoints come back as $OUT/rI/ (I its place in the list); every run's curve is
# in its train_state.json, every run's evaluations and curve (a point each 500 steps) in
# $OUT/runs.json, and a line per run in $OUT/summary.txt. At most 8 files may come
# back: the script stops before training when KEEP checkpoints could not fit.
set -euo pipefail
cd "$(dirname "$0")/../.."
pack=$1 corpus=$2 held_out=$3 tokens=$4 minutes=$5 keep=$6
shift 6
out=${OUT:?set OUT}
export LD_LIBRARY_PATH="$pack/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
"$pack/attnbench" corpus "$corpus" --out "$work/train" --tokens "$tokens" | tail -1
"$pack/attnbench" corpus "$held_out" --out "$work/held-out" --tokens "${HELD_OUT_TOKENS:-3000000}" | tail -1
i=0
for spec in "$@"; do
  i=$((i + 1))
  ckpt="$work/r$i"
  spec=${spec# }
  if [[ $spec == resume=* ]]; then
    from=${spec%% *}
    from=${from#resume=}
    spec=${spec#"resume=$from"}
    spec=${spec# }
    mkdir -p "$ckpt" && cp -r --no-preserve=mode "$from"/. "$ckpt/"
  fi
  train="$work/train"
  if [[ $spec == corpus=* ]]; then
    config=${spec%% *}
    config=${config#corpus=}
    spec=${spec#"corpus=$config"}
    train="$work/corpus-$(basename "$config" .json)"
    [ -d "$train" ] || "$pack/attnbench" corpus "$config" --out "$train" --tokens "$tokens" | tail -1
  fi
  # shellcheck disable=SC2086  # the options are words
  python3 scripts/train/train.py --corpus "$train" --eval-corpus "$work/held-out" --ckpt "$ckpt" \
    --minutes "$minutes" ${TRAIN_OPTIONS:-} $spec > "$work/r$i.log" 2>&1 &
done
wait || true
python3 - "$work" "$i" "$keep" "$out" <<'PY'
import json, os, shutil, sys
work, n, keep, out = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
rows, runs = [], {}
for i in range(1, n + 1):
    ckpt = os.path.join(work, f"r{i}")
    try:
        state = json.load(open(os.path.join(ckpt, "train_state.json")))
        cells = state["evals"][-1]["cells"]
        longest = max(c["context_length"] for c in cells)
        score = sum(c["accuracy"] + 0.01 * c["token_accuracy"] for c in cells if c["context_length"] == longest)
        loss = state["losses"][-1]["answer_loss"] if state["losses"] else None
        rows.append((score, i, f"r{i}: step {state['step']}, answer loss {loss}, score at {longest} {score:.2f}"))
        runs[f"r{i}"] = {k: v for k, v in state.items() if k != "losses"}
        runs[f"r{i}"]["losses"] = [r for r in state["losses"] if r["step"] % 500 == 0]
    except (OSError, KeyError, IndexError, ValueError) as e:
        tail = open(os.path.join(work, f"r{i}.log")).read()[-400:]
        rows.append((-1, i, f"r{i}: no checkpoint ({e}); log ends: {tail!r}"))
rows.sort(reverse=True)
json.dump(runs, open(os.path.join(out, "runs.json"), "w"))
files = 2  # summary.txt, runs.json
with open(os.path.join(out, "summary.txt"), "w") as f:
    for score, i, line in sorted(rows, key=lambda r: r[1]):
        print(line)
        f.write(line + "\n")
for score, i, _ in rows[:keep]:
    src = os.path.join(work, f"r{i}")
    names = os.listdir(src) if score >= 0 else []
    if not names or files + len(names) > 8:
        continue
    shutil.copytree(src, os.path.join(out, f"r{i}"))
    files += len(names)
    print(f"returned r{i}")
PY
