"""The trained model's architecture (issue 24): a Llama-style decoder. RMSNorm before
attention and MLP, rotary positions with a large base, grouped-query attention, a SwiGLU
MLP, the token embedding tied to the LM head. Weights are stored in the safetensors
format (see st_format.py); the names below are the ones the C++ loader reads."""
import math
from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F
from torch import nn


@dataclass
class Config:
    vocab_size: int
    dim: int = 384
    n_layers: int = 6
    n_heads: int = 6
    n_kv_heads: int = 2
    head_dim: int = 64
    hidden: int = 1024
    rope_base: float = 500000.0
    norm_eps: float = 1e-5

    def to_dict(self):
        return asdict(self)

    def n_params(self):
        attn = self.dim * self.head_dim * (2 * self.n_heads + 2 * self.n_kv_heads)
        mlp = 3 * self.dim * self.hidden
        return self.vocab_size * self.dim + self.n_layers * (attn + mlp + 2 * self.dim) + self.dim


class RMSNorm(nn.Module):
    def __init__(self, dim, eps):
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(dim))

    def forward(self, x):
        x32 = x.float()
        return (x32 * torch.rsqrt(x32.pow(2).mean(-1, keepdim=True) + self.eps)).type_as(x) * self.weight


def rope_tables(cfg, length, device):
    """cos and sin of shape [length, head_dim / 2]: pairs (2i, 2i + 1) rotate by
    position * base^(-2i / head_dim)."""
    inv = cfg.rope_base ** (-torch.arange(0, cfg.head_dim, 2, device=device, dtype=torch.float64) / cfg.head_dim)
    angles = torch.arange(length, device=device, dtype=torch.float64)[:, None] * inv[None, :]
    return angles.cos().float(), angles.sin().float()


def apply_rope(x, cos, sin):
    """x: [batch, heads, length, head_dim]; interleaved pairs (2i, 2i + 1)."""
    x0, x1 = x[..., 0::2].float(), x[..., 1::2].float()
    c, s = cos[None, None], sin[None, None]
    out = torch.stack((x0 * c - x1 * s, x0 * s + x1 * c), dim=-1).flatten(-2)
    return out.type_as(x)


def causal_attention(q, k, v):
    """q: [B, H, T, D]; k, v: [B, KV, T, D]. Grouped-query causal attention, softmax scale
    1/sqrt(D). PyTorch's fused kernels take grouped K/V (enable_gqa, PyTorch 2.5 on) only
    in half precision; elsewhere K/V are repeated per query head, so that float32 still
    gets a memory-efficient kernel instead of the full [T, T] matrix."""
    groups = q.shape[1] // k.shape[1]
    fused = hasattr(F, "scaled_dot_product_attention")
    half = q.dtype in (torch.float16, torch.bfloat16)
    if fused and groups > 1 and half and tuple(int(x) for x in torch.__version__.split(".")[:2]) >= (2, 5):
        return F.scaled_dot_product_attention(q, k, v, is_causal=True, enable_gqa=True)
    if groups > 1:
        k = k.repeat_interleave(groups, dim=1)
        v = v.repeat_interleave(groups, dim=1)
    if fused:
        return F.scaled_dot_product_attention(q, k, v, is_causal=True)
    # PyTorch 1.x (CPU smoke tests only): the plain form.
    T = q.shape[2]
    s = (q.float() @ k.float().transpose(-1, -2)) / math.sqrt(q.shape[-1])
    s = s.masked_fill(torch.ones(T, T, dtype=torch.bool, device=q.device).triu(1), float("-inf"))
    return (s.softmax(-1) @ v.float()).type_as(q)


