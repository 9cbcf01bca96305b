#!/usr/bin/env python3
"""Runs shrink's CPU benchmarks and their peers side by side on this machine and writes
docs/performance.md (every figure in it comes from this run) plus the raw results to
docs/perf/cpu.json.

Peers: numpy's float32 matmul (OpenBLAS) for GEMM, PyTorch for training steps and for pruning
(bench/peers/torch_prune.py: the same jobs as bench_prune, in plain PyTorch), both from Debian
(`SHRINK_SETUP_PEERS=1 bash scripts/setup.sh` installs them). PyTorch is timed under each
OpenMP wait setting of shared BENCHMARKING.md and its best median is kept.

Usage: /usr/bin/python3 scripts/perf_report.py [--build build] [--threads 1,2] [--only prune]
  --only core   GEMM and training steps only; the pruning figures are kept from docs/perf/cpu.json
  --only prune  pruning throughput only; the GEMM and training figures are kept from it
The whole of docs/performance.md is rewritten from docs/perf/cpu.json either way."""
import argparse
import datetime
import json
import os
import re
import subprocess
import sys

from machine import cpu_name

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


def run_google_benchmark(binary, threads, repetitions, bench_filter=None, extra_env=None):
    """name (without /real_time) -> median real time in ms."""
    extra = [f"--benchmark_filter={bench_filter}"] if bench_filter else []
    out = subprocess.run([binary, "--benchmark_format=json",
                          f"--benchmark_repetitions={repetitions}",
                          "--benchmark_report_aggregates_only=true", *extra],
                         env=env_with(threads, extra_env), check=True, capture_output=True, text=True).stdout
    scale = {"ns": 1e-6, "us": 1e-3, "ms": 1.0, "s": 1e3}
    result = {}
    for b in json.loads(out)["benchmarks"]:
        if b.get("aggregate_name") == "median" or (repetitions == 1 and "aggregate_name" not in b):
            name = re.sub(r"/iterations:\d+", "", b["run_name"].replace("/real_time", ""))
            result[name] = b["real_time"] * scale[b["time_unit"]]
    return result


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


def measure_core(args):
    """GEMM against numpy and training steps against PyTorch, at every thread count."""
    rows = []  # workload, shrink ms, peer, peer ms, threads
    for t in [int(x) for x in args.threads.split(",")]:
        ours = run_google_benchmark(os.path.join(args.build, "bench_gemm"), t, args.repetitions)
        peer = {p["name"]: p["median_ms"] for p in run_peer("gemm_numpy.py", t)}
        for name, ms in ours.items():
            key = name.replace("BM_", "")
            if key in peer:
                rows.append((f"sgemm {key.split('/', 1)[1]}", ms, "OpenBLAS (numpy)", peer[key], t))

        ours = run_google_benchmark(os.path.join(args.build, "bench_train_step"), t,
                                    args.repetitions)
        best = best_peer("torch_train_step.py", t)
        for name, ms in ours.items():
            if name in best:
                p = best[name]
                rows.append((name.replace("train_step/", "train step ") + " (fwd+loss+bwd+SGD)",
                             ms, torch_label(p), p["median_ms"], t))
    return [{"workload": w, "shrink_ms": s, "peer": p, "peer_ms": pm, "threads": t}
            for w, s, p, pm, t in rows]


def prune_workload(name):
    """'prune_to/magnitude/500' -> 'magnitude → 500 units'."""
    parts = name.split("/")
    if parts[0] == "shrink_only":
        return f"rewrite only → {parts[1]} units"
    if parts[-1] == "auto":
        return f"{parts[1]} (decides its own width)"
    return f"{parts[1]} → {parts[2]} units"


def measure_prune(args):
    """bench_prune against bench/peers/torch_prune.py, job by job, at the largest thread count.
    GFS (minutes per run) is timed once on each side, and only with --prune-gfs."""
    t = max(int(x) for x in args.threads.split(","))
    binary = os.path.join(args.build, "bench_prune")
    # Both sides get the best of the OpenMP wait settings: on a busy machine the default (spin,
    # then sleep) can make every 2-thread parallel step wait for its second thread.
    ours = {}
    for setting in TORCH_SETTINGS:
        for name, ms in run_google_benchmark(binary, t, args.repetitions, "-gfs", setting).items():
            ours[name] = min(ms, ours.get(name, ms))
    jobs = [n for n in ours]
    if args.prune_gfs:
        ours.update(run_google_benchmark(binary, t, 1, "gfs"))
        jobs += ["prune_to/gfs/50"]
    best = best_peer("torch_prune.py", t, ["--reps", str(args.repetitions), "--jobs", ",".join(jobs)])
    rows = []
    for name, ms in ours.items():
        if name not in best:
            sys.exit(f"perf_report: bench/peers/torch_prune.py has no job '{name}' (bench_prune's "
                     "benchmarks and the peer's jobs must have the same names)")
        p = best[name]
        rows.append({"workload": prune_workload(name), "benchmark": name, "shrink_ms": ms,
                     "peer": torch_label(p), "peer_ms": p["median_ms"], "threads": t,
                     "runs": 1 if "gfs" in name else args.repetitions})
    return rows


