# Call 12: calls 10-11 read (CPU, call 10's r1): with teacher-forced first digits the
# models still miss most later digits of a multi-needle answer (answer loss 2.0 a token),
# so they copy by position, not by content: there is no induction circuit to build key
# matching on. Does adding repeated segments (the corpus's `repeat` task: digit segments,
# whose copy must match several tokens back as "KEY is :" must) form one and carry over
# to the needles? Held-out as call 10.
#   run: bash results/train/call12/call.sh   carry: ["build/train-pack", "build/ckpt/c10r1", "build/ckpt/c11r4"]
set -uo pipefail
export HELD_OUT_TOKENS=2000000
export TRAIN_OPTIONS="--text-weight 0 --total-steps 1000000 --warmup 200 --eval-every 2500 --save-every 1000000 --reserve 40 --eval-per-cell 25 --tokens-per-step 8192"
S="--dim 128 --heads 4 --kv-heads 2 --head-dim 32 --hidden 256"
nvidia-smi --query-gpu=name,memory.used --format=csv
(cd scripts/train && python3 import.py ../../models/niah-2x128 /tmp/ckpt-p1) || exit 1
bash scripts/train/side-by-side.sh build/train-pack results/train/call12/drill-copy.json results/train/call10/ho10.json 80000000 ${MINUTES:-7} 2 \
  "resume=build/ckpt/c10r1 --lr 1e-3" \
  "resume=build/ckpt/c11r4 --lr 1e-3" \
  "--layers 4 $S --lr 1e-3" \
  "--grow-from /tmp/ckpt-p1 --layers 4 $S --lr 5e-4"
