set -uo pipefail
P=build/train-pack; export LD_LIBRARY_PATH=$P/lib; W=/tmp/abl; mkdir -p $W
$P/attnbench corpus build/exp/exp2.json --out $W/exp2 --tokens 40000000 | tail -1
$P/attnbench corpus build/exp/def512.json --out $W/def512 --tokens 60000000 | tail -1
$P/attnbench corpus build/exp/ho.json --out $W/ho --tokens 3000000 | tail -1
common="--eval-corpus $W/ho --minutes 6.0 --reserve 40 --eval-every 1000 --save-every 1000000 --total-steps 1000000 --warmup 100 --text-weight 0 --tokens-per-step 4096"
tiny="--layers 2 --dim 128 --heads 4 --kv-heads 2 --head-dim 32 --hidden 256"
python3 scripts/train/train.py --corpus $W/exp2 --ckpt $W/r1 $common > $W/r1.log 2>&1 &
python3 scripts/train/train.py --corpus $W/exp2 --ckpt $W/r2 $common --precision fp32 > $W/r2.log 2>&1 &
python3 scripts/train/train.py --corpus $W/exp2 --ckpt $W/r3 $common $tiny > $W/r3.log 2>&1 &
python3 scripts/train/train.py --corpus $W/def512 --ckpt $W/r4 $common --max-context 512 > $W/r4.log 2>&1 &
wait
for r in r1 r2 r3 r4; do echo "### $r"; cat $W/$r.log; done > $OUT/ablate.log
python3 build/exp/summary.py $W/r1.log $W/r2.log $W/r3.log $W/r4.log
best=$(python3 -c '
import json,sys
def last(r):
    try: return json.load(open(f"/tmp/abl/{r}/train_state.json"))["losses"][-1]["answer_loss"]
    except Exception: return 99
l={r:last(r) for r in ("r1","r2","r4")}; print(l, file=sys.stderr)
print("r4" if l["r4"]<1.7 else min(l,key=l.get))')
echo "returning $best"; cp -r $W/$best $OUT/ckpt
