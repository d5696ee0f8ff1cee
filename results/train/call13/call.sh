# Call 13 (the session's last 450 s of device time): call 12's r1 formed a content copy
# (multi-needle token accuracy 40% -> 75% at 1K) but not yet key matching (the first
# digit). Continue it on the same corpus, two rates, about 4 minutes.
#   run: bash results/train/call13/call.sh   carry: ["build/train-pack", "build/ckpt/c12r1"]
set -uo pipefail
export HELD_OUT_TOKENS=2000000
export TRAIN_OPTIONS="--text-weight 0 --total-steps 1000000 --warmup 200 --eval-every 2500 --save-every 1000000 --reserve 35 --eval-per-cell 25 --tokens-per-step 8192"
bash scripts/train/side-by-side.sh build/train-pack results/train/call12/drill-copy.json results/train/call10/ho10.json 40000000 ${MINUTES:-4.3} 2 \
  "resume=build/ckpt/c12r1 --lr 1e-3" \
  "resume=build/ckpt/c12r1 --lr 5e-4"
