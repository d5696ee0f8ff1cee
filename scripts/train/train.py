"""Trains the trained model (issue 24) on a corpus written by `attnbench corpus`. Runs on
the GPU machine (PyTorch with CUDA; a CPU run is for smoke tests only) and never on the
measuring path of a C++ run. Each call ends within --minutes of its start (training
stops --reserve seconds early for the last evaluation and the save) and leaves a
checkpoint that the next call continues; it also saves every --save-every steps:

  python3 scripts/train/train.py --corpus CORPUS --eval-corpus HELD_OUT --ckpt CKPT --minutes 8

CKPT holds the weights in float32 as safetensors shards of at most 15 MiB (what one GPU
call may return: DEVELOPERS.md) and train_state.json: the model's shape, steps, tokens
seen, device seconds, the loss curve and every evaluation. Adam's moments are not kept
(they would triple the checkpoint); a resumed run warms its learning rate up again.
The loss is the mean cross-entropy over answer tokens (the corpus's answer spans) plus
--text-weight times the mean over the other tokens, estimated on a random --text-sample
of them (the LM head over every position is most of a step). The text is mostly word
salad whose entropy cannot be learned away, and weighting tokens one by one would let
its thousands of tokens per answer drown the answers' gradient. --max-context trains on
the corpus's shorter sequences only (a curriculum across calls). Evaluation: on the
held-out corpus, an answer is right when every one of its tokens is the model's top
prediction given the text before it (for one-answer tasks what greedy decoding would
emit), per task and context length; token_accuracy is the share of answer tokens that are.
"""
import argparse
import json
import math
import os
import shutil
import time

import numpy as np
import torch
import torch.nn.functional as F

import model as M
import st_format as st


class Corpus:
    def __init__(self, folder):
        with open(os.path.join(folder, "meta.json")) as f:
            self.meta = json.load(f)
        if self.meta.get("format") != "attnbench-corpus" or self.meta.get("token_dtype") != "uint16le":
            raise SystemExit(f"{folder}: not an attnbench corpus of 16-bit tokens")
        self.tokens = np.memmap(os.path.join(folder, self.meta["tokens_file"]), dtype="<u2", mode="r")
        ix = self.meta["index"]
        self.offset, self.length = np.array(ix["offset"]), np.array(ix["length"])
        self.context, self.task = np.array(ix["context_length"]), np.array(ix["task"])
        self.answers = ix["answers"]
        self.buckets = {n: np.nonzero(self.context == n)[0] for n in np.unique(self.context)}

    def sequence(self, i):
        o = int(self.offset[i])
        return torch.from_numpy(self.tokens[o:o + int(self.length[i])].astype(np.int64))

    def batch(self, rows):
        """Padded inputs [B, T], targets [B, T], the text mask and the answer mask."""
        lengths = self.length[rows]
        T = int(lengths.max()) - 1
        col = np.arange(T + 1)
        inside = col[None, :] < lengths[:, None]
        seq = np.zeros((len(rows), T + 1), dtype=np.int64)
        seq[inside] = self.tokens[(self.offset[rows][:, None] + col[None, :])[inside]]
        text = inside[:, 1:].copy()
        answer = np.zeros_like(text)
        for r, i in enumerate(rows):
            for b, e in self.answers[i]:  # target position p predicts token p + 1
                answer[r, b - 1:e - 1] = True
        text &= ~answer
        t = torch.from_numpy
        return t(seq[:, :-1].copy()), t(seq[:, 1:].copy()), t(text), t(answer)


def lr_at(step, args, resumed_at):
    warm = min(1.0, (step + 1) / args.warmup)
    if resumed_at is not None:
        warm = min(warm, (step - resumed_at + 1) / args.rewarm)
    progress = min(1.0, step / max(1, args.total_steps))
    return args.lr * warm * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * progress)))


@torch.no_grad()
def evaluate(net, corpus, device, per_cell, dtype):
    net.eval()
    cells = {}
    for n, rows in sorted(corpus.buckets.items()):
        for i in rows:
            key = (corpus.meta["tasks"][int(corpus.task[i])], int(n))
            if not corpus.answers[i] or len(cells.setdefault(key, [])) >= per_cell:
                continue
            s = corpus.sequence(i).to(device)
            with torch.autocast(device.type, dtype=dtype or torch.bfloat16, enabled=dtype is not None):
                pred = net(s[None, :-1])[0].argmax(-1)
            hits = [(pred[b - 1:e - 1] == s[b:e]) for b, e in corpus.answers[i]]
            cells[key].append((all(bool(h.all()) for h in hits), sum(int(h.sum()) for h in hits),
                               sum(len(h) for h in hits)))
    net.train()
    return [{"task": t, "context_length": n, "samples": len(v), "accuracy": 100.0 * sum(a for a, _, _ in v) / len(v),
             "token_accuracy": 100.0 * sum(h for _, h, _ in v) / sum(k for _, _, k in v)}
            for (t, n), v in sorted(cells.items())]


