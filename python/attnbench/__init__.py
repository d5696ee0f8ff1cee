"""attnbench from Python: run a config and read its results as pandas data frames, list
what the harness has, and look at the samples a run sees.

    import attnbench
    res = attnbench.run("configs/default.json", overrides={"samples": 1, "tasks": ["vt"]})
    print(res.cells[["policy", "task", "context_length", "accuracy"]])
    res.samples.groupby("policy").score.mean()

A run goes through the attnbench executable, in its own process, as on the command line:
the harness forks a worker per run and times decoding against the machine's read
ceiling, neither of which belongs inside a Python interpreter, and a plugin that crashes
takes down only that process. What needs no run (tasks, samples, the vocabulary) is
computed in process by the _attnbench extension. Python policies (plugins/python) run
inside the harness either way.
"""
from ._attnbench import detokenize, make_sample, tokenize, version
from ._attnbench import tasks as _tasks
from .results import Results, open_results
from .runner import RunError, catalogue, executable, run


def tasks():
    """Every task: a list of {name, description} (in process)."""
    return _tasks()


def plugins(plugin_path=None):
    """Every plugin the executable finds: a list of {name, kind, version, file, ...}."""
    return catalogue(plugin_path)["plugins"]


def profiles(plugin_path=None):
    """Every model profile the executable finds: a list of {name, n_layers, ..., file}."""
    return catalogue(plugin_path)["profiles"]


__all__ = ["run", "open_results", "Results", "RunError", "tasks", "plugins", "profiles", "catalogue",
           "make_sample", "tokenize", "detokenize", "version", "executable"]
