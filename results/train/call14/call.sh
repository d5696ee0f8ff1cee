# Call 14 (planned for the next session; run it first): does key matching (the first
# digit of a multi-needle answer, at chance through call 13) start with more steps on
# the model that copies by content (call 13's r1), and do single needles at 4K-16K
# stay when long sequences are in the corpus? The checkpoints come from the f16 model
# folders in the tree (import.py), so nothing needs carrying but the pack.
#   run: bash results/train/call14/call.sh   carry: ["build/train-pack"]
set -uo pipefail
export HELD_OUT_TOKENS=2000000
export TRAIN_OPTIONS="--text-weight 0 --total-steps 1000000 --warmup 200 --eval-every 2500 --save-every 1000000 --reserve 40 --eval-per-cell 25 --tokens-per-step 8192"
nvidia-smi --query-gpu=name,memory.used --format=csv
for m in call13/c13r1 call10/c10r4; do
  (cd scripts/train && python3 import.py ../../results/train/$m /tmp/ckpt-$(basename $m)) || exit 1
done
C=results/train/call14
bash scripts/train/side-by-side.sh build/train-pack $C/drill-copy-long.json results/train/call10/ho10.json 80000000 ${MINUTES:-7.5} 2 \
  "resume=/tmp/ckpt-c13r1 --lr 1e-3" \
  "resume=/tmp/ckpt-c13r1 corpus=results/train/call12/drill-copy.json --lr 1e-3" \
  "--grow-from /tmp/ckpt-c13r1 --layers 6 --dim 128 --heads 4 --kv-heads 2 --head-dim 32 --hidden 256 --lr 5e-4" \
  "resume=/tmp/ckpt-c10r4 --lr 1e-3"
