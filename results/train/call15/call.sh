# Call 15 (issue 24): the last try at key matching (the first digit of a multi-needle
# answer, at chance through call 14) with this model size: call 14's r1 (4 x 128, step
# 43.5K) and r3 (grown to 6 layers, step 8.8K), each on the long drill and on a short
# corpus of key lookups alone (keys-short.json), two of the four with the rate decayed
# (cosine to a tenth, reached at --total-steps).
#   run: bash results/train/call15/call.sh   carry: ["build/train-pack", "build/ckpt/c14r1", "build/ckpt/c14r3"]
set -uo pipefail
export HELD_OUT_TOKENS=2000000
export TRAIN_OPTIONS="--text-weight 0 --total-steps 1000000 --warmup 200 --eval-every 2500 --save-every 1000000 --reserve 40 --eval-per-cell 25 --tokens-per-step 8192"
nvidia-smi --query-gpu=name,memory.used --format=csv
C=results/train/call15
bash scripts/train/side-by-side.sh build/train-pack results/train/call14/drill-copy-long.json results/train/call10/ho10.json 80000000 ${MINUTES:-7.2} 2 \
  "resume=build/ckpt/c14r1 --lr 1e-3 --total-steps 55000" \
  "resume=build/ckpt/c14r1 corpus=$C/keys-short.json --lr 1e-3" \
  "resume=build/ckpt/c14r3 --lr 5e-4" \
  "resume=build/ckpt/c14r3 corpus=$C/keys-short.json --lr 5e-4 --total-steps 18000"
