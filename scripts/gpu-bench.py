"""Times the CUDA kernels (kernels/cuda) on one GPU against the measured ceilings and
PyTorch's scaled_dot_product_attention, in one process:

    python3 scripts/gpu-bench.py LIB.so OUT_DIR [DUMP_DIR]

Run by scripts/gpu-bench.sh after the GPU tests. Our kernels are timed inside the library
(CUDA events around 20 calls after a warm-up); PyTorch the same way here; every figure is
the median of 5 such timings, and A/B pairs (ART against none) alternate. Python only
sets up the data and calls both; it is not on the measuring path of our kernels.
DUMP_DIR, from `attnbench dump-kv`, holds the synthetic model's K/V and queries: dense and
dense + ART run on them (its 8 layers as a batch of 8 sequences).
"""
import ctypes, json, os, sys
import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from gpu_common import BLOCK, DTYPE_BF16, DTYPE_FP16, ITERS, REPS, Cache, DecodeArgs, SelectArgs, decode, dev, load, median, p, rel, timed, torch_time

lib = load(sys.argv[1])
out_dir = sys.argv[2]
dump_dir = sys.argv[3] if len(sys.argv) > 3 else None
# GPU_BENCH_QUICK=1: only the ceilings, dense decode and ART's overhead where the bars
# apply (to compare builds of the library in one call).
QUICK = os.environ.get("GPU_BENCH_QUICK") == "1"

def read_probe(args, method, units_per_sm, stages):
    """attnbench_cuda_read_probe (kernels/cuda/probe.cu): reads what the decode of args reads."""
    ms = ctypes.c_float(0)
    if lib.attnbench_cuda_read_probe(ctypes.byref(args), method, units_per_sm, stages, ITERS, ctypes.byref(ms)) != 0:
        raise RuntimeError(lib.attnbench_cuda_last_error().decode())
    return ms.value


R = {"device": torch.cuda.get_device_name(), "torch": torch.__version__, "iters": ITERS, "reps": REPS}

# 1. Ceilings: device-to-device copy (bytes read + written per second), and a read-only
#    pass (torch's sum over the same bytes) for reference.
src = torch.empty(4 << 30, dtype=torch.uint8, device=dev)
dst = torch.empty_like(src)
copy_bw = 2 * src.numel() / (torch_time(lambda: dst.copy_(src)) / 1e3)
del dst
half = src.view(torch.float16)
read_bw = src.numel() / (torch_time(lambda: half.sum(dtype=torch.float32)) / 1e3)
del src, half
torch.cuda.empty_cache()
R["copy_bytes_per_s"], R["read_bytes_per_s"] = copy_bw, read_bw
print(f"copy (read + write) {copy_bw / 1e12:.3f} TB/s; read-only (torch sum) {read_bw / 1e12:.3f} TB/s")

# 2. Dense decode, 32 query / 8 KV heads x 128, fp16, against PyTorch on the same data.
hq, hkv, d = 32, 8, 128
R["dense"] = []
for n in (32768, 131072) if QUICK else (4096, 16384, 32768, 65536, 131072):
    for B in (8, 32) if QUICK else (1, 8, 32):
        c = Cache(B, hq, hkv, d, n, seed=n + B)
        out = torch.full((B, hq, d), float("nan"), device=dev)
        ms = timed(lambda: decode(c.args(out), ITERS))
        # The read ceiling of this step: the best of two read probes over the same cache.
        probe_ms = min(timed(lambda: read_probe(c.args(out), 1, 12, 2)), timed(lambda: read_probe(c.args(out), 2, 2, 3)))
        k, v = c.gathered(c.k), c.gathered(c.v)
        q16 = c.q.half().unsqueeze(2)
        ref = F.scaled_dot_product_attention(q16, k, v, scale=1.0, enable_gqa=True)
        torch_ms = torch_time(lambda: F.scaled_dot_product_attention(q16, k, v, scale=1.0, enable_gqa=True))
        row = {"context": n, "batch": B, "ms": ms, "bytes": c.step_bytes(), "fraction_of_copy":
               c.step_bytes() / (ms / 1e3) / copy_bw, "read_probe_ms": probe_ms, "fraction_of_read_probe": probe_ms / ms,
               "torch_ms": torch_ms, "vs_torch": torch_ms / ms,
               "rel_l2_vs_torch": rel(out, ref.squeeze(2).float()), "all_written": not torch.isnan(out).any().item()}
        R["dense"].append(row)
        print(f"dense n={n:6d} B={B:2d}: {ms:7.3f} ms = {row['fraction_of_copy']:.3f} of copy,"
              f" {row['fraction_of_read_probe']:.3f} of the read probe; torch {torch_ms:7.3f} ms;"
              f" speed vs torch {row['vs_torch']:.3f}; err vs torch {row['rel_l2_vs_torch']:.1e}")
        del c, k, v, q16, ref, out
        torch.cuda.empty_cache()

