"""Runs the attnbench executable: a config (a file or a dict) with overrides, and the
catalogue of plugins, tasks and profiles (`attnbench list --json`)."""
import json
import os
import shutil
import subprocess
import sys
import tempfile

from .results import Results

try:
    from ._build import EXECUTABLE as _BUILT
except ImportError:  # an installed copy without its build
    _BUILT = None


class RunError(RuntimeError):
    """The executable exited non-zero. exit_code is its documented code (`attnbench run
    --help`: 3 config, 4 plugin, 8 some cells failed, ...), message its error lines, and
    results the results folder when one was written (for 8, the finished cells)."""

    def __init__(self, exit_code, message, results=None):
        super().__init__(f"attnbench exited {exit_code}: {message}")
        self.exit_code, self.message, self.results = exit_code, message, results


def executable():
    """The attnbench executable: $ATTNBENCH_EXE, else this build's, else the one on PATH."""
    for candidate in (os.environ.get("ATTNBENCH_EXE"), _BUILT, shutil.which("attnbench")):
        if candidate and os.path.isfile(candidate) and os.access(candidate, os.X_OK):
            return candidate
    raise FileNotFoundError("no attnbench executable: set ATTNBENCH_EXE, or put attnbench on PATH")


def _plugin_args(plugin_path):
    if plugin_path is None:
        return []
    paths = [plugin_path] if isinstance(plugin_path, (str, os.PathLike)) else list(plugin_path)
    return ["--plugin-path", *map(str, paths)] if paths else []


def catalogue(plugin_path=None):
    """What `attnbench list --json` prints: plugins, broken plugins, tasks, profiles and
    the search paths, as a dict."""
    done = subprocess.run([executable(), *_plugin_args(plugin_path), "list", "--json"], capture_output=True, text=True)
    if done.returncode != 0:
        raise RunError(done.returncode, _errors(done.stderr))
    return json.loads(done.stdout)


def _errors(stderr):
    lines = [line for line in stderr.splitlines() if "[error]" in line or "error:" in line.lower()]
    return "\n".join(lines) if lines else stderr.strip()[-2000:]


def _set_args(overrides):
    args = []
    for path, value in (overrides or {}).items():
        path = str(path).strip("/").replace("/", ".")  # "model.seed", "model/seed" or "/model/seed"
        args += ["--set", f"{path}={json.dumps(value)}"]
    return args


def run(config, overrides=None, out=None, plugin_path=None, check=True, quiet=True):
    """Runs a config and returns its Results.

    config: a config file, or a dict (written to a hidden file in the working directory
    for the run, so that the paths inside it, which the harness reads relative to the
    config's folder, mean what they would in a file there). overrides: a dict of dotted
    config paths to values, as `--set` takes them ({"samples": 1, "model.seed": 3}).
    out: the results folder (default: the harness's results/NAME-TIMESTAMP). check:
    raise RunError when some cells failed (exit 8); with check=False their finished
    cells come back and results.failures names the others. quiet=False shows the
    harness's output (its progress lines and tables) once the run ends."""
    written = None
    if isinstance(config, dict):
        with tempfile.NamedTemporaryFile("w", dir=os.getcwd(), prefix=".attnbench-", suffix=".json",
                                         delete=False) as f:
            json.dump(config, f)
            written = path = f.name
    else:
        path = os.fspath(config)
    cmd = [executable(), *_plugin_args(plugin_path), *(["-q"] if quiet else []), "run", path, *_set_args(overrides)]
    if out is not None:
        cmd += ["--out", os.fspath(out)]
    try:
        done = subprocess.run(cmd, capture_output=True, text=True)
    finally:
        if written:
            os.unlink(written)
    if not quiet:
        sys.stdout.write(done.stdout)
        sys.stderr.write(done.stderr)
    folder = None
    for line in done.stdout.splitlines():
        if line.startswith("results: "):
            folder = line[len("results: "):].strip()
    if folder is None and out is not None and os.path.isfile(os.path.join(out, "results.json")):
        folder = os.fspath(out)  # a run stopped before its last line
    if done.returncode == 0 or (done.returncode == 8 and not check and folder):
        return Results(folder)
    raise RunError(done.returncode, _errors(done.stderr), Results(folder) if folder else None)
