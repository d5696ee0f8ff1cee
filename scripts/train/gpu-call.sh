#!/usr/bin/env bash
# One training call on the GPU machine (issue 24; DEVELOPERS.md, "GPU time"):
#   bash scripts/train/gpu-call.sh PACK CKPT MINUTES
# PACK is a folder from scripts/gpu-pack.sh (the attnbench binary and its libraries).
# Writes the training corpus (configs/corpus/default.json, 1G tokens, seed 0) and the
# held-out corpus (configs/corpus/held-out.json) on the machine, continues the
# checkpoint CKPT (carried in, may be absent) for MINUTES, and leaves the checkpoint and
# the log under $OUT/ckpt (float32 shards of at most 15 MiB: the whole stays under the
# 64 MiB a call may return).
set -euo pipefail
cd "$(dirname "$0")/../.."
pack=$1 ckpt=$2 minutes=$3
out=${OUT:?set OUT}
export LD_LIBRARY_PATH="$pack/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
work=$(mktemp -d)
"$pack/attnbench" corpus configs/corpus/default.json --out "$work/train" --tokens 1000000000
"$pack/attnbench" corpus configs/corpus/held-out.json --out "$work/held-out" --tokens 2000000
mkdir -p "$out/ckpt"
[ -d "$ckpt" ] && cp -r "$ckpt"/. "$out/ckpt/"
nvidia-smi --query-gpu=name,clocks.max.sm --format=csv,noheader | tee "$out/gpu.txt"
python3 scripts/train/train.py --corpus "$work/train" --eval-corpus "$work/held-out" --ckpt "$out/ckpt" \
  --minutes "$minutes" 2>&1 | tee -a "$out/ckpt/train.log"