# 4. ART's cost when it never fires (tau 0: no chunk passes), alternating with plain dense.
R["art_overhead"] = []
for n in (32768, 131072) if QUICK else (32768, 65536, 131072):
    for B in (8, 32):
        c = Cache(B, hq, hkv, d, n, seed=11)
        out = torch.empty(B, hq, d, device=dev)
        cnt = [torch.zeros(B * hkv, dtype=torch.int32, device=dev) for _ in range(3)]
        plain, art = [], []
        decode(c.args(out), ITERS)  # settle
        for _ in range(REPS):
            plain.append(decode(c.args(out), ITERS))
            art.append(decode(c.args(out, art=1, tau_mag=0.0, tau_dir=0.0, patience=5, chunks_planned=p(cnt[0]),
                                      chunks_visited=p(cnt[1]), stops=p(cnt[2])), ITERS))
        assert int(cnt[2].sum()) == 0 and torch.equal(cnt[0], cnt[1]), "ART fired with tau 0"
        row = {"context": n, "batch": B, "dense_ms": median(plain), "art_never_ms": median(art),
               "overhead": median(art) / median(plain) - 1}
        R["art_overhead"].append(row)
        print(f"ART never firing n={n} B={B}: {row['dense_ms']:.3f} -> {row['art_never_ms']:.3f} ms,"
              f" overhead {100 * row['overhead']:+.2f}%")
        del c, out
        torch.cuda.empty_cache()

if QUICK:
    json.dump(R, open(f"{out_dir}/gpu-bench-quick.json", "w"), indent=1)
    sys.exit(0)

# 2b. The same where the bar applies with the pool's blocks in sequence order: how much
#     the random block order of a paged cache costs (PyTorch reads contiguous tensors).
R["dense_in_order"] = []
for n in (32768, 131072):
    for B in (8, 32):
        c = Cache(B, hq, hkv, d, n, seed=n + B)
        c.table = torch.arange(c.table.numel(), dtype=torch.int32, device=dev).view_as(c.table)
        out = torch.empty(B, hq, d, device=dev)
        ms = timed(lambda: decode(c.args(out), ITERS))
        k, v = c.gathered(c.k), c.gathered(c.v)
        q16 = c.q.half().unsqueeze(2)
        torch_ms = torch_time(lambda: F.scaled_dot_product_attention(q16, k, v, scale=1.0, enable_gqa=True))
        row = {"context": n, "batch": B, "ms": ms, "fraction_of_copy": c.step_bytes() / (ms / 1e3) / copy_bw,
               "torch_ms": torch_ms, "vs_torch": torch_ms / ms}
        R["dense_in_order"].append(row)
        print(f"dense, blocks in order, n={n:6d} B={B:2d}: {ms:7.3f} ms = {row['fraction_of_copy']:.3f} of copy;"
              f" torch {torch_ms:.3f} ms; speed vs torch {row['vs_torch']:.3f}")
        del k, v, q16
        del c, out
        torch.cuda.empty_cache()

# 3. Split sweep (warps per traversal) where the bar applies.
R["split_sweep"] = []
for n, B in ((32768, 8), (131072, 8), (32768, 32), (131072, 32)):
    c = Cache(B, hq, hkv, d, n, seed=7)
    out = torch.empty(B, hq, d, device=dev)
    for splits in (0, 4, 8, 16, 32, 64):
        ms = timed(lambda: decode(c.args(out, splits=splits), ITERS))
        frac = c.step_bytes() / (ms / 1e3) / copy_bw
        R["split_sweep"].append({"context": n, "batch": B, "splits": splits, "ms": ms, "fraction_of_copy": frac})
        print(f"split sweep n={n} B={B} splits={splits or 'auto'}: {ms:.3f} ms, {frac:.3f} of copy")
    del c, out
    torch.cuda.empty_cache()

