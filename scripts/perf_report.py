#!/usr/bin/env python3
"""Runs shrink's CPU benchmarks and their peers side by side on this machine and writes
docs/performance.md (every figure in it comes from this run) plus the raw results to
docs/perf/cpu.json.

Peers: numpy's float32 matmul (OpenBLAS) for GEMM, PyTorch for training steps, both from
Debian (`SHRINK_SETUP_PEERS=1 bash scripts/setup.sh` installs them). PyTorch is timed under
each OpenMP wait setting of shared BENCHMARKING.md and its best median is kept.

Usage: /usr/bin/python3 scripts/perf_report.py [--build build] [--threads 1,2]"""
import argparse
import datetime
import json
import os
import platform
import subprocess
import sys

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


def run_google_benchmark(binary, threads, repetitions):
    """name (without /real_time) -> median real time in ms."""
    out = subprocess.run([binary, "--benchmark_format=json",
                          f"--benchmark_repetitions={repetitions}",
                          "--benchmark_report_aggregates_only=true"],
                         env=env_with(threads), check=True, capture_output=True, text=True).stdout
    scale = {"ns": 1e-6, "us": 1e-3, "ms": 1.0, "s": 1e3}
    result = {}
    for b in json.loads(out)["benchmarks"]:
        if b.get("aggregate_name") == "median" or (repetitions == 1 and "aggregate_name" not in b):
            name = b["run_name"].replace("/real_time", "")
            result[name] = b["real_time"] * scale[b["time_unit"]]
    return result


def run_peer(script, threads, extra_env=None, args=()):
    out = subprocess.run([PEER_PYTHON, os.path.join(ROOT, "bench", "peers", script),
                          "--threads", str(threads), *args],
                         env=env_with(threads, extra_env), check=True, capture_output=True,
                         text=True).stdout
    return [json.loads(line) for line in out.splitlines() if line.startswith("{")]


def cpu_name():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "cpu"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build", default=os.path.join(ROOT, "build"))
    ap.add_argument("--threads", default="1,2")
    ap.add_argument("--repetitions", type=int, default=5)
    ap.add_argument("--skip-prune", action="store_true", help="leave out bench_prune")
    args = ap.parse_args()
    date = datetime.date.today().isoformat()
    device = f"{cpu_name()} ({os.cpu_count()} vCPU)"
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
        best = {}
        for setting in TORCH_SETTINGS:
            for p in run_peer("torch_train_step.py", t, setting):
                if p["name"] not in best or p["median_ms"] < best[p["name"]]["median_ms"]:
                    best[p["name"]] = p
        for name, ms in ours.items():
            if name in best:
                p = best[name]
                label = f"PyTorch {p['torch']} (wait {p['omp_wait_policy']}, spin {p['gomp_spincount']})"
                rows.append((name.replace("train_step/", "train step ") + " (fwd+loss+bwd+SGD)",
                             ms, label, p["median_ms"], t))

    # Pruning throughput has no peer in the same framework: absolute medians (threads = all).
    prune_rows = []
    if not args.skip_prune:
        threads = max(int(x) for x in args.threads.split(","))
        for name, ms in run_google_benchmark(os.path.join(args.build, "bench_prune"), threads, 1).items():
            prune_rows.append((name, ms, threads))

    os.makedirs(os.path.join(ROOT, "docs", "perf"), exist_ok=True)
    with open(os.path.join(ROOT, "docs", "perf", "cpu.json"), "w") as f:
        json.dump({"date": date, "device": device, "rows": [
            {"workload": w, "shrink_ms": s, "peer": p, "peer_ms": pm, "threads": t}
            for w, s, p, pm, t in rows]}, f, indent=1)

    lines = ["# Performance", "",
             "Generated by `scripts/perf_report.py` — do not edit by hand. Medians of "
             f"{args.repetitions} repetitions after warm-up; **ratio = peer time / shrink time** "
             "(above 1: shrink is faster). Peers run on the same machine in the same run.", "",
             "## CPU", "",
             "| workload | shrink (ms) | peer | peer (ms) | ratio | threads | device | date |",
             "|---|---:|---|---:|---:|---:|---|---|"]
    for w, s, p, pm, t in rows:
        lines.append(f"| {w} | {s:.3f} | {p} | {pm:.3f} | {pm / s:.2f}× | {t} | {device} | {date} |")
    lines += ["", "GEMM shapes are m/n/k (row-major, `C = A·B`); ffn shapes are the forward and "
              "weight-gradient GEMMs of ffn-10000 at batch 128.", ""]
    if prune_rows:
        lines += ["## Pruning throughput (CPU)", "",
                  "`bench/bench_prune.cpp`: score and shrink a randomly initialised ffn-10000 "
                  "(784-10000-10) with 1024 calibration samples; `shrink_only` is the rewrite alone.", "",
                  "| benchmark | median (ms) | threads | device | date |", "|---|---:|---:|---|---|"]
        for name, ms, t in prune_rows:
            lines.append(f"| {name} | {ms:.1f} | {t} | {device} | {date} |")
        lines.append("")
    gpu = os.path.join(ROOT, "docs", "perf", "gpu.md")
    if os.path.exists(gpu):
        lines += [open(gpu).read()]
    else:
        lines += ["## GPU", "", "No GPU measurements yet: no GPU machine has been available to "
                  "this project's sessions.", ""]
    with open(os.path.join(ROOT, "docs", "performance.md"), "w") as f:
        f.write("\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    sys.exit(main())
