# Call 10: does dense key-matching supervision (the drill: 8 needles asked in turn per
# sample) teach key discrimination where one question per sample did not (calls 7-8)?
# The starting point is p1 (models/niah-2x128, imported: the earlier checkpoints did not
# outlive their session). r4 is call 7's r4 again, on call 7's corpus, as the control and
# the base for the lengths. Held-out at 1K and 4K, scored at 4K.
#   run: bash results/train/call10/call.sh   carry: ["build/train-pack"]
set -uo pipefail
C=results/train/call10
export HELD_OUT_TOKENS=2000000
export TRAIN_OPTIONS="--tokens-per-step 8192 --text-weight 0 --total-steps 1000000 --warmup 200 --eval-every 2500 --save-every 1000000 --reserve 40 --eval-per-cell 25"
S="--dim 128 --heads 4 --kv-heads 2 --head-dim 32 --hidden 256"
nvidia-smi --query-gpu=name,memory.used --format=csv
(cd scripts/train && python3 import.py ../../models/niah-2x128 /tmp/ckpt-p1) || exit 1
bash scripts/train/side-by-side.sh build/train-pack $C/drill.json $C/ho10.json 80000000 ${MINUTES:-7.5} 3 \
  "--grow-from /tmp/ckpt-p1 --layers 4 $S --lr 5e-4" \
  "--grow-from /tmp/ckpt-p1 --layers 4 $S --lr 1e-3" \
  "resume=/tmp/ckpt-p1 --lr 5e-4" \
  "corpus=results/train/call7/needle5.json --grow-from /tmp/ckpt-p1 --layers 4 $S --lr 5e-4" \
  "--layers 4 --dim 256 --heads 8 --kv-heads 2 --head-dim 32 --hidden 512 --lr 5e-4" \
  "--layers 2 $S --lr 1e-3"