def save(ckpt, net, state):
    """Writes the checkpoint into a fresh folder beside CKPT, then swaps it in: a crash
    leaves the old checkpoint or the new one, never a mix. Other files in CKPT are copied
    along (a file kept open there would be left behind: logs belong outside)."""
    new, old = ckpt.rstrip("/") + ".new", ckpt.rstrip("/") + ".old"
    shutil.rmtree(new, ignore_errors=True)
    os.makedirs(new)
    tensors = {k: v.detach().float().cpu() for k, v in net.named_tensors().items()}
    st.write_sharded(new, "weights", tensors, {"model": "attnbench-trained-1"}, 15 << 20)
    with open(os.path.join(new, "train_state.json"), "w") as f:
        json.dump(state, f, indent=1)
    if os.path.isdir(ckpt):
        for name in os.listdir(ckpt):  # keep what is not the checkpoint's own (train.log)
            if not (name.startswith("weights") or name == "train_state.json"):
                shutil.copy2(os.path.join(ckpt, name), os.path.join(new, name))
        shutil.rmtree(old, ignore_errors=True)
        os.rename(ckpt, old)
    os.rename(new, ckpt)
    shutil.rmtree(old, ignore_errors=True)


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--corpus", required=True)
    p.add_argument("--eval-corpus", required=True)
    p.add_argument("--ckpt", required=True, help="checkpoint folder, continued when it holds one")
    p.add_argument("--minutes", type=float, default=8.0,
                   help="the whole script's time, from start to the checkpoint written")
    p.add_argument("--reserve", type=float, default=90.0, help="seconds kept for the last evaluation and the save")
    p.add_argument("--save-every", type=int, default=2000)
    p.add_argument("--total-steps", type=int, default=30000, help="steps of the whole schedule, across calls")
    p.add_argument("--tokens-per-step", type=int, default=32768)
    p.add_argument("--max-context", type=int, default=None, help="train on sequences of this context length or less")
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--warmup", type=int, default=300)
    p.add_argument("--rewarm", type=int, default=100, help="warm-up steps after a resume (Adam restarts)")
    p.add_argument("--text-weight", type=float, default=0.1)
    p.add_argument("--text-sample", type=float, default=0.125, help="share of text positions whose loss is computed")
    p.add_argument("--eval-every", type=int, default=1000)
    p.add_argument("--eval-per-cell", type=int, default=25)
    p.add_argument("--dim", type=int, default=384)
    p.add_argument("--layers", type=int, default=6)
    p.add_argument("--heads", type=int, default=6)
    p.add_argument("--kv-heads", type=int, default=2)
    p.add_argument("--head-dim", type=int, default=64)
    p.add_argument("--hidden", type=int, default=1024)
    p.add_argument("--rope-base", type=float, default=500000.0)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--grow-from", default=None,
                   help="a fresh run starts from this checkpoint's model (same width, fewer layers), the new layers "
                        "on top as the identity (model.grow)")
    p.add_argument("--precision", choices=["bf16", "fp32"], default="bf16", help="a GPU run's arithmetic")
    args = p.parse_args()
    started = time.time()
    deadline = started + args.minutes * 60 - args.reserve
    if args.eval_per_cell < 1 or args.eval_every < 1 or args.save_every < 1:
        raise SystemExit("--eval-per-cell, --eval-every and --save-every must be at least 1")

    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    # bf16 autocast on a GPU unless --precision fp32; a CPU run is always float32.
    dtype = torch.bfloat16 if device.type == "cuda" and args.precision == "bf16" else None
    corpus, held_out = Corpus(args.corpus), Corpus(args.eval_corpus)
    state_file = os.path.join(args.ckpt, "train_state.json")
    resumed_at = None
    if os.path.exists(state_file):
        with open(state_file) as f:
            state = json.load(f)
        cfg = M.Config(**state["config"])
        net = M.Model(cfg)
        weights, _ = st.read_sharded(args.ckpt, "weights")
        named = net.named_tensors()
        if set(weights) != set(named):
            raise SystemExit(f"{args.ckpt}: the weights do not match the model: {sorted(set(weights) ^ set(named))[:5]}")
        print("resuming: the model's shape comes from the checkpoint", flush=True)
        with torch.no_grad():
            for k, v in weights.items():
                named[k].copy_(v)
        resumed_at = state["step"]
    else:
        cfg = M.Config(vocab_size=corpus.meta["vocab_size"], dim=args.dim, n_layers=args.layers, n_heads=args.heads,
                       n_kv_heads=args.kv_heads, head_dim=args.head_dim, hidden=args.hidden, rope_base=args.rope_base)
        torch.manual_seed(args.seed)
        net = M.Model(cfg)
        state = {"config": cfg.to_dict(), "params": cfg.n_params(), "step": 0, "tokens_seen": 0, "device_seconds": 0.0,
                 "calls": [], "losses": [], "evals": []}
        if args.grow_from:
            with open(os.path.join(args.grow_from, "train_state.json")) as f:
                small = json.load(f)
            weights, _ = st.read_sharded(args.grow_from, "weights")
            try:
                M.grow(net, weights, M.Config(**small["config"]))
            except ValueError as e:
                raise SystemExit(f"--grow-from {args.grow_from}: {e}")
            state["grown_from"] = {"config": small["config"], "step": small["step"], "tokens_seen": small["tokens_seen"],
                                   "device_seconds": small["device_seconds"]}
    if held_out.meta["vocab_size"] != cfg.vocab_size or corpus.meta["vocab_size"] != cfg.vocab_size:
        raise SystemExit("the corpora's vocabulary differs from the model's")
    net.to(device)
    extra = {"fused": True} if device.type == "cuda" else {}  # fused needs PyTorch 2 and a GPU
    decay = [q for q in net.parameters() if q.dim() >= 2]  # no decay on the norms' gains
    rest = [q for q in net.parameters() if q.dim() < 2]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": 0.1}, {"params": rest, "weight_decay": 0.0}],
                            lr=args.lr, betas=(0.9, 0.95), **extra)
    gen = np.random.default_rng(args.seed * 1000003 + state["step"])
    lengths = [n for n in sorted(corpus.buckets) if args.max_context is None or n <= args.max_context]
    if not lengths:
        raise SystemExit(f"--max-context {args.max_context}: the corpus has no sequences that short")
    share = np.array([corpus.length[corpus.buckets[n]].sum() for n in lengths], dtype=float)
    share /= share.sum()
    start, step0 = time.time(), state["step"]
    last_eval = None
    window, answer_window = [], []
    print(f"model {cfg.to_dict()} ({cfg.n_params() / 1e6:.1f}M parameters), device {device}, step {step0}", flush=True)
    while time.time() < deadline:
        step = state["step"]
        n = lengths[gen.choice(len(lengths), p=share)]
        rows = gen.choice(corpus.buckets[n], size=max(1, args.tokens_per_step // int(n)))
        x, y, text, answers = (t.to(device, non_blocking=True) for t in corpus.batch(rows))
        for g in opt.param_groups:
            g["lr"] = lr_at(step, args, resumed_at)
        # The text's loss is estimated on a random --text-sample of its positions.
        scored = answers | (text & (torch.rand(text.shape, device=device) < args.text_sample))
        with torch.autocast(device.type, dtype=dtype or torch.bfloat16, enabled=dtype is not None):
            logits = net(x, positions=scored)
        ce = F.cross_entropy(logits, y[scored], reduction="none")
        is_answer = answers[scored]
        text_loss = ce[~is_answer].mean() if (~is_answer).any() else torch.zeros((), device=device)
        answer_loss = ce[is_answer].mean() if is_answer.any() else torch.zeros((), device=device)
        loss = answer_loss + args.text_weight * text_loss
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(net.parameters(), 1.0)
        opt.step()
        state["step"] += 1
        state["tokens_seen"] += int(text.sum() + answers.sum())
        window.append(text_loss.item())
        if answers.any():
            answer_window.append(answer_loss.item())
        if state["step"] % 50 == 0:
            row = {"step": state["step"], "text_loss": float(np.mean(window)),
                   "answer_loss": float(np.mean(answer_window)) if answer_window else None,
                   "lr": lr_at(step, args, resumed_at), "tokens_seen": state["tokens_seen"],
                   "seconds": state["device_seconds"] + time.time() - start}
            state["losses"].append(row)
            print(json.dumps(row), flush=True)
            window, answer_window = [], []
        if state["step"] % args.eval_every == 0:
            state["evals"].append({"step": state["step"], "cells": evaluate(net, held_out, device, args.eval_per_cell, dtype)})
            last_eval = state["step"]
            print(json.dumps(state["evals"][-1]), flush=True)
        if state["step"] % args.save_every == 0:
            save(args.ckpt, net, {**state, "device_seconds": state["device_seconds"] + time.time() - start})
    if last_eval != state["step"]:
        state["evals"].append({"step": state["step"], "cells": evaluate(net, held_out, device, args.eval_per_cell, dtype)})
        print(json.dumps(state["evals"][-1]), flush=True)
    elapsed = time.time() - start
    state["device_seconds"] += elapsed
    state["calls"].append({"from_step": step0, "to_step": state["step"], "seconds": elapsed, "device": str(device),
                           "gpu": torch.cuda.get_device_name() if device.type == "cuda" else None,
                           "corpus_seed": corpus.meta["config"]["seed"], "corpus_tokens": corpus.meta["total_tokens"],
                           "torch": torch.__version__,
                           "max_context": args.max_context, "tokens_per_step": args.tokens_per_step,
                           "text_weight": args.text_weight, "text_sample": args.text_sample, "lr": args.lr,
                           "precision": args.precision})
    save(args.ckpt, net, state)
    print(f"saved step {state['step']} to {args.ckpt} after {elapsed:.0f} s", flush=True)


if __name__ == "__main__":
    main()
