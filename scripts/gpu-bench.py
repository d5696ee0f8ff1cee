"""Checks and times the CUDA decode kernel (kernels/cuda/decode.cu) against a float64
reference and PyTorch's scaled_dot_product_attention, in one process on one GPU.

    python3 scripts/gpu-bench.py LIB.so OUT_DIR

Run by scripts/gpu-bench.sh on the GPU machine. Our kernel is timed inside the library
(CUDA events around 20 launches after a warm-up); PyTorch the same way here. Python only
sets up the data and calls both; it is not on the measuring path of our kernel.
"""
import ctypes, json, math, sys, time
import torch
import torch.nn.functional as F

lib = ctypes.CDLL(sys.argv[1])
out_dir = sys.argv[2]
lib.attnbench_cuda_last_error.restype = ctypes.c_char_p
dev = torch.device("cuda")
BLOCK = 64
ITERS = 20


def p(t):
    return ctypes.c_void_p(t.data_ptr())


def make(B, hq, hkv, d, lens, seed):
    """A paged cache with blocks in random order, scaled queries, the block table."""
    g = torch.Generator(device=dev).manual_seed(seed)
    max_len = max(lens)
    max_blocks = (max_len + BLOCK - 1) // BLOCK
    n_blocks = B * hkv * max_blocks
    k_pool = (torch.randn(n_blocks, BLOCK, d, device=dev, generator=g) * 0.3).half()
    v_pool = torch.randn(n_blocks, BLOCK, d, device=dev, generator=g).half()
    table = torch.randperm(n_blocks, device=dev, generator=g).int().view(B, hkv, max_blocks).contiguous()
    q = (torch.randn(B, hq, d, device=dev, generator=g) / math.sqrt(d)).float().contiguous()
    lens_t = torch.tensor(lens, dtype=torch.int32, device=dev)
    return q, k_pool, v_pool, table, lens_t, max_blocks, max_len


def ours(q, k_pool, v_pool, table, lens_t, B, hq, hkv, d, max_blocks, max_len, iters=0, splits=0):
    out = torch.full((B, hq, d), float("nan"), device=dev)  # poisoned: every element must be written
    ms = ctypes.c_float(0)
    rc = lib.attnbench_cuda_decode(p(q), p(k_pool), p(v_pool), p(table), p(lens_t), B, hq, hkv, d, max_blocks,
                                   max_len, splits, p(out), iters, ctypes.byref(ms))
    if rc != 0:
        raise RuntimeError(lib.attnbench_cuda_last_error().decode())
    return out, ms.value


def gather(pool, table, n):
    B, hkv, mb = table.shape
    return pool[table.view(-1).long()].view(B, hkv, mb * BLOCK, -1)[:, :, :n]


