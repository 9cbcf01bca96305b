"""What every results script shares: running the binaries, keeping finished cells on disk so
that an interrupted table resumes where it stopped, dense models trained once per seed, and
the median-with-spread summaries every table prints.

A cell is one run of a binary (one method, width, seed, ...). Its result is appended, as one
JSON line keyed by everything that determines it, to a cells file under runs/; a rerun of the
script reads the file and only runs the cells that are missing. Delete the file (or pass
--fresh to the script) after changing the binaries."""
import json
import os
import re
import shutil
import statistics
import subprocess
import threading
from concurrent.futures import ThreadPoolExecutor

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def run(cmd, threads=None):
    """Runs a binary and returns its stdout; on failure raises with its stderr."""
    env = dict(os.environ)
    if threads:
        env["OMP_NUM_THREADS"] = str(threads)
        cmd = list(cmd) + ["--threads", str(threads)]
    p = subprocess.run([str(c) for c in cmd], capture_output=True, text=True, env=env)
    if p.returncode != 0:
        raise RuntimeError(f"{' '.join(map(str, cmd))} failed ({p.returncode}):\n{p.stderr[-3000:]}")
    return p.stdout


def run_json(cmd, threads=None):
    """The last stdout line of a binary run with --json, parsed."""
    return json.loads(run(cmd, threads).strip().splitlines()[-1])


class Cells:
    """Finished cells of one table, one JSON line each ({"key": ..., "value": ...})."""

    def __init__(self, path, fresh=False):
        self.path = path
        self.done = {}
        self.lock = threading.Lock()
        os.makedirs(os.path.dirname(path), exist_ok=True)
        if fresh and os.path.exists(path):
            os.remove(path)
        if os.path.exists(path):
            with open(path) as f:
                for line in f:
                    try:
                        cell = json.loads(line)
                    except json.JSONDecodeError:
                        continue  # a line torn by a kill: that cell runs again
                    self.done[self.canon(cell["key"])] = cell["value"]

    @staticmethod
    def canon(key):
        return json.dumps(key, sort_keys=True)

    def get(self, key, compute):
        """The stored value of `key`, or compute() stored now (flushed and synced, so a
        finished cell survives a kill)."""
        k = self.canon(key)
        with self.lock:
            if k in self.done:
                return self.done[k]
        value = compute()
        with self.lock:
            self.done[k] = value
            with open(self.path, "a") as f:
                f.write(json.dumps({"key": key, "value": value}) + "\n")
                f.flush()
                os.fsync(f.fileno())
        return value

    def forget(self, key):
        """Drops a stored cell (its on-disk model is gone), so that get() computes it again."""
        with self.lock:
            self.done.pop(self.canon(key), None)

    def has(self, key):
        return self.canon(key) in self.done

    def count(self):
        return len(self.done)


def run_parallel(jobs, tasks):
    """Runs the callables in `tasks` on `jobs` threads (each typically a binary using
    threads=1), re-raising the first failure; returns their results in order."""
    if jobs <= 1:
        return [t() for t in tasks]
    with ThreadPoolExecutor(max_workers=jobs) as pool:
        return [f.result() for f in [pool.submit(t) for t in tasks]]


def train_once(build, out, args, threads=None):
    """Trains with shrink-train into `out` unless it exists (shrink-train writes atomically,
    so an existing file is a finished model). The run keeps its state after every epoch in
    `out`.run/ and a later call resumes a run that was interrupted there (a dense ResNet takes
    longer than one sitting on two cores); the folder goes once the model is written."""
    if not os.path.exists(out):
        os.makedirs(os.path.dirname(out), exist_ok=True)
        state = out + ".run"
        # a finished save is a folder state-<digits>; state-<digits>.tmp.<pid> was being written
        saved = os.path.isdir(state) and any(re.fullmatch(r"state-\d+", n) for n in os.listdir(state))
        flags = ["--resume", state] if saved else [*args, "--checkpoint-dir", state, "--keep-checkpoints", "1"]
        run([os.path.join(build, "shrink-train"), *flags, "--out", out], threads)
        shutil.rmtree(state, ignore_errors=True)
    return out


def median_spread(values):
    """(median, min, max) of the finite values, or None when there are none."""
    vals = sorted(v for v in values if v is not None)
    if not vals:
        return None
    return statistics.median(vals), vals[0], vals[-1]


def fmt_pct(values, digits=1):
    """'81.9 (80.2–83.0)': median test accuracy in percent with the range over seeds."""
    s = median_spread(values)
    if s is None:
        return "—"
    m, lo, hi = (x * 100 for x in s)
    if len(values) == 1:
        return f"{m:.{digits}f}"
    return f"{m:.{digits}f} ({lo:.{digits}f}–{hi:.{digits}f})"


def fmt_num(values, digits=3):
    s = median_spread(values)
    if s is None:
        return "—"
    m, lo, hi = s
    if len(values) == 1:
        return f"{m:.{digits}f}"
    return f"{m:.{digits}f} ({lo:.{digits}f}–{hi:.{digits}f})"


def matplotlib_pyplot():
    """pyplot with the Agg backend, or None (with a message) when matplotlib is missing."""
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        return plt
    except ImportError:
        import sys
        print("matplotlib missing: no plot (SHRINK_SETUP_PEERS=1 bash scripts/setup.sh)", file=sys.stderr)
        return None


def seeds_arg(text):
    return [int(s) for s in text.split(",") if s != ""]
