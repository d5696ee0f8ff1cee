# Call 9: does multikey_1 (key matching) come with more steps on it alone? Call 8's r3 (call 7's
# r4 on multikey_1 at 320-1K) was the only run whose answer loss fell (1.52 -> 0.94 in 9K
# steps) but it found no exact answer and was not returned. Six runs on that corpus, 7 minutes
# each; the held-out set is multikey_1 at 512 and 1K, so the best multikey learners come back.
#   run: bash results/train/call9/call.sh   carry: ["build/train-pack", "build/ckpt-c7r4", "build/ckpt-c7r1", "build/ckpt-c7r2"]
set -uo pipefail
export HELD_OUT_TOKENS=1000000
export TRAIN_OPTIONS="--tokens-per-step 8192 --text-weight 0 --total-steps 1000000 --warmup 200 --eval-every 2500 --save-every 1000000 --reserve 30 --eval-per-cell 50"
S="--dim 128 --heads 4 --kv-heads 2 --head-dim 32 --hidden 256"
nvidia-smi --query-gpu=name,memory.used --format=csv
bash scripts/train/side-by-side.sh build/train-pack results/train/call8/mk-short.json results/train/call9/ho-mk.json 80000000 7 3 \
  "resume=build/ckpt-c7r4 --lr 1e-3" \
  "resume=build/ckpt-c7r4 --lr 3e-4" \
  "resume=build/ckpt-c7r4 --lr 2e-3" \
  "resume=build/ckpt-c7r1 --lr 1e-3" \
  "resume=build/ckpt-c7r2 --lr 1e-3" \
  "--layers 2 $S --lr 1e-3"