def reference(q, k_pool, v_pool, table, lens, hq, hkv):
    """float64 attention per sequence (its own length)."""
    outs = []
    for b, n in enumerate(lens):
        k = gather(k_pool, table[b:b + 1], max(lens))[0, :, :n].double()  # [hkv, n, d]
        v = gather(v_pool, table[b:b + 1], max(lens))[0, :, :n].double()
        qq = q[b].double().view(hkv, hq // hkv, -1)  # [hkv, G, d]
        w = torch.softmax(qq @ k.transpose(1, 2), dim=-1)
        outs.append((w @ v).reshape(hq, -1))
    return torch.stack(outs)


def rel(a, b):
    return float((a.double() - b.double()).norm() / b.double().norm())


results = {"device": torch.cuda.get_device_name(), "torch": torch.__version__, "checks": [], "timings": []}

# 1. Correctness on random inputs, every supported head dim and GQA ratio, lengths that
#    are not multiples of the block, uneven lengths in a batch, several split counts.
worst = 0.0
for d in (128, 64):
    for G in (1, 2, 4, 8):
        for lens in ([1], [63], [64], [65], [4097], [5000, 1, 300]):
            for splits in (0, 1, 3):
                hkv = 2
                B = len(lens)
                q, kp, vp, tb, lt, mb, ml = make(B, hkv * G, hkv, d, lens, seed=d * 100 + G * 10 + len(lens))
                out, _ = ours(q, kp, vp, tb, lt, B, hkv * G, hkv, d, mb, ml, splits=splits)
                ok_written = not torch.isnan(out).any().item()
                err = rel(out, reference(q, kp, vp, tb, lens, hkv * G, hkv))
                worst = max(worst, err)
                results["checks"].append({"d": d, "G": G, "lens": lens, "splits": splits, "rel_l2": err,
                                          "all_written": ok_written, "pass": ok_written and err < 5e-3})
n_fail = sum(not c["pass"] for c in results["checks"])
print(f"checks: {len(results['checks'])}, failed {n_fail}, worst relative L2 error {worst:.2e}")

# 2. The ceiling: device-to-device copy bandwidth (bytes read + bytes written per second).
src = torch.empty(4 << 30, dtype=torch.uint8, device=dev)
dst = torch.empty_like(src)
rates = []
for _ in range(7):
    e0, e1 = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    e0.record(); dst.copy_(src); e1.record(); e1.synchronize()
    rates.append(2 * src.numel() / (e0.elapsed_time(e1) / 1e3))
copy_bw = sorted(rates)[len(rates) // 2]
del src, dst
results["copy_bytes_per_s"] = copy_bw
print(f"copy bandwidth (read + write): {copy_bw / 1e12:.3f} TB/s")

# 3. Dense decode, 32 query / 8 KV heads x 128, fp16, against PyTorch on the same data.
hq, hkv, d = 32, 8, 128
for n in (4096, 16384, 32768, 65536, 131072):
    for B in (1, 8, 32):
        q, kp, vp, tb, lt, mb, ml = make(B, hq, hkv, d, [n] * B, seed=n + B)
        out, ms = ours(q, kp, vp, tb, lt, B, hq, hkv, d, mb, ml, iters=ITERS)
        step_bytes = B * hkv * n * d * 2 * 2
        k = gather(kp, tb, n)
        v = gather(vp, tb, n)
        q16 = q.half().unsqueeze(2)
        torch_ms, torch_err = None, None
        try:
            ref = F.scaled_dot_product_attention(q16, k, v, scale=1.0, enable_gqa=True)
            e0, e1 = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            e0.record()
            for _ in range(ITERS):
                F.scaled_dot_product_attention(q16, k, v, scale=1.0, enable_gqa=True)
            e1.record(); e1.synchronize()
            torch_ms = e0.elapsed_time(e1) / ITERS
            torch_err = rel(out, ref.squeeze(2).float())
        except Exception as ex:  # noqa: BLE001 - reported, not hidden
            print(f"  torch failed at n={n} B={B}: {ex}")
        row = {"context": n, "batch": B, "ms": ms, "bytes": step_bytes,
               "bytes_per_s": step_bytes / (ms / 1e3), "fraction_of_copy": step_bytes / (ms / 1e3) / copy_bw,
               "torch_ms": torch_ms, "vs_torch": (torch_ms / ms) if torch_ms else None, "rel_l2_vs_torch": torch_err}
        results["timings"].append(row)
        print(f"  n={n:6d} B={B:2d}: {ms:8.3f} ms, {row['bytes_per_s'] / 1e12:.3f} TB/s = {row['fraction_of_copy']:.3f} of copy;"
              f" torch {torch_ms if torch_ms is None else round(torch_ms, 3)} ms, err vs torch {torch_err}")
        del q, kp, vp, tb, k, v, q16
        torch.cuda.empty_cache()

# 4. Split count: 4 CTAs per SM and multiples of it (the library fills the resident slots once).
sms = torch.cuda.get_device_properties(dev).multi_processor_count
results["split_sweep"] = []
for n, B in ((32768, 8), (131072, 1), (131072, 8)):
    q, kp, vp, tb, lt, mb, ml = make(B, hq, hkv, d, [n] * B, seed=7)
    auto = max(1, min(mb, -(-4 * sms // (B * hkv))))
    for mult in (1, 2, 4, 8):
        _, ms = ours(q, kp, vp, tb, lt, B, hq, hkv, d, mb, ml, iters=ITERS, splits=min(mb, auto * mult))
        frac = B * hkv * n * d * 4 / (ms / 1e3) / copy_bw
        results["split_sweep"].append({"context": n, "batch": B, "splits": min(mb, auto * mult), "ms": ms,
                                       "fraction_of_copy": frac})
        print(f"  split sweep n={n} B={B} splits={min(mb, auto * mult)}: {ms:.3f} ms, {frac:.3f} of copy")
    del q, kp, vp, tb
    torch.cuda.empty_cache()

with open(f"{out_dir}/gpu-bench.json", "w") as f:
    json.dump(results, f, indent=1)
