# Call 16 (issue 24): is model size what keeps key matching away? Two fresh models of the
# issue's first probe's shape (6 layers, width 384, 8 query / 2 KV heads of 48, SwiGLU
# 1024: 17M parameters) on four needles all asked in turn at 512-4K, rates 5e-4 and 1e-3
# decayed by step 14000. Their float32 checkpoints (68 MB) cannot come back (16 MiB a
# file), so only the curves and evaluations do (KEEP 0).
#   run: bash results/train/call16/call.sh   carry: ["build/train-pack"]
set -uo pipefail
export HELD_OUT_TOKENS=2000000
export TRAIN_OPTIONS="--text-weight 0 --warmup 300 --eval-every 2500 --save-every 1000000 --reserve 40 --eval-per-cell 25 --tokens-per-step 8192 --total-steps 14000"
nvidia-smi --query-gpu=name,memory.used --format=csv
shape="--dim 384 --layers 6 --heads 8 --kv-heads 2 --head-dim 48 --hidden 1024"
bash scripts/train/side-by-side.sh build/train-pack results/train/call16/four.json results/train/call10/ho10.json 60000000 ${MINUTES:-6.6} 0 \
  "$shape --lr 5e-4" "$shape --lr 1e-3"
