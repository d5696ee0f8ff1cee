"""SnapKV (Li et al., "SnapKV: LLM Knows What You are Looking for Before Generation",
arXiv 2404.14469) as an attnbench python policy. After prefill each KV head keeps
`budget` tokens: the last `window` prompt tokens, and the prefix tokens that the
observation queries attend to most, their scores max-pooled over `kernel` neighbours so a
kept token brings its neighbours. Decoding then attends to everything kept.

One difference from the paper: its observation window is the prompt's last 32 queries;
attnbench's plugin interface shows a policy only the last prompt token's queries at
prefill, so here the observation is that one token (every query head of the KV head's
group, their attention summed)."""
import numpy as np


class SnapKV:
    def __init__(self, model, budget=1024, window=32, kernel=7):
        if not (0 < window < budget) or kernel < 1 or kernel % 2 == 0:
            raise ValueError(f"need 0 < window < budget and an odd kernel, got {budget}, {window}, {kernel}")
        self.group = model.n_query_heads // model.n_kv_heads
        self.budget, self.window, self.kernel = budget, window, kernel

    def on_prefill(self, request):
        keep = []
        for h, head in enumerate(request.kv):
            n = head.n_tokens
            if n <= self.budget:
                keep.append(None)  # everything fits
                continue
            keys = np.concatenate(head.key_blocks())[: n - self.window]
            if keys.dtype == np.uint16:  # a bf16 cache comes as its raw bits
                keys = (keys.astype(np.uint32) << 16).view(np.float32)
            keys = keys.astype(np.float32)
            q = request.queries[h * self.group:(h + 1) * self.group]
            logits = (q @ keys.T) * request.scale
            p = np.exp(logits - logits.max(axis=1, keepdims=True))
            votes = (p / p.sum(axis=1, keepdims=True)).sum(axis=0)
            pad = self.kernel // 2
            padded = np.pad(votes, pad, constant_values=-np.inf)
            pooled = np.lib.stride_tricks.sliding_window_view(padded, self.kernel).max(axis=1)
            top = np.argpartition(-pooled, self.budget - self.window - 1)[: self.budget - self.window]
            keep.append(np.concatenate([top, np.arange(n - self.window, n)]))
        return keep

    def plan(self, request):
        return None  # attend to every token kept
