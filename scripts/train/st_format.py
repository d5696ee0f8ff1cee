"""The safetensors format (https://github.com/huggingface/safetensors, the field's
convention for weights), written and read here without the package: an 8-byte
little-endian header length, a JSON header (each tensor's dtype, shape and byte range,
plus "__metadata__" strings), then the raw little-endian data. Large models are split
into shards with an index file, as the field does."""
import json
import struct

import numpy as np
import torch

_DTYPES = {torch.float32: "F32", torch.float16: "F16", torch.bfloat16: "BF16"}
_TORCH = {v: k for k, v in _DTYPES.items()}


def _raw(t):
    t = t.detach().cpu().contiguous()
    if t.dtype == torch.bfloat16:  # numpy has no bfloat16: its bits as int16
        return t.view(torch.int16).numpy().tobytes()
    return t.numpy().tobytes()


def write(path, tensors, metadata=None):
    """tensors: name -> torch tensor (float32, float16 or bfloat16)."""
    header, offset, blobs = {}, 0, []
    for name, t in tensors.items():
        data = _raw(t)
        header[name] = {"dtype": _DTYPES[t.dtype], "shape": list(t.shape), "data_offsets": [offset, offset + len(data)]}
        offset += len(data)
        blobs.append(data)
    header["__metadata__"] = {"format": "pt", **{k: str(v) for k, v in (metadata or {}).items()}}
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)))
        f.write(text)
        for b in blobs:
            f.write(b)


def read(path):
    """-> (name -> torch tensor, metadata dict)."""
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        header = json.loads(f.read(n))
        data = f.read()
    meta = header.pop("__metadata__", {})
    out = {}
    for name, h in header.items():
        b, e = h["data_offsets"]
        dtype = _TORCH[h["dtype"]]
        raw = np.frombuffer(data[b:e], dtype=np.int16 if dtype == torch.bfloat16 else
                            {torch.float32: np.float32, torch.float16: np.float16}[dtype]).copy()
        t = torch.from_numpy(raw)
        if dtype == torch.bfloat16:
            t = t.view(torch.bfloat16)
        out[name] = t.reshape(h["shape"])
    return out, meta


def write_sharded(folder, stem, tensors, metadata=None, max_bytes=15 << 20):
    """Shards of at most max_bytes of data (one tensor never split), STEM-0000K-of-0000N
    .safetensors and STEM.safetensors.index.json; a single file STEM.safetensors when all
    fits. Returns the files written."""
    shards, current, size = [], {}, 0
    for name, t in tensors.items():
        n = t.numel() * t.element_size()
        if current and size + n > max_bytes:
            shards.append(current)
            current, size = {}, 0
        current[name] = t
        size += n
    shards.append(current)
    if len(shards) == 1:
        write(f"{folder}/{stem}.safetensors", shards[0], metadata)
        return [f"{stem}.safetensors"]
    files, weight_map = [], {}
    for i, shard in enumerate(shards):
        name = f"{stem}-{i + 1:05d}-of-{len(shards):05d}.safetensors"
        write(f"{folder}/{name}", shard, metadata)
        files.append(name)
        weight_map.update({k: name for k in shard})
    total = sum(t.numel() * t.element_size() for t in tensors.values())
    index_meta = {"total_size": total, **{k: str(v) for k, v in (metadata or {}).items()}}
    with open(f"{folder}/{stem}.safetensors.index.json", "w") as f:
        json.dump({"metadata": index_meta, "weight_map": weight_map}, f, indent=1)
    return files + [f"{stem}.safetensors.index.json"]


def read_sharded(folder, stem):
    """The index when there is one (write_sharded writes a folder afresh, so a single
    file and an index never sit side by side), else STEM.safetensors."""
    import os
    index_file = f"{folder}/{stem}.safetensors.index.json"
    if not os.path.exists(index_file):
        return read(f"{folder}/{stem}.safetensors")
    with open(index_file) as f:
        index = json.load(f)
    out, meta = {}, {}
    for name in sorted(set(index["weight_map"].values())):
        t, meta = read(f"{folder}/{name}")
        out.update(t)
    return out, meta
