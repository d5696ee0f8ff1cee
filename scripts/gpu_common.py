"""What scripts/gpu-bench.py and scripts/gpu-probe.py share: the C structures of
kernels/cuda/include/attnbench/cuda.h, a paged test cache, and the timing helpers (CUDA
events around ITERS calls, medians of REPS)."""
import ctypes, math, statistics
import torch

dev = torch.device("cuda")
BLOCK = 64
DTYPE_FP16, DTYPE_BF16 = 1, 2  # attnbench_dtype (include/attnbench/plugin.h), as cuda.h takes them
ITERS = 20
REPS = 5
P = ctypes.c_void_p
lib = None


def load(path):
    """Loads libattnbench_cuda.so for decode() and the callers."""
    global lib
    lib = ctypes.CDLL(path)
    lib.attnbench_cuda_last_error.restype = ctypes.c_char_p
    return lib


class DecodeArgs(ctypes.Structure):
    _fields_ = [("dtype", ctypes.c_int), ("batch", ctypes.c_int), ("n_query_heads", ctypes.c_int),
                ("n_kv_heads", ctypes.c_int), ("head_dim", ctypes.c_int), ("queries", P), ("k_pool", P),
                ("v_pool", P), ("block_table", P), ("max_blocks", ctypes.c_int), ("lens", P),
                ("max_len", ctypes.c_int), ("list_kind", ctypes.c_int), ("list", P), ("list_counts", P),
                ("max_list", ctypes.c_int), ("splits", ctypes.c_int), ("art", ctypes.c_int),
                ("tau_mag", ctypes.c_double), ("tau_dir", ctypes.c_double), ("patience", ctypes.c_int),
                ("min_blocks", ctypes.c_int), ("art_mass", ctypes.c_int), ("chunks_planned", P),
                ("chunks_visited", P), ("stops", P), ("out", P)]


class SelectArgs(ctypes.Structure):
    _fields_ = [("dtype", ctypes.c_int), ("batch", ctypes.c_int), ("n_query_heads", ctypes.c_int),
                ("n_kv_heads", ctypes.c_int), ("head_dim", ctypes.c_int), ("queries", P), ("k_pool", P),
                ("block_table", P), ("max_blocks", ctypes.c_int), ("lens", P), ("max_len", ctypes.c_int),
                ("n_init", ctypes.c_int), ("n_local", ctypes.c_int), ("top_k", ctypes.c_int), ("scores", P),
                ("selected", P), ("n_selected", P)]


def p(t):
    return P(t.data_ptr()) if t is not None else None


def median(xs):
    return statistics.median(xs)


class Cache:
    """A paged cache of B sequences with blocks in random order, scaled fp32 queries."""

    def __init__(self, B, hq, hkv, d, n, seed, dtype=torch.float16):
        g = torch.Generator(device=dev).manual_seed(seed)
        self.B, self.hq, self.hkv, self.d, self.n = B, hq, hkv, d, n
        self.max_blocks = (n + BLOCK - 1) // BLOCK
        nb = B * hkv * self.max_blocks
        self.k = (torch.randn(nb, BLOCK, d, device=dev, generator=g) * 0.3).to(dtype)
        self.v = torch.randn(nb, BLOCK, d, device=dev, generator=g).to(dtype)
        self.table = torch.randperm(nb, device=dev, generator=g).int().view(B, hkv, self.max_blocks).contiguous()
        self.q = (torch.randn(B, hq, d, device=dev, generator=g) / math.sqrt(d)).float().contiguous()
        self.lens = torch.full((B,), n, dtype=torch.int32, device=dev)
        self.dtype = DTYPE_BF16 if dtype == torch.bfloat16 else DTYPE_FP16

    def args(self, out, **kw):
        a = DecodeArgs(dtype=self.dtype, batch=self.B, n_query_heads=self.hq, n_kv_heads=self.hkv, head_dim=self.d,
                       queries=p(self.q), k_pool=p(self.k), v_pool=p(self.v), block_table=p(self.table),
                       max_blocks=self.max_blocks, lens=p(self.lens), max_len=self.n, out=p(out))
        for key, val in kw.items():
            setattr(a, key, val)
        return a

    def gathered(self, pool):
        return pool[self.table.view(-1).long()].view(self.B, self.hkv, self.max_blocks * BLOCK, -1)[:, :, :self.n]

    def step_bytes(self):
        return self.B * self.hkv * self.n * self.d * 2 * 2


def decode(args, iters=0, library=None):
    """attnbench_cuda_decode of the loaded library (or `library`): milliseconds per call."""
    library = library or lib
    ms = ctypes.c_float(0)
    rc = library.attnbench_cuda_decode(ctypes.byref(args), iters, ctypes.byref(ms))
    if rc != 0:
        raise RuntimeError(library.attnbench_cuda_last_error().decode())
    return ms.value


def timed(fn):
    """Median of REPS timings of ITERS calls each, after one untimed round (the clocks
    settle after the previous, heavier case)."""
    fn()
    return median([fn() for _ in range(REPS)])


def torch_time(fn):
    fn()
    vals = []
    for _ in range(REPS):
        e0, e1 = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        e0.record()
        for _ in range(ITERS):
            fn()
        e1.record()
        e1.synchronize()
        vals.append(e0.elapsed_time(e1) / ITERS)
    return median(vals)


def rel(a, b):
    return float((a.double() - b.double()).norm() / b.double().norm())
