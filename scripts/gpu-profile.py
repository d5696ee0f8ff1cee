"""One dense decode step, the warp_bulk read probe and PyTorch's attention on the same cache
(128K tokens, batch 8), each run 3 times without timing: a workload for Nsight Compute
(`ncu ... python3 scripts/gpu-profile.py LIB.so`) or for watching clocks and power.

    python3 scripts/gpu-profile.py LIB.so [SECONDS] [PROBE_METHOD]

With SECONDS (0: none), repeats the three in turn for about that long (for nvidia-smi
sampling). PROBE_METHOD: attnbench_cuda_read_probe's method (default 1, warp_bulk; 0 is
warp_loads, the decode's own read pattern).
"""
import ctypes, os, sys, time
import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from gpu_common import Cache, decode, dev, load

lib = load(sys.argv[1])
seconds = float(sys.argv[2]) if len(sys.argv) > 2 else 0
method = int(sys.argv[3]) if len(sys.argv) > 3 else 1
c = Cache(8, 32, 8, 128, 131072, seed=5)
out = torch.empty(8, 32, 128, device=dev)
k, v = c.gathered(c.k), c.gathered(c.v)
q16 = c.q.half().unsqueeze(2)
args = c.args(out)
ms = ctypes.c_float(0)


def probe(iters=0):
    if lib.attnbench_cuda_read_probe(ctypes.byref(args), method, 12, 2, iters, ctypes.byref(ms)) != 0:
        raise RuntimeError(lib.attnbench_cuda_last_error().decode())


def sdpa():
    F.scaled_dot_product_attention(q16, k, v, scale=1.0, enable_gqa=True)


torch.cuda.synchronize()
def sdpa_many(iters):
    for _ in range(iters):
        sdpa()
    torch.cuda.synchronize()


for name, fn, many in (("decode", lambda: decode(args), lambda: decode(args, 50)), ("probe", probe, lambda: probe(50)),
                       ("torch", sdpa, lambda: sdpa_many(50))):
    if seconds:
        t0 = time.time()
        while time.time() < t0 + seconds / 3:
            many()
        print(f"{name} done at {time.time():.2f}", flush=True)
    else:
        for _ in range(3):
            fn()
        torch.cuda.synchronize()
