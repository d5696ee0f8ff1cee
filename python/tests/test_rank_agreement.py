"""scripts/rank-agreement.py: the rankings and Kendall's tau-b of docs/papers.md."""
import importlib.util
import json
import os

import pytest

ROOT = os.environ.get("ATTNBENCH_SOURCE_DIR", os.path.join(os.path.dirname(__file__), "..", ".."))
spec = importlib.util.spec_from_file_location("rank_agreement", os.path.join(ROOT, "scripts", "rank-agreement.py"))
ra = importlib.util.module_from_spec(spec)
spec.loader.exec_module(ra)


def test_tau_b_of_equal_reversed_and_tied_orders():
    a = {"x": 3, "y": 2, "z": 1}
    assert ra.tau_b(*ra.pairs(a, a)) == pytest.approx(1.0)
    assert ra.tau_b(*ra.pairs(a, {"x": 1, "y": 2, "z": 3})) == pytest.approx(-1.0)
    # One tie on one side: scipy.stats.kendalltau([3, 2, 1], [2, 2, 1]) is 0.8165.
    assert ra.tau_b(*ra.pairs(a, {"x": 2, "y": 2, "z": 1})) == pytest.approx(0.816497, abs=1e-6)


def test_ranks_share_ties():
    assert ra.rank({"a": 90.0, "b": 90.0, "c": 10.0}) == {"a": 1, "b": 1, "c": 3}


def cell(task, policy, accuracy, speed, terminator="none", length=4096):
    return {"task": task, "policy": policy, "terminator": terminator, "context_length": length,
            "metrics": {"accuracy": accuracy, "decode_tokens_per_s": speed}}


def test_a_table_on_two_models(tmp_path, capsys):
    runs = {
        "mechanistic": [cell("t1", "dense", 100, 10), cell("t1", "fast", 50, 20), cell("t2", "dense", 100, 10),
                        cell("t2", "fast", 0, 40), cell("t1", "dense", 100, 9, "art")],
        "trained": [cell("t1", "dense", 100, 10), cell("t1", "fast", 100, 5), cell("t2", "dense", 0, 10),
                    cell("t2", "fast", 0, 5), cell("t1", "dense", 0, 9, "art")],
    }
    for model, cells in runs.items():
        os.makedirs(tmp_path / model / "tab")
        json.dump({"cells": cells}, open(tmp_path / model / "tab" / "results.json", "w"))
    ra.main(str(tmp_path))
    out = capsys.readouterr().out
    # Entries: dense, fast, dense + art; fast's speedup is the geometric mean of 2x and 4x.
    assert "| fast | 25.0 | 3 | 2.83x | 50.0 | 1 | 0.50x |" in out
    assert "| dense + art | 100.0 | 1 | 0.90x | 0.0 | 3 | 0.90x |" in out
    # Only t1 is answered by dense on both models.
    assert "Tasks dense answers on both models (t1):" in out
    # (dense, art) tied on the mechanistic model, (dense, fast) on the trained, (art, fast) reversed.
    assert ("Kendall tau-b -0.50 (0 pairs in the same order, 1 reversed, 1 tied on the mechanistic model only, "
            "1 on the trained only)") in out
