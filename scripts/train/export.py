"""Writes a training checkpoint as a model folder the C++ harness runs (issue 24):

  python3 scripts/train/export.py CKPT models/NAME --corpus-config FILE [--dtype f16]

The folder gets config.json (format attnbench-trained-1: the architecture and a summary
of the training from train_state.json), weights.safetensors (f16 by default: half the
size, and the C++ model computes in fp32 from whichever dtype it reads) and a copy of
the corpus config the checkpoint was trained on. The model card (README.md) is written
by hand from these figures and the harness's own measurements."""
import argparse
import json
import os
import shutil
import subprocess

import torch

import st_format as st


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("ckpt")
    p.add_argument("out")
    p.add_argument("--corpus-config", required=True, help="the corpus config the checkpoint was trained on")
    p.add_argument("--dtype", choices=["f16", "bf16", "f32"], default="f16")
    args = p.parse_args()
    with open(os.path.join(args.ckpt, "train_state.json")) as f:
        state = json.load(f)
    weights, _ = st.read_sharded(args.ckpt, "weights")
    dtype = {"f16": torch.float16, "bf16": torch.bfloat16, "f32": torch.float32}[args.dtype]
    os.makedirs(args.out, exist_ok=True)
    st.write(os.path.join(args.out, "weights.safetensors"), {k: v.to(dtype) for k, v in sorted(weights.items())},
             {"model": "attnbench-trained-1"})
    shutil.copy(args.corpus_config, os.path.join(args.out, "corpus.json"))
    last = [r for r in state["losses"] if r.get("answer_loss") is not None][-1]
    commit = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True).stdout.strip()
    config = {
        "format": "attnbench-trained-1",
        "name": os.path.basename(os.path.normpath(args.out)),
        "architecture": state["config"],
        "weights": "weights",
        "weights_dtype": args.dtype,
        "training": {"params": state["params"], "steps": state["step"], "tokens_seen": state["tokens_seen"],
                     "device_seconds": round(state["device_seconds"], 1), "final_answer_loss": round(last["answer_loss"], 4),
                     "calls": state["calls"], "held_out_at_end": state["evals"][-1] if state["evals"] else None,
                     "exported_at_commit": commit},
    }
    with open(os.path.join(args.out, "config.json"), "w") as f:
        json.dump(config, f, indent=1)
    print(f"wrote {args.out}: {state['params'] / 1e6:.2f}M parameters, {state['step']} steps, {args.dtype} weights")


if __name__ == "__main__":
    main()
