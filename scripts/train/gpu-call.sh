#!/usr/bin/env bash
# One training call on the GPU machine (issue 24; DEVELOPERS.md, "GPU time"):
#   bash scripts/train/gpu-call.sh PACK CKPT|none MINUTES [TRAIN.PY OPTIONS...]
# PACK is a folder from scripts/train/pack.sh (the attnbench binary and its libraries).
# Writes the training corpus (configs/corpus/default.json, 600M tokens, a seed per call) and the
# held-out corpus (configs/corpus/held-out.json) on the machine, continues the
# checkpoint CKPT (carried in; `none` starts afresh) within MINUTES of training-script
# time, and leaves the checkpoint in $OUT/ckpt (float32 shards of at most 15 MiB: the
# whole stays under the 64 MiB a call may return) and the log in $OUT/train.log.
# Keep MINUTES at 8 or less under the 10-minute command limit: writing the corpora takes
# about half a minute.
set -euo pipefail
cd "$(dirname "$0")/../.."
pack=$1 ckpt=$2 minutes=$3
shift 3
out=${OUT:?set OUT}
export LD_LIBRARY_PATH="$pack/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
# Each call draws a fresh training corpus: its seed is the number of calls the checkpoint
# has seen (0 for the first), never the held-out corpus's 1000003.
calls=0
if [ "$ckpt" != none ]; then
  [ -f "$ckpt/train_state.json" ] || { echo "gpu-call: $ckpt holds no checkpoint (say none to start afresh)" >&2; exit 2; }
  calls=$(python3 -c 'import json,sys; print(len(json.load(open(sys.argv[1]))["calls"]))' "$ckpt/train_state.json")
fi
python3 -c 'import json,sys; c=json.load(open(sys.argv[1])); c["seed"]=int(sys.argv[2]); json.dump(c,open(sys.argv[3],"w"))' \
  configs/corpus/default.json "$calls" "$work/corpus.json"
"$pack/attnbench" corpus "$work/corpus.json" --out "$work/train" --tokens 600000000
"$pack/attnbench" corpus configs/corpus/held-out.json --out "$work/held-out" --tokens 10000000
mkdir -p "$out/ckpt"
if [ "$ckpt" != none ]; then
  cp -r --no-preserve=mode "$ckpt"/. "$out/ckpt/"  # files returned by a call are read-only
fi
# What comes back is at most 8 files: 4 weight shards, their index and train_state.json
# in ckpt/, and train.log beside it (not inside: the script swaps ckpt/ whole when it
# saves, which would leave tee writing to the old folder).
nvidia-smi --query-gpu=name,clocks.max.sm --format=csv,noheader | tee -a "$out/train.log"
python3 scripts/train/train.py --corpus "$work/train" --eval-corpus "$work/held-out" --ckpt "$out/ckpt" \
  --minutes "$minutes" "$@" 2>&1 | tee -a "$out/train.log"
