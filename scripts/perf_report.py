#!/usr/bin/env python3
"""Runs shrink's CPU benchmarks and their peers side by side on this machine and writes
docs/performance.md (every figure in it comes from this run) plus the raw results to
docs/perf/cpu.json.

Peers: numpy's float32 matmul (OpenBLAS) for GEMM, PyTorch for training steps and for pruning
(bench/peers/torch_prune.py: the same jobs as bench_prune, in plain PyTorch), both from Debian
(`SHRINK_SETUP_PEERS=1 bash scripts/setup.sh` installs them). PyTorch is timed under each
OpenMP wait setting of shared BENCHMARKING.md and its best median is kept.

Usage: /usr/bin/python3 scripts/perf_report.py [--build build] [--threads 1,2] [--only SECTION]
  --only core   GEMM and training steps only; the other sections' figures are kept from
                docs/perf/cpu.json
  --only conv   convolutional networks only (scripts/perf_conv.py: CNN training steps and
                inference against PyTorch, conv kernels as a fraction of the FP32 peak, the
                GEMMs under convolutions against OpenBLAS)
  --only prune  pruning throughput on ffn-10000 only
  --only prune_cnn  pruning throughput on ResNet-56 and MobileNetV2 only (bench_prune's CNN jobs
                against bench/peers/torch_prune_cnn.py)
  --only encoder  the transformer encoder's training step and inference (bench_encoder against
                bench/peers/torch_encoder.py)
The whole of docs/performance.md is rewritten from docs/perf/cpu.json either way (--out-dir:
both written to another directory instead, docs/ left as it is)."""
import argparse
import datetime
import json
import os
import re
import statistics
import subprocess
import sys

from machine import cpu_name
from perf_conv import measure_conv, render_conv
from perf_common import PEER_PYTHON, ROOT, TORCH_SETTINGS, best_peer, run_google_benchmark, run_peer, table, torch_label


def measure_core(args):
    """GEMM against numpy and training steps against PyTorch, at every thread count."""
    rows = []  # workload, shrink ms, peer, peer ms, threads
    for t in [int(x) for x in args.threads.split(",")]:
        # The GEMMs under convolutions belong to the conv section (scripts/perf_conv.py); the
        # encoder's GEMMs are for profiling the encoder step (no peer row).
        ours = run_google_benchmark(os.path.join(args.build, "bench_gemm"), t, args.repetitions,
                                    "-BM_(sgemm|openblas)_(conv|encoder)")
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


def measure_encoder(args):
    """The transformer encoder of issue 12 (bench/bench_encoder.cpp) against
    torch.nn.TransformerEncoder (bench/peers/torch_encoder.py): a training step and inference."""
    rows = []
    for t in [int(x) for x in args.threads.split(",")]:
        ours = run_google_benchmark(os.path.join(args.build, "bench_encoder"), t, args.repetitions)
        best = best_peer("torch_encoder.py", t)
        for name, ms in ours.items():
            if name in best:
                p = best[name]
                what = "training step (fwd+loss+bwd+AdamW)" if "train" in name else "inference"
                rows.append({"workload": f"encoder {what}, batch/tokens {name.split('/', 1)[1]}", "shrink_ms": ms,
                             "peer": torch_label(p), "peer_ms": p["median_ms"], "threads": t})
        # One layer's attention alone: the fused kernel against shrink's own composite.
        for backward, what in (("0", "forward"), ("1", "forward + backward")):
            fused, composite = ours.get(f"attention_op/32/64/{backward}/1"), ours.get(f"attention_op/32/64/{backward}/0")
            if fused and composite:
                rows.append({"workload": f"attention of one layer (32 x 64 tokens, 4 heads of 32), {what}: fused",
                             "shrink_ms": fused, "peer": "shrink's composite (matmul, softmax, matmul)",
                             "peer_ms": composite, "threads": t})
    return rows


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
        for name, ms in run_google_benchmark(binary, t, args.repetitions, "^(prune_to|shrink_only)/",
                                             setting).items():
            ours[name] = min(ms, ours.get(name, ms))
    ours = {n: ms for n, ms in ours.items() if "gfs" not in n}  # the filter matches GFS too: timed below or not at all
    jobs = list(ours)
    if args.prune_gfs:
        ours.update(run_google_benchmark(binary, t, 1, "^prune_to/gfs"))
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


CNN_SLOW = ("taylor", "ispasp", "pfp")  # seconds per run: a few rounds each
CNN_SLOW_ROUNDS = 3


