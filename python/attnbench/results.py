"""A results folder (results.json and samples.jsonl, described in the README's "Results")
as pandas data frames."""
import json
import os


def _pandas():
    try:
        import pandas
    except ImportError as e:  # the frames need it; the rest of the module does not
        raise ImportError("attnbench's data frames need pandas (Debian: python3-pandas)") from e
    return pandas


class Results:
    """One run's folder. raw is results.json as a dict; cells, samples and layers are data
    frames, read when first asked for."""

    def __init__(self, folder):
        self.folder = os.path.abspath(os.fspath(folder))
        path = os.path.join(self.folder, "results.json")
        if not os.path.isfile(path):
            raise FileNotFoundError(f"{self.folder}: no results.json (not a results folder, or its run wrote none yet)")
        with open(path) as f:
            self.raw = json.load(f)
        self._cells = self._samples = self._layers = None

    def __repr__(self):
        return f"Results({self.folder!r}: {len(self.raw.get('cells', []))} cells, {len(self.failures)} failed)"

    @property
    def config(self):
        """The config the run used (results.json's meta.config)."""
        return self.raw.get("meta", {}).get("config")

    @property
    def summary(self):
        """The run's summary tables (RULER and LongBench scores, as results.json holds them)."""
        return self.raw.get("summary", {})

    @property
    def failures(self):
        """The failed cells' records: which cell, which plugin operation, the message."""
        return self.raw.get("failures", [])

    @property
    def cells(self):
        """One row per finished cell: its key (task, context_length, policy, terminator,
        seed), wall_s and every scalar metric (accuracy, blocks_skipped_frac,
        decode_tokens_per_s, ...). Per-layer lists are in layers."""
        if self._cells is None:
            rows = []
            for c in self.raw.get("cells", []):
                row = {k: v for k, v in c.items() if k != "metrics"}
                row.update({k: v for k, v in c.get("metrics", {}).items() if not isinstance(v, (list, dict))})
                rows.append(row)
            self._cells = _pandas().DataFrame(rows)
        return self._cells

    @property
    def samples(self):
        """One row per sample (samples.jsonl): the cell's key (its id in the column
        "cell", as cells has it in "id"), sample, prediction,
        references, score, generated_tokens, prepare/prefill/decode times and info."""
        if self._samples is None:
            rows = []
            path = os.path.join(self.folder, "samples.jsonl")
            if os.path.isfile(path):
                with open(path) as f:
                    rows = [json.loads(line) for line in f if line.strip()]
            self._samples = _pandas().DataFrame(rows)
        return self._samples

    @property
    def layers(self):
        """One row per cell and layer: each per-layer metric of the cell (blocks skipped,
        ...), named as in results.json without its _by_layer suffix."""
        if self._layers is None:
            rows = []
            for c in self.raw.get("cells", []):
                per_layer = {k[: -len("_by_layer")]: v for k, v in c.get("metrics", {}).items()
                             if k.endswith("_by_layer") and isinstance(v, list)}
                n = max((len(v) for v in per_layer.values()), default=0)
                for layer in range(n):
                    row = {"id": c["id"], "task": c["task"], "context_length": c["context_length"],
                           "policy": c["policy"], "terminator": c["terminator"], "seed": c["seed"], "layer": layer}
                    row.update({k: v[layer] for k, v in per_layer.items() if layer < len(v)})
                    rows.append(row)
            self._layers = _pandas().DataFrame(rows)
        return self._layers


def open_results(folder):
    """The Results of a run folder written earlier (`attnbench run`, `merge`)."""
    return Results(folder)
