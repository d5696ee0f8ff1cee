"""Turns a model folder (what export.py writes: models/NAME) back into a training
checkpoint that train.py continues or grows from (--grow-from):

  python3 scripts/train/import.py models/NAME CKPT

A checkpoint is not kept in the tree (51 MB in float32 for the default model) and does not
outlive the session that fetched it; a model folder does. The weights come back in
float32 from the folder's dtype (f16 rounding stays in them); the training state keeps
the folder's step, tokens, device time and calls, and its last held-out evaluation, but
not the loss curve, which the folder does not hold."""
import argparse
import json
import os

import torch

import st_format as st


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("model")
    p.add_argument("ckpt")
    args = p.parse_args()
    with open(os.path.join(args.model, "config.json")) as f:
        config = json.load(f)
    if config.get("format") != "attnbench-trained-1":
        raise SystemExit(f"{args.model}/config.json: not an attnbench-trained-1 model")
    weights, _ = st.read(os.path.join(args.model, config["weights"] + ".safetensors"))
    training = config["training"]
    state = {"config": config["architecture"], "params": training["params"], "step": training["steps"],
             "tokens_seen": training["tokens_seen"], "device_seconds": training["device_seconds"],
             "calls": training["calls"], "losses": [],
             "evals": [training["held_out_at_end"]] if training.get("held_out_at_end") else [],
             "imported_from": {"model": config["name"], "weights_dtype": config["weights_dtype"]}}
    if os.path.exists(os.path.join(args.ckpt, "train_state.json")):
        raise SystemExit(f"{args.ckpt}: already holds a checkpoint")
    os.makedirs(args.ckpt, exist_ok=True)
    st.write_sharded(args.ckpt, "weights", {k: v.float() for k, v in sorted(weights.items())},
                     {"model": "attnbench-trained-1"}, 15 << 20)
    with open(os.path.join(args.ckpt, "train_state.json"), "w") as f:
        json.dump(state, f, indent=1)
    print(f"wrote {args.ckpt}: {config['name']} at step {state['step']}")


if __name__ == "__main__":
    main()