# 5. Sparse decode at 128K: TokenSelect's 2K + 512 (128 initial + 2048 selected + 512 local
#    tokens per head, a token list) and a block list of the same 2688 tokens (42 blocks).
R["sparse"] = []
n = 131072
for B in (1, 8, 32):
    c = Cache(B, hq, hkv, d, n, seed=13)
    out = torch.empty(B, hq, d, device=dev)
    dense_ms = timed(lambda: decode(c.args(out), ITERS))
    g = torch.Generator(device=dev).manual_seed(3)
    mid = torch.stack([torch.randperm(n - 640, device=dev, generator=g)[:2048] + 128 for _ in range(B * hkv)])
    toks = torch.cat([torch.arange(128, device=dev).expand(B * hkv, 128), mid.sort(dim=1).values,
                      torch.arange(n - 512, n, device=dev).expand(B * hkv, 512)], dim=1).int().contiguous()
    counts = torch.full((B * hkv,), toks.shape[1], dtype=torch.int32, device=dev)
    tok_ms = timed(lambda: decode(c.args(out, list_kind=2, list=p(toks), list_counts=p(counts),
                                         max_list=toks.shape[1]), ITERS))
    nblk = toks.shape[1] // BLOCK
    blks = torch.stack([torch.randperm(n // BLOCK, device=dev, generator=g)[:nblk] for _ in range(B * hkv)]).int()
    bcounts = torch.full((B * hkv,), nblk, dtype=torch.int32, device=dev)
    blk_ms = timed(lambda: decode(c.args(out, list_kind=1, list=p(blks), list_counts=p(bcounts), max_list=nblk),
                                  ITERS))
    sparse_bytes = B * hkv * toks.shape[1] * d * 4
    row = {"context": n, "batch": B, "tokens": toks.shape[1], "dense_ms": dense_ms, "token_list_ms": tok_ms,
           "block_list_ms": blk_ms, "token_list_speedup": dense_ms / tok_ms, "block_list_speedup": dense_ms / blk_ms,
           "token_list_fraction_of_copy": sparse_bytes / (tok_ms / 1e3) / copy_bw,
           "block_list_fraction_of_copy": sparse_bytes / (blk_ms / 1e3) / copy_bw}
    R["sparse"].append(row)
    print(f"sparse 2K+512 of 128K B={B}: dense {dense_ms:.3f} ms; tokens {tok_ms:.4f} ms ({row['token_list_speedup']:.1f}x,"
          f" {row['token_list_fraction_of_copy']:.2f} of copy); blocks {blk_ms:.4f} ms ({row['block_list_speedup']:.1f}x,"
          f" {row['block_list_fraction_of_copy']:.2f} of copy)")
    del c, out
    torch.cuda.empty_cache()

# 6. TokenSelect's selection (scoring, soft vote, top-2048) at 32K and 128K.
R["select"] = []
for n in (32768, 131072):
    for B in (1, 8):
        c = Cache(B, hq, hkv, d, n, seed=17)
        sel = torch.empty(B, 2048, dtype=torch.int32, device=dev)
        nsel = torch.empty(B, dtype=torch.int32, device=dev)
        a = SelectArgs(dtype=DTYPE_FP16, batch=B, n_query_heads=hq, n_kv_heads=hkv, head_dim=d, queries=p(c.q), k_pool=p(c.k),
                       block_table=p(c.table), max_blocks=c.max_blocks, lens=p(c.lens), max_len=n, n_init=128,
                       n_local=512, top_k=2048, scores=None, selected=p(sel), n_selected=p(nsel))
        parts = (ctypes.c_float * 3)()

        def once():
            ms = ctypes.c_float(0)
            if lib.attnbench_cuda_select(ctypes.byref(a), ITERS, ctypes.byref(ms), parts) != 0:
                raise RuntimeError(lib.attnbench_cuda_last_error().decode())
            return ms.value, list(parts)
        runs = [once() for _ in range(REPS)]
        ms = median([r[0] for r in runs])
        stage = [median([r[1][i] for r in runs]) for i in range(3)]
        k_bytes = B * hkv * (n - 640) * d * 2
        row = {"context": n, "batch": B, "ms": ms, "score_ms": stage[0], "vote_ms": stage[1], "top_k_ms": stage[2],
               "score_fraction_of_copy": k_bytes / (stage[0] / 1e3) / copy_bw, "top_k_over_score": stage[2] / stage[0]}
        R["select"].append(row)
        print(f"select n={n} B={B}: {ms:.3f} ms (score {stage[0]:.3f} = {row['score_fraction_of_copy']:.2f} of copy,"
              f" vote {stage[1]:.3f}, top-k {stage[2]:.3f} = {row['top_k_over_score']:.2f} of scoring)")
        del c
        torch.cuda.empty_cache()

# 7. Dense and dense + ART on the synthetic model's K/V (attnbench dump-kv), the art
#    plugin's default parameters (tau_mag 1e-7, tau_dir 1e-3, patience 5).
if dump_dir:
    meta = json.load(open(os.path.join(dump_dir, "meta.json")))
    L, Hkv, Hq, D, N = meta["n_layers"], meta["n_kv_heads"], meta["n_query_heads"], meta["head_dim"], meta["n_tokens"]
    dt = {"fp16": torch.float16, "bf16": torch.bfloat16}[meta["dtype"]]
    nb = (N + BLOCK - 1) // BLOCK

    def pool(name):
        x = torch.from_file(os.path.join(dump_dir, name), size=L * Hkv * N * D, dtype=dt).view(L, Hkv, N, D)
        padded = torch.zeros(L, Hkv, nb * BLOCK, D, dtype=dt)
        padded[:, :, :N] = x
        return padded.view(L * Hkv * nb, BLOCK, D).to(dev)
    kp, vp = pool("k.bin"), pool("v.bin")
    q = (torch.from_file(os.path.join(dump_dir, "q.bin"), size=L * Hq * D, dtype=torch.float32).view(L, Hq, D)
         * meta["scale"]).to(dev).contiguous()
    table = torch.arange(L * Hkv * nb, dtype=torch.int32, device=dev).view(L, Hkv, nb)
    lens = torch.full((L,), N, dtype=torch.int32, device=dev)
    kk = kp.view(L, Hkv, nb * BLOCK, D)[:, :, :N].double()
    vv = vp.view(L, Hkv, nb * BLOCK, D)[:, :, :N].double()
    w = torch.softmax(q.double().view(L, Hkv, Hq // Hkv, D) @ kk.transpose(2, 3), dim=-1)
    ref = (w @ vv).view(L, Hq, D)
    del kk, vv, w
    base = DecodeArgs(dtype=DTYPE_BF16 if dt == torch.bfloat16 else DTYPE_FP16, batch=L, n_query_heads=Hq, n_kv_heads=Hkv, head_dim=D,
                      queries=p(q), k_pool=p(kp), v_pool=p(vp), block_table=p(table), max_blocks=nb, lens=p(lens),
                      max_len=N)
    out = torch.full((L, Hq, D), float("nan"), device=dev)
    cnt = [torch.zeros(L * Hkv, dtype=torch.int32, device=dev) for _ in range(3)]

    def run(**kw):
        a = DecodeArgs.from_buffer_copy(base)
        a.out = p(out)
        a.chunks_planned, a.chunks_visited, a.stops = p(cnt[0]), p(cnt[1]), p(cnt[2])
        for key, val in kw.items():
            setattr(a, key, val)
        return a
    dense_ms = []
    art_rows = {}
    R["dump"] = {"meta": meta, "runs": []}
    configs = {"dense": {}, "art": dict(art=1, tau_mag=1e-7, tau_dir=1e-3, patience=5),
               "art one split": dict(art=1, tau_mag=1e-7, tau_dir=1e-3, patience=5, splits=1),
               "art never fires": dict(art=1, tau_mag=0.0, tau_dir=0.0, patience=5)}
    times = {k: [] for k in configs}
    for _ in range(REPS):
        for name, kw in configs.items():
            times[name].append(decode(run(**kw), ITERS))
    for name, kw in configs.items():
        decode(run(**kw))
        planned, visited = cnt[0].cpu().view(L, Hkv), cnt[1].cpu().view(L, Hkv)
        by_role = {}
        for l in range(L):
            for h in range(Hkv):
                role = meta["roles"][l][h] if l < len(meta["roles"]) else meta["roles"][0][h]
                s = by_role.setdefault(role, [0, 0])
                s[0] += int(planned[l, h])
                s[1] += int(visited[l, h])
        row = {"run": name, "ms": median(times[name]), "rel_l2_vs_float64": rel(out, ref),
               "chunks_planned": int(planned.sum()), "chunks_visited": int(visited.sum()),
               "skipped": 1 - int(visited.sum()) / int(planned.sum()), "stops": int(cnt[2].sum()),
               "skipped_by_role": {r: 1 - v[1] / v[0] for r, v in by_role.items()}}
        row["vs_dense"] = median(times["dense"]) / row["ms"]
        R["dump"]["runs"].append(row)
        print(f"dump {meta['task']} {N} tokens, {name}: {row['ms']:.3f} ms ({row['vs_dense']:.3f}x dense), "
              f"skipped {100 * row['skipped']:.1f}%, err vs float64 {row['rel_l2_vs_float64']:.1e}, by role "
              + ", ".join(f"{r} {100 * s:.0f}%" for r, s in row["skipped_by_role"].items()))

with open(f"{out_dir}/gpu-bench.json", "w") as f:
    json.dump(R, f, indent=1)
