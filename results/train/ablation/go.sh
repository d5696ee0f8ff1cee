set -uo pipefail
P=build/train-pack; export LD_LIBRARY_PATH=$P/lib; W=/tmp/go; mkdir -p $W
$P/attnbench corpus build/exp/niah4.json --out $W/niah4 --tokens 60000000 | tail -1
$P/attnbench corpus build/exp/ho.json --out $W/ho --tokens 3000000 | tail -1
cp -r build/ckpt-r1 $W/p3
common="--corpus $W/niah4 --eval-corpus $W/ho --minutes 6.1 --reserve 45 --eval-every 1500 --save-every 1000000 --total-steps 1000000 --warmup 100 --text-weight 0 --tokens-per-step 4096"
python3 scripts/train/train.py --ckpt $W/p1 $common --layers 2 --dim 128 --heads 4 --kv-heads 2 --head-dim 32 --hidden 256 > $W/p1.log 2>&1 &
python3 scripts/train/train.py --ckpt $W/p2 $common --layers 2 --dim 256 --heads 4 --kv-heads 2 --head-dim 64 --hidden 512 > $W/p2.log 2>&1 &
python3 scripts/train/train.py --ckpt $W/p3 $common > $W/p3.log 2>&1 &
python3 scripts/train/train.py --ckpt $W/p4 $common --layers 4 --dim 256 --heads 4 --kv-heads 2 --head-dim 64 --hidden 512 > $W/p4.log 2>&1 &
wait
for r in p1 p2 p3 p4; do echo "### $r"; cat $W/$r.log; done > $OUT/go.log
python3 build/exp/summary.py $W/p1.log $W/p2.log $W/p3.log $W/p4.log
best=$(python3 -c '
import json,sys
def at2k(r):
    try:
        c=json.load(open(f"/tmp/go/{r}/train_state.json"))["evals"][-1]["cells"]
        return sum(x["accuracy"]+0.01*x["token_accuracy"] for x in c if x["context_length"]==2048)
    except Exception: return -1
l={r:at2k(r) for r in ("p1","p2","p3","p4")}; print(l, file=sys.stderr); print(max(l,key=l.get))')
echo "returning $best"; cp -r $W/$best $OUT/ckpt
