# Call 11: call 10's drill did not start key matching in 11K steps at 8K tokens a step
# (read on CPU: call 10's r1 puts 4-6% of a layer-1 head's attention on each needle's first
# digit, the asked one barely more, and no layer-0 head carries the needle's key onto its
# value). Does a 4x larger step (32K tokens: ~400 asked keys a step), a higher rate, or
# more steps alone break the plateau? From call 10's r1 (4 layers, drill) and r4 (4
# layers, call 7's corpus: single needles to 4K), held-out as call 10.
#   run: bash results/train/call11/call.sh   carry: ["build/train-pack", "build/ckpt/c10r1", "build/ckpt/c10r4"]
set -uo pipefail
export HELD_OUT_TOKENS=2000000
export TRAIN_OPTIONS="--text-weight 0 --total-steps 1000000 --warmup 200 --eval-every 2500 --save-every 1000000 --reserve 40 --eval-per-cell 25"
nvidia-smi --query-gpu=name,memory.used --format=csv
bash scripts/train/side-by-side.sh build/train-pack results/train/call10/drill.json results/train/call10/ho10.json 100000000 ${MINUTES:-7.5} 2 \
  "resume=build/ckpt/c10r1 --tokens-per-step 32768 --lr 1e-3" \
  "resume=build/ckpt/c10r1 --tokens-per-step 32768 --lr 2e-3" \
  "resume=build/ckpt/c10r1 --tokens-per-step 8192 --lr 1e-3" \
  "resume=build/ckpt/c10r4 --tokens-per-step 32768 --lr 1e-3"