def measure_prune_cnn(args):
    """bench_prune's CNN jobs (prune_cnn/<model>/<method>, trace_cnn/<model>) against
    bench/peers/torch_prune_cnn.py where it has the job. Fast jobs: --repetitions runs under each
    OpenMP wait setting, best median per side; the slow criteria: one run each, default setting."""
    t = max(int(x) for x in args.threads.split(","))
    binary = os.path.join(args.build, "bench_prune")
    slow = "|".join(CNN_SLOW)
    ours = {}
    for setting in TORCH_SETTINGS:
        for name, ms in run_google_benchmark(binary, t, args.repetitions, "^(trace_cnn/|prune_cnn/[^/]+/(magnitude|random|sap)/)",
                                             setting).items():
            ours[name] = min(ms, ours.get(name, ms))
    has = subprocess.run([PEER_PYTHON, os.path.join(ROOT, "bench", "peers", "torch_prune_cnn.py"), "--list-jobs"],
                         check=True, capture_output=True, text=True).stdout.split()
    fast = [n for n in ours if n in has]
    best = best_peer("torch_prune_cnn.py", t, ["--reps", str(args.repetitions), "--jobs", ",".join(fast)]) if fast else {}
    # The slow jobs in rounds, each job in a process of its own (a job run after another in the
    # same process finds the block cache warm: no first-touch page faults), shrink's then the
    # peer's, so that a slow spell of this VM (its speed drifts by 30% over minutes) falls on
    # both sides; the median of the rounds.
    listed = subprocess.run([binary, "--benchmark_list_tests", f"--benchmark_filter=^prune_cnn/.*/({slow})"],
                            check=True, capture_output=True, text=True).stdout.split()
    slow_names = list(dict.fromkeys(re.sub(r"/(iterations:\d+|real_time).*$", "", n) for n in listed))
    slow_ours, slow_peer = {}, {}
    for _ in range(CNN_SLOW_ROUNDS):
        for job in slow_names:
            for name, ms in run_google_benchmark(binary, t, 1, f"^{re.escape(job)}/iterations").items():
                slow_ours.setdefault(name, []).append(ms)
            if job in has:
                for p in run_peer("torch_prune_cnn.py", t, None, ["--jobs", job]):
                    slow_peer.setdefault(p["name"], []).append(p)
    for name, runs in slow_ours.items():
        ours[name] = statistics.median(runs)
    for name, runs in slow_peer.items():
        best[name] = dict(runs[0], median_ms=statistics.median(p["median_ms"] for p in runs))
    rows = []
    for name, ms in sorted(ours.items()):
        p = best.get(name)
        rows.append({"workload": cnn_workload(name), "benchmark": name, "shrink_ms": ms,
                     "peer": torch_label(p) if p else None, "peer_ms": p["median_ms"] if p else None,
                     "threads": t, "runs": CNN_SLOW_ROUNDS if any(m in name for m in CNN_SLOW) else args.repetitions})
    return rows


def cnn_workload(name):
    """'prune_cnn/resnet56/sap' -> 'resnet56 · sap' ('prune_cnn/resnet56/taylor/full_passes' ->
    'resnet56 · taylor · full_passes'); 'trace_cnn/resnet56' -> 'resnet56 · tracing only'."""
    parts = name.split("/")
    return " · ".join(parts[1:]) if parts[0] == "prune_cnn" else f"{parts[1]} · tracing only"


def ms_text(ms):
    return f"{ms:.3f}" if ms < 100 else f"{ms:.0f}"


def cnn_prune_table(rows, date, device):
    lines = ["| job | shrink (ms) | peer | peer (ms) | ratio | runs | threads | device | date |",
             "|---|---:|---|---:|---:|---:|---:|---|---|"]
    for r in rows:
        s, pm = r["shrink_ms"], r["peer_ms"]
        peer = r["peer"] or "no peer yet"
        lines.append(f"| {cnn_workload(r['benchmark'])} | {ms_text(s)} | {peer} | {'' if pm is None else ms_text(pm)} | "
                     f"{'' if pm is None else f'{pm / s:.2f}×'} | {r['runs']} | {r['threads']} | {device} | {date} |")
    return lines


def section(date, device, rows, repetitions):
    return {"date": date, "device": device, "repetitions": repetitions, "rows": rows}