def section(date, device, rows, repetitions):
    return {"date": date, "device": device, "repetitions": repetitions, "rows": rows}


def table(rows, date, device, label="workload"):
    lines = [f"| {label} | shrink (ms) | peer | peer (ms) | ratio | threads | device | date |",
             "|---|---:|---|---:|---:|---:|---|---|"]
    for r in rows:
        s, pm = r["shrink_ms"], r["peer_ms"]
        lines.append(f"| {r['workload']} | {s:.3f} | {r['peer']} | {pm:.3f} | {pm / s:.2f}× | "
                     f"{r['threads']} | {device} | {date} |")
    return lines


def render(results):
    core, prune = results.get("core"), results.get("prune")
    lines = ["# Performance", "",
             "Generated by `scripts/perf_report.py` — do not edit by hand (`--only prune` or "
             "`--only core` re-measures one section and keeps the other's figures from "
             "`docs/perf/cpu.json`). Medians of several repetitions after warm-up; "
             "**ratio = peer time / shrink time** (above 1: shrink is faster). Each section's "
             "peers ran on the same machine in the same run as shrink.", ""]
    lines += ["## CPU", ""]
    if core:
        lines += [f"Medians of {core['repetitions']} repetitions.", ""]
        lines += table(core["rows"], core["date"], core["device"])
        lines += ["", "GEMM shapes are m/n/k (row-major, `C = A·B`); ffn shapes are the forward "
                  "and weight-gradient GEMMs of ffn-10000 at batch 128.", ""]
    else:
        lines += ["Not measured yet: run `scripts/perf_report.py`.", ""]
    lines += ["## Pruning throughput (CPU)", ""]
    if prune:
        lines += ["`bench/bench_prune.cpp` against `bench/peers/torch_prune.py`: score, select and "
                  "physically shrink a randomly initialised ffn-10000 (784-10000-10) with 1024 "
                  "calibration samples to the given hidden width; model construction is not timed "
                  "on either side. The PyTorch side is a plain port of each method as shrink runs "
                  "it (parameters frozen, eval mode), ending in new, smaller `nn.Linear` layers; "
                  "both sides run under each OpenMP wait setting and each side's best median is "
                  "shown (the peer column names the peer's). `sap` is this project's "
                  "own structured variant (PQ index of the unit norms), not the paper's method. "
                  f"Medians of {prune['repetitions']} repetitions (GFS: one run each, it takes "
                  "minutes).", ""]
        lines += table(prune["rows"], prune["date"], prune["device"], "method → width")
        lines.append("")
    else:
        lines += ["Not measured yet: run `scripts/perf_report.py --only prune`.", ""]
    gpu = os.path.join(ROOT, "docs", "perf", "gpu.md")
    if os.path.exists(gpu):
        lines += [open(gpu).read()]
    else:
        lines += ["## GPU", "", "No GPU measurements yet: no GPU machine has been available to "
                  "this project's sessions.", ""]
    return "\n".join(lines)


def load_results(path):
    """docs/perf/cpu.json: {"core": {...}, "prune": {...}}; the older flat layout (date, device,
    rows of the core section only) is read as its core section."""
    if not os.path.exists(path):
        return {}
    with open(path) as f:
        data = json.load(f)
    if "rows" in data:
        return {"core": {"date": data["date"], "device": data["device"],
                         "repetitions": data.get("repetitions", 5), "rows": data["rows"]}}
    return data


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build", default=os.path.join(ROOT, "build"))
    ap.add_argument("--threads", default="1,2")
    ap.add_argument("--repetitions", type=int, default=5)
    ap.add_argument("--only", choices=["core", "prune"],
                    help="measure one section; keep the other's figures from docs/perf/cpu.json")
    ap.add_argument("--skip-prune", action="store_true", help="same as --only core")
    ap.add_argument("--prune-gfs", action="store_true",
                    help="also time GFS at 50 units against its PyTorch port (minutes per side)")
    args = ap.parse_args()
    only = "core" if args.skip_prune else args.only
    date = datetime.date.today().isoformat()
    device = f"{cpu_name()} ({os.cpu_count()} vCPU)"
    json_path = os.path.join(ROOT, "docs", "perf", "cpu.json")
    results = load_results(json_path)
    if only in (None, "core"):
        results["core"] = section(date, device, measure_core(args), args.repetitions)
    if only in (None, "prune"):
        results["prune"] = section(date, device, measure_prune(args), args.repetitions)

    os.makedirs(os.path.dirname(json_path), exist_ok=True)
    with open(json_path, "w") as f:
        json.dump(results, f, indent=1)
    text = render(results)
    with open(os.path.join(ROOT, "docs", "performance.md"), "w") as f:
        f.write(text)
    print(text)


if __name__ == "__main__":
    sys.exit(main())
