"""The attnbench Python module (run by ctest as python_module, from the source tree with
PYTHONPATH at the build's python/ folder)."""
import json
import os

import pytest

import attnbench

SOURCE = os.environ.get("ATTNBENCH_SOURCE_DIR", os.getcwd())

# One cell per policy: vt at 2K, one sample.
SMALL = {
    "name": "py-small",
    "model": {"profile": "default", "dtype": "fp16", "block_size": 64, "seed": 1},
    "tasks": ["niah_single_1"],
    "context_lengths": [2048],
    "policies": ["dense",
                 {"name": "python", "label": "snapkv-512",
                  "params": {"module": os.path.join(SOURCE, "plugins/python/examples/snapkv.py"), "class": "SnapKV",
                             "params": {"budget": 512, "window": 16}}}],
    "terminators": ["none"],
    "seeds": [0],
    "samples": 2,
}


def test_a_dict_config_runs_and_reads_back_as_frames(tmp_path):
    res = attnbench.run(SMALL, out=tmp_path / "run")
    cells = res.cells
    assert sorted(cells.policy) == ["dense", "snapkv-512"]
    assert set(cells.columns) >= {"task", "context_length", "accuracy", "decode_tokens_per_s", "blocks_skipped_frac"}
    assert cells.set_index("policy").accuracy["dense"] == 100.0
    assert len(res.samples) == 4 and set(res.samples.policy) == {"dense", "snapkv-512"}
    assert (res.samples.prediction.str.len() > 0).all()
    layers = res.layers
    assert len(layers) == 2 * res.raw["meta"]["model_profile"]["n_layers"]
    assert "blocks_skipped_frac" in layers.columns
    again = attnbench.open_results(tmp_path / "run")
    assert again.cells.equals(cells)
    assert res.config["name"] == "py-small" and res.failures == []


def test_overrides_reach_the_run(tmp_path):
    res = attnbench.run(SMALL, overrides={"samples": 1, "policies": ["dense"], "model.seed": 2}, out=tmp_path / "o")
    assert len(res.samples) == 1 and list(res.cells.policy) == ["dense"]
    assert res.config["model"]["seed"] == 2


def test_a_failing_python_policy_raises_with_its_file_and_line(tmp_path):
    config = dict(SMALL, policies=[{"name": "python", "label": "boom", "params": {
        "module": os.path.join(SOURCE, "tests/plugins/python/faulty.py"), "class": "RaisesInPlan"}}, "dense"])
    with pytest.raises(attnbench.RunError) as e:
        attnbench.run(config, out=tmp_path / "f")
    assert e.value.exit_code == 8
    assert "faulty.py:10 in plan: ValueError: no plan today" in e.value.message
    assert list(e.value.results.cells.policy) == ["dense"]  # the other cell's result is kept
    kept = attnbench.run(config, out=tmp_path / "g", check=False)
    assert len(kept.failures) == 1 and list(kept.cells.policy) == ["dense"]


def test_a_bad_config_raises_with_the_harness_exit_code(tmp_path):
    with pytest.raises(attnbench.RunError) as e:
        attnbench.run(dict(SMALL, tasks=["no_such_task"]), out=tmp_path / "b")
    assert e.value.exit_code == 3 and "no_such_task" in e.value.message
    with pytest.raises(FileNotFoundError):
        attnbench.open_results(tmp_path / "nothing-here")


def test_catalogue_lists_plugins_tasks_and_profiles():
    names = {p["name"] for p in attnbench.plugins()}
    assert {"dense", "quest", "python", "art"} <= names
    assert "default" in {p["name"] for p in attnbench.profiles()}
    assert "niah_single_1" in {t["name"] for t in attnbench.tasks()}


def test_a_sample_is_the_one_a_run_sees(tmp_path):
    s = attnbench.make_sample("niah_single_1", 2048, seed=0, index=1)
    assert len(s["prompt"]) == 2048 and s["references"][0] in s["text"]
    assert s["info"]["needle_position"] < 2048
    res = attnbench.run(dict(SMALL, policies=["dense"]), out=tmp_path / "s")
    seen = res.samples.set_index("sample").loc[1]
    assert seen.references == s["references"]
    assert attnbench.detokenize(attnbench.tokenize("the grass is green .")) == "the grass is green."
    with pytest.raises(ValueError, match="unknown task"):
        attnbench.make_sample("nope", 2048)
    with pytest.raises(ValueError):
        attnbench.make_sample("niah_single_1", 2048, params={"colour": 1})


def test_the_readme_example_runs():
    """The README's Python example, as written (it runs configs/default.json with one
    sample of vt: 24 cells)."""
    with open(os.path.join(SOURCE, "README.md")) as f:
        readme = f.read()
    block = readme.split("## Python\n", 1)[1].split("```python\n", 1)[1].split("```", 1)[0]
    assert len(block.strip().splitlines()) == 5
    scope = {}
    cwd = os.getcwd()
    os.chdir(SOURCE)
    try:
        exec(compile(block, "README.md", "exec"), scope)
    finally:
        os.chdir(cwd)
        if "res" in scope:
            import shutil
            shutil.rmtree(os.path.join(SOURCE, scope["res"].folder), ignore_errors=True)
    assert len(scope["res"].cells) == 24 and set(scope["res"].cells.task) == {"vt"}
    assert len(scope["layers"]) == 24 * scope["res"].raw["meta"]["model_profile"]["n_layers"]
