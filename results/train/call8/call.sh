# Call 8: key matching. Call 7's best (r4: p1 grown to 4 layers) finds single needles at
# 2K-16K but no multikey_1, multivalue or vt answer. Six runs from call 7's checkpoints on
# short sequences where those tasks dominate, side by side for 8.2 minutes each:
#   run: bash results/train/call8/call.sh   carry: ["build/train-pack", "build/ckpt-c7r4", "build/ckpt-c7r1"]
set -uo pipefail
export HELD_OUT_TOKENS=3000000
export TRAIN_OPTIONS="--tokens-per-step 8192 --text-weight 0 --total-steps 1000000 --warmup 200 --eval-every 2500 --save-every 1000000 --reserve 45 --eval-per-cell 25"
C=results/train/call8
nvidia-smi --query-gpu=name,memory.used --format=csv
bash scripts/train/side-by-side.sh build/train-pack results/train/call7/needle5.json $C/ho8.json 80000000 8.2 3 \
  "resume=build/ckpt-c7r4 corpus=$C/hard-short.json --lr 1e-3" \
  "resume=build/ckpt-c7r4 corpus=$C/hard-short.json --lr 3e-4" \
  "resume=build/ckpt-c7r4 corpus=$C/mk-short.json --lr 1e-3" \
  "resume=build/ckpt-c7r4 corpus=$C/vt-short.json --lr 1e-3" \
  "resume=build/ckpt-c7r1 corpus=$C/hard-short.json --lr 5e-4" \
  "resume=build/ckpt-c7r4 --lr 1e-3"
