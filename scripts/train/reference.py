"""Writes the reference the C++ trained model is checked against (issue 24): for one
prompt, the training script's model in float32 gives every layer's attention output
(before wo) at every position and the logits of the last positions.

  python3 scripts/train/reference.py models/NAME CORPUS OUT.safetensors [--rows 8]

CORPUS is a folder from `attnbench corpus`; its first sequence is the prompt. The file
holds tokens (as F32: exact below 2^24), attention.L for each layer and logits, with the
model's name in its metadata. tests/model/test-trained.cpp reads it."""
import argparse
import json
import os

import torch

import model as M
import st_format as st
import train as T


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("model")
    p.add_argument("corpus")
    p.add_argument("out")
    p.add_argument("--rows", type=int, default=8, help="positions at the end whose logits are kept")
    args = p.parse_args()
    with open(os.path.join(args.model, "config.json")) as f:
        config = json.load(f)
    net = M.Model(M.Config(**config["architecture"]))
    weights, _ = st.read(os.path.join(args.model, config["weights"] + ".safetensors"))
    named = net.named_tensors()
    with torch.no_grad():
        for k, v in weights.items():
            named[k].copy_(v.float())
    net.eval()
    tokens = T.Corpus(args.corpus).sequence(0)
    trace = []
    with torch.no_grad():
        logits = net(tokens[None], trace=trace)[0]
    out = {"tokens": tokens.float(), "logits": logits[-args.rows:].contiguous()}
    for i, a in enumerate(trace):
        out[f"attention.{i}"] = a[0].contiguous()
    st.write(args.out, out, {"model": config["name"], "positions": str(len(tokens))})
    print(f"wrote {args.out}: {len(tokens)} tokens, {len(trace)} layers")


if __name__ == "__main__":
    main()