def render(results):
    core, prune, conv = results.get("core"), results.get("prune"), results.get("conv")
    lines = ["# Performance", "",
             "Generated by `scripts/perf_report.py` — do not edit by hand (`--only core`, "
             "`--only conv` or `--only prune` re-measures one section and keeps the others' figures "
             "from `docs/perf/cpu.json`). Medians of several repetitions after warm-up; "
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
    lines += render_conv(conv)
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
    encoder = results.get("encoder")
    lines += ["## Transformer encoder (CPU)", ""]
    if encoder:
        lines += ["`bench/bench_encoder.cpp` against `bench/peers/torch_encoder.py` "
                  "(`torch.nn.TransformerEncoder`, batch_first): 4 pre-LN layers, d_model 128, 4 heads, "
                  "FFN 512, GELU, no dropout, input (32, 64, 128); the step's loss is the mean square of "
                  "the output. PyTorch's inference runs under `torch.inference_mode` (its fused fast path "
                  f"where it applies). Medians of {encoder['repetitions']} repetitions.", ""]
        lines += table(encoder["rows"], encoder["date"], encoder["device"])
        lines.append("")
    else:
        lines += ["Not measured yet: run `scripts/perf_report.py --only encoder`.", ""]
    cnn = results.get("prune_cnn")
    lines += ["## Pruning throughput on CNNs (CPU)", ""]
    if cnn:
        lines += ["`bench/bench_prune.cpp` (`prune_cnn/*`, `trace_cnn/*`) against "
                  "`bench/peers/torch_prune_cnn.py`: a randomly initialised ResNet-56 or MobileNetV2 "
                  "(width 1.0, CIFAR strides) at 3x32x32 and 256 random calibration images; every block-inner group cut "
                  "to half its units (pfp: half the parameters; sap decides its own counts), block by "
                  "block. Timed: tracing the channel groups, scoring, selection and the physical rewrite; "
                  "model construction is not timed on either side. The peer is a plain PyTorch port of "
                  "the same criteria and rewrite, with the groups shrink's trace finds written out by hand "
                  "for the two architectures (it traces nothing); `trace_cnn` is shrink's tracing alone. Fast jobs: medians of "
                  f"{cnn['repetitions']} repetitions under each OpenMP wait setting, best shown. The slow ones run in "
                  f"{CNN_SLOW_ROUNDS} rounds, each job in a process of its own, shrink's then the peer's (median of the rounds): taylor (a forward and backward of the network per group; shrink reuses the "
                  "outputs of modules upstream of every cut made since the previous pass, prune/activation_memo.h, "
                  "and `taylor · full_passes` is its job with every pass in full, as the peer runs them), ispasp (a "
                  "forward up to each group's consumer, then 20 iterations; shrink computes phi in closed "
                  "form from sums of the activations fixed before the first iteration, prune/ispasp_phi.h, "
                  "the peer by autograd as the paper's code: the same scores) and pfp (one pass over |S| "
                  "images for every group's sensitivities, then the global-epsilon search; the peer fits "
                  "the same cost model and does not fold BN shifts).", ""]
        lines += cnn_prune_table(cnn["rows"], cnn["date"], cnn["device"])
        lines.append("")
    else:
        lines += ["Not measured yet: run `scripts/perf_report.py --only prune_cnn`.", ""]
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
    ap.add_argument("--only", choices=["core", "conv", "prune", "prune_cnn", "encoder"],
                    help="measure one section; keep the others' figures from docs/perf/cpu.json")
    ap.add_argument("--min-time", type=float, default=0,
                    help="conv section: seconds per Google Benchmark repetition (0: the library's "
                         "default); small values for a quick check only")
    ap.add_argument("--out-dir", help="write performance.md and cpu.json here instead of docs/ "
                                      "(the previous figures are still read from docs/perf/cpu.json)")
    ap.add_argument("--skip-prune", action="store_true", help="same as --only core")
    ap.add_argument("--render-only", action="store_true",
                    help="measure nothing: rewrite performance.md from the figures in docs/perf/cpu.json "
                         "(after a change to the page's text)")
    ap.add_argument("--prune-gfs", action="store_true",
                    help="also time GFS at 50 units against its PyTorch port (minutes per side)")
    args = ap.parse_args()
    only = "core" if args.skip_prune else args.only
    if args.render_only:
        only = "nothing"
    date = datetime.date.today().isoformat()
    device = f"{cpu_name()} ({os.cpu_count()} vCPU)"
    json_path = os.path.join(ROOT, "docs", "perf", "cpu.json")
    results = load_results(json_path)
    if only in (None, "core"):
        results["core"] = section(date, device, measure_core(args), args.repetitions)
    if only in (None, "conv"):
        results["conv"] = {"date": date, "device": device, "repetitions": args.repetitions,
                           **measure_conv(args)}
    if only in (None, "prune"):
        results["prune"] = section(date, device, measure_prune(args), args.repetitions)
    if only in (None, "encoder"):
        results["encoder"] = section(date, device, measure_encoder(args), args.repetitions)
    if only in (None, "prune_cnn"):
        results["prune_cnn"] = section(date, device, measure_prune_cnn(args), args.repetitions)

    out_json = os.path.join(args.out_dir, "cpu.json") if args.out_dir else json_path
    out_md = os.path.join(args.out_dir or os.path.join(ROOT, "docs"), "performance.md")
    os.makedirs(os.path.dirname(out_json), exist_ok=True)
    with open(out_json, "w") as f:
        json.dump(results, f, indent=1)
    text = render(results)
    with open(out_md, "w") as f:
        f.write(text)
    print(text)


if __name__ == "__main__":
    sys.exit(main())
