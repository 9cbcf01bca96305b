"""Running benchmarks and peers for the performance report (scripts/perf_report.py and its
sections): environments with the thread settings of shared BENCHMARKING.md, Google Benchmark
medians, peers' JSON lines, and the markdown table of ratios."""
import json
import os
import re
import subprocess

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PEER_PYTHON = "/usr/bin/python3"  # Debian's torch/numpy are visible to this interpreter only
TORCH_SETTINGS = [{"OMP_WAIT_POLICY": "PASSIVE"}, {"GOMP_SPINCOUNT": "10000"}, {}]


def env_with(threads, extra=None):
    env = dict(os.environ)
    for k in ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT"):
        env.pop(k, None)
    env.update({"OMP_NUM_THREADS": str(threads), "OPENBLAS_NUM_THREADS": str(threads),
                "MKL_NUM_THREADS": str(threads)})
    env.update(extra or {})
    return env


def run_google_benchmark_entries(binary, threads, repetitions, bench_filter=None, extra_env=None,
                                 extra_args=()):
    """name (without /real_time) -> the median entry of Google Benchmark's JSON (real_time in
    ms under "ms", user counters as they are)."""
    extra = ([f"--benchmark_filter={bench_filter}"] if bench_filter else []) + list(extra_args)
    out = subprocess.run([binary, "--benchmark_format=json",
                          f"--benchmark_repetitions={repetitions}",
                          "--benchmark_report_aggregates_only=true", *extra],
                         env=env_with(threads, extra_env), check=True, capture_output=True, text=True).stdout
    scale = {"ns": 1e-6, "us": 1e-3, "ms": 1.0, "s": 1e3}
    result = {}
    for b in json.loads(out)["benchmarks"]:
        if b.get("aggregate_name") == "median" or (repetitions == 1 and "aggregate_name" not in b):
            name = re.sub(r"/iterations:\d+", "", b["run_name"].replace("/real_time", ""))
            result[name] = dict(b, ms=b["real_time"] * scale[b["time_unit"]])
    return result


def run_google_benchmark(binary, threads, repetitions, bench_filter=None, extra_env=None):
    """name (without /real_time) -> median real time in ms."""
    entries = run_google_benchmark_entries(binary, threads, repetitions, bench_filter, extra_env)
    return {name: e["ms"] for name, e in entries.items()}


def best_google_benchmark(binary, threads, repetitions, bench_filter, extra_args=()):
    """Under each OpenMP wait setting; per benchmark the entry with the lowest median."""
    best = {}
    for setting in TORCH_SETTINGS:
        for name, e in run_google_benchmark_entries(binary, threads, repetitions, bench_filter, setting,
                                                    extra_args).items():
            if name not in best or e["ms"] < best[name]["ms"]:
                best[name] = e
    return best


def run_peer(script, threads, extra_env=None, args=()):
    out = subprocess.run([PEER_PYTHON, os.path.join(ROOT, "bench", "peers", script),
                          "--threads", str(threads), *args],
                         env=env_with(threads, extra_env), check=True, capture_output=True,
                         text=True).stdout
    return [json.loads(line) for line in out.splitlines() if line.startswith("{")]


def best_peer(script, threads, args=()):
    """PyTorch under each OpenMP wait setting; per workload the setting with the lowest median."""
    best = {}
    for setting in TORCH_SETTINGS:
        for p in run_peer(script, threads, setting, args):
            if p["name"] not in best or p["median_ms"] < best[p["name"]]["median_ms"]:
                best[p["name"]] = p
    return best


def torch_label(p):
    return f"PyTorch {p['torch']} (wait {p['omp_wait_policy']}, spin {p['gomp_spincount']})"


def table(rows, date, device, label="workload"):
    lines = [f"| {label} | shrink (ms) | peer | peer (ms) | ratio | threads | device | date |",
             "|---|---:|---|---:|---:|---:|---|---|"]
    for r in rows:
        s, pm = r["shrink_ms"], r["peer_ms"]
        lines.append(f"| {r['workload']} | {s:.3f} | {r['peer']} | {pm:.3f} | {pm / s:.2f}× | "
                     f"{r['threads']} | {device} | {date} |")
    return lines
