"""Read probes against the dense decode and PyTorch on the same paged cache, in one process:

    python3 scripts/gpu-probe.py LIB.so OUT_DIR [OTHER_LIB.so ...]

For the shapes where issue 9's bars apply, times the decode, PyTorch's
scaled_dot_product_attention on the same data gathered into contiguous tensors, and
attnbench_cuda_read_probe (kernels/cuda/probe.cu) in each method and a few (units per
SM, stages) settings: what each way of reading the paged cache reaches without
arithmetic. Every figure is the median of 5 timings of 20 calls; each round takes the
configurations in turn, so they share the cache and the machine's state. Each shape is
run twice: with the cache's blocks in random order in the pools (a paged cache), and in
sequence order (then each sequence's K and V lie in the pools exactly as in PyTorch's
contiguous tensors). Each OTHER_LIB.so, another build of the library, has its decode
timed alongside (named by its file name).
"""
import ctypes, json, os, sys
import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from gpu_common import ITERS, REPS, Cache, decode, dev, load, median, torch_time

lib = load(sys.argv[1])
out_dir = sys.argv[2]
others = {}
for path in sys.argv[3:]:
    others[os.path.basename(path)] = ctypes.CDLL(path)
    others[os.path.basename(path)].attnbench_cuda_last_error.restype = ctypes.c_char_p

# (name, method, units per SM, stages); units are warps (CTAs for cta_bulk).
SPLITS_PER_WARP = [int(x) for x in os.environ.get("GPU_PROBE_SPLITS_PER_WARP", "").split(",") if x]
PROBES = [("warp_bulk", 1, 12, 2), ("cta_bulk", 2, 2, 3)]


def probe(args, method, units, stages):
    ms = ctypes.c_float(0)
    if lib.attnbench_cuda_read_probe(ctypes.byref(args), method, units, stages, ITERS, ctypes.byref(ms)) != 0:
        raise RuntimeError(lib.attnbench_cuda_last_error().decode())
    return ms.value


R = {"device": torch.cuda.get_device_name(), "torch": torch.__version__, "shapes": []}
src = torch.empty(4 << 30, dtype=torch.uint8, device=dev)
dst = torch.empty_like(src)
copy_bw = 2 * src.numel() / (torch_time(lambda: dst.copy_(src)) / 1e3)
del src, dst
torch.cuda.empty_cache()
R["copy_bytes_per_s"] = copy_bw
print(f"copy {copy_bw / 1e12:.3f} TB/s")

for n, B in ((32768, 8), (131072, 8), (32768, 32), (131072, 32)):
    c = Cache(B, 32, 8, 128, n, seed=n + B)
    out = torch.empty(B, 32, 128, device=dev)
    k, v = c.gathered(c.k), c.gathered(c.v)
    q16 = c.q.half().unsqueeze(2)
    runs = {"decode": lambda: decode(c.args(out), ITERS),
            "torch": lambda: torch_time(lambda: F.scaled_dot_product_attention(q16, k, v, scale=1.0, enable_gqa=True))}
    # The split queue's granularity: k splits per resident warp (1584 resident warps on
    # the H100 at 3 CTAs of 4 warps per SM); the default ("decode") picks its own.
    for per_warp in SPLITS_PER_WARP:
        splits = max(1, per_warp * 1584 // (B * 8))
        runs[f"decode {per_warp} splits/warp"] = lambda splits=splits: decode(c.args(out, splits=splits), ITERS)
    for name, library in others.items():
        runs[f"decode {name}"] = lambda library=library: decode(c.args(out), ITERS, library)
    for name, m, u, s in PROBES:
        runs[f"{name} u{u} s{s}"] = (lambda m=m, u=u, s=s: probe(c.args(out), m, u, s))
    random_table = c.table
    in_order = torch.arange(c.table.numel(), dtype=torch.int32, device=dev).view_as(c.table)
    for key in [k for k in runs if k != "torch"]:
        def ordered(fn=runs[key]):
            c.table = in_order
            try:
                return fn()
            finally:
                c.table = random_table
        runs[key + " (in order)"] = ordered
    times = {key: [] for key in runs}
    for fn in runs.values():
        fn()
    for _ in range(REPS):
        for key, fn in runs.items():
            times[key].append(fn())
    row = {"context": n, "batch": B, "bytes": c.step_bytes(), "ms": {}, "of_copy": {}}
    for key, vals in times.items():
        ms = median(vals)
        row["ms"][key] = ms
        row["of_copy"][key] = c.step_bytes() / (ms / 1e3) / copy_bw
        print(f"n={n:6d} B={B:2d} {key:22s} {ms:7.3f} ms  {row['of_copy'][key]:.3f} of copy")
    R["shapes"].append(row)
    del c, out, k, v, q16
    torch.cuda.empty_cache()

with open(f"{out_dir}/gpu-probe.json", "w") as f:
    json.dump(R, f, indent=1)