class Block(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        self.cfg = cfg
        self.attn_norm = RMSNorm(cfg.dim, cfg.norm_eps)
        self.wq = nn.Linear(cfg.dim, cfg.n_heads * cfg.head_dim, bias=False)
        self.wk = nn.Linear(cfg.dim, cfg.n_kv_heads * cfg.head_dim, bias=False)
        self.wv = nn.Linear(cfg.dim, cfg.n_kv_heads * cfg.head_dim, bias=False)
        self.wo = nn.Linear(cfg.n_heads * cfg.head_dim, cfg.dim, bias=False)
        self.mlp_norm = RMSNorm(cfg.dim, cfg.norm_eps)
        self.w_gate = nn.Linear(cfg.dim, cfg.hidden, bias=False)
        self.w_up = nn.Linear(cfg.dim, cfg.hidden, bias=False)
        self.w_down = nn.Linear(cfg.hidden, cfg.dim, bias=False)

    def attention(self, x, cos, sin):
        B, T, _ = x.shape
        c = self.cfg
        q = self.wq(x).view(B, T, c.n_heads, c.head_dim).transpose(1, 2)
        k = self.wk(x).view(B, T, c.n_kv_heads, c.head_dim).transpose(1, 2)
        v = self.wv(x).view(B, T, c.n_kv_heads, c.head_dim).transpose(1, 2)
        q, k = apply_rope(q, cos, sin), apply_rope(k, cos, sin)
        o = causal_attention(q, k, v)  # softmax scale 1/sqrt(head_dim)
        return o.transpose(1, 2).reshape(B, T, c.n_heads * c.head_dim)

    def forward(self, x, cos, sin, trace=None):
        a = self.attention(self.attn_norm(x), cos, sin)
        if trace is not None:
            trace.append(a)
        x = x + self.wo(a)
        h = self.mlp_norm(x)
        return x + self.w_down(F.silu(self.w_gate(h)) * self.w_up(h))


class Model(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        self.cfg = cfg
        self.embed = nn.Embedding(cfg.vocab_size, cfg.dim)
        self.layers = nn.ModuleList(Block(cfg) for _ in range(cfg.n_layers))
        self.norm = RMSNorm(cfg.dim, cfg.norm_eps)
        self.apply(self._init)
        for layer in self.layers:  # residual branches scaled down with depth
            for w in (layer.wo.weight, layer.w_down.weight):
                nn.init.normal_(w, std=0.02 / math.sqrt(2 * cfg.n_layers))

    @staticmethod
    def _init(m):
        if isinstance(m, (nn.Linear, nn.Embedding)):
            nn.init.normal_(m.weight, std=0.02)

    def forward(self, tokens, trace=None, positions=None):
        """tokens: [B, T] int64 -> logits [B, T, vocab], or with positions (a [B, T]
        boolean mask) the logits of those positions only, [N, vocab]: the LM head over
        every position is most of a small model's training time. With trace (a list),
        each layer's attention output (before wo) is appended."""
        cos, sin = rope_tables(self.cfg, tokens.shape[1], tokens.device)
        x = self.embed(tokens)
        for layer in self.layers:
            x = layer(x, cos, sin, trace)
        if positions is not None:
            x = x[positions]
        # The final norm and the LM head in float32 even under autocast: bf16 logits move
        # in steps of 0.125 at |logit| 16-32, enough to flip an argmax against the C++
        # model's float32.
        with torch.autocast(tokens.device.type, enabled=False):
            return F.linear(self.norm(x.float()), self.embed.weight.float())

    def named_tensors(self):
        """The weights by the names the safetensors file and the C++ loader use."""
        out = {"embed.weight": self.embed.weight, "norm.weight": self.norm.weight}
        for i, layer in enumerate(self.layers):
            for name in ("attn_norm", "mlp_norm"):
                out[f"layers.{i}.{name}.weight"] = getattr(layer, name).weight
            for name in ("wq", "wk", "wv", "wo", "w_gate", "w_up", "w_down"):
                out[f"layers.{i}.{name}.weight"] = getattr(layer, name).weight
        return out

def grow(net, weights, old_cfg):
    """Loads a smaller model's weights (same width, heads and vocabulary; fewer layers)
    into net's first layers, and makes every layer beyond them the identity at first
    (its attention and MLP output projections zero), so the grown model starts as the
    small one's function and learns on top of what it learnt."""
    cfg = net.cfg
    same = ("vocab_size", "dim", "n_heads", "n_kv_heads", "head_dim", "hidden", "rope_base")
    if any(getattr(cfg, k) != getattr(old_cfg, k) for k in same) or old_cfg.n_layers > cfg.n_layers:
        raise ValueError(f"cannot grow {old_cfg} into {cfg}: only more layers of the same shape")
    named = net.named_tensors()
    with torch.no_grad():
        for k, v in weights.items():
            named[k].copy_(v.float())
        for layer in net.layers[old_cfg.n_layers:]:
            layer.wo.weight.zero_()
            layer.w_down.weight.zero_()

