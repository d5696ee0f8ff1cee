# Call 7 (run on 2026-12-03, fourth session: results in summary.txt, runs.json and NOTES.md).
# Six runs side by side on the bars' five tasks at 512-16K. Carry build/train-pack and build/ckpt-p1:
#   run: bash results/train/call7/call.sh   carry: ["build/train-pack", "build/ckpt-p1"]
set -uo pipefail
S="--dim 128 --heads 4 --kv-heads 2 --head-dim 32 --hidden 256"
export HELD_OUT_TOKENS=6000000
export TRAIN_OPTIONS="--tokens-per-step 8192 --text-weight 0 --total-steps 1000000 --warmup 200 --eval-every 2500 --save-every 1000000 --reserve 45 --eval-per-cell 25"
nvidia-smi --query-gpu=name,memory.used --format=csv
bash scripts/train/side-by-side.sh build/train-pack results/train/call7/needle5.json results/train/call7/ho5.json 80000000 8.2 3 \
  'resume=build/ckpt-p1 --lr 1e-3' \
  "--grow-from build/ckpt-p1 --layers 4 $S" \
  "--grow-from build/ckpt-p1 --layers 6 $S" \
  "--grow-from build/ckpt-p1 --layers 4 $S --lr 5e-4" \
  '--layers 4 --dim 256 --heads 4 --kv-heads 2 --head-dim 64 --hidden 512 --lr 3e-4 --max-context 2048' \
  "--layers 4 $S --max-context 2048"
