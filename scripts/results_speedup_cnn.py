#!/usr/bin/env python3
"""Measured inference speedup of physically pruned CNNs beside their FLOP reduction (issue 11,
results item 4), every figure of docs/results/speedup_cnn.md from this script.

For each model of MODELS at 1x32x32 (Fashion-MNIST's shape padded, as the other CNN tables):
the dense model, then `shrink-prune --method magnitude --keep K --round-to 8` for each keep
fraction of KEEPS, once with block-inner groups only (the default, as the official i-SpaSP and
PFP code prune) and once with --prune-residual (the residual streams too). Latency does not
depend on the weights' values (every kernel is dense), so the models are randomly initialised
(shrink-train --epochs 0) and magnitude picks the units: any method gives the same widths at
the same keep fraction under the uniform allocation. Accuracy is the other tables' business
(docs/results/prune_cnn_*.md).

Latency: `shrink-eval --latency-only` (the report's probe: the model with its BatchNorms folded
into the convs, batch --batch-size, median of 25 batches after 5 warm-up batches), --threads,
one process at a time, LATENCY_RUNS rounds over a model's files (dense first in each round, and
once more after the last round); nothing else should run on the machine meanwhile. This VM's speed
drifts by 15-25% over minutes, so the speedup is paired, not a ratio of two medians: in each round,
the mean of the dense runs just before and just after the pruned file's run (same spell) over that
run; the table shows the median over rounds. (Stop 32's table, a ratio of medians, flipped rows near
the bar with the dense model's spread.) The issue's bar is a speedup of at least 0.8x the FLOP
reduction wherever that reduction is 2x or more.

Every finished cell is kept in runs/results_speedup_cnn/cells.jsonl (a rerun resumes; delete it
after changing the binaries); the tables show every model with a stored cell, whatever --only says.

Usage: /usr/bin/python3 scripts/results_speedup_cnn.py [--build build] [--only resnet20,resnet56]
       [--batch-size 64] [--threads 2]"""
import argparse
import json
import os
import statistics

from results_common import ROOT, Cells, run_json, train_once

MODELS = {
    "resnet20": "resnet20",
    "resnet56": "resnet56",
    "mobilenetv2": "mobilenetv2:cifar_stride=true,width=0.5",
    "resnet18": "resnet18:small_input=true",
}
KEEPS = [0.75, 0.5, 0.35, 0.25]
MODES = {"block-inner": [], "residual too": ["--prune-residual"]}
ROUND_TO = 8
LATENCY_RUNS = 9  # processes per model: one process's median can sit 15% off another's on this VM, and two
# sittings of 5 rounds (stop 44, the host slow by half) put rows whose code had not changed 0.1-0.2 apart
BAR = 0.8


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build", default=os.path.join(ROOT, "build"))
    ap.add_argument("--runs", default=os.path.join(ROOT, "runs"))
    ap.add_argument("--only", default=",".join(MODELS))
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--out-dir", default=os.path.join(ROOT, "docs", "results"))
    args = ap.parse_args()
    models = [m for m in args.only.split(",") if m]
    for m in models:
        if m not in MODELS:
            raise SystemExit(f"--only: unknown model '{m}' (known: {', '.join(MODELS)})")
    work = os.path.join(args.runs, "results_speedup_cnn")
    cells = Cells(os.path.join(work, "cells.jsonl"))
    b = lambda name: os.path.join(args.build, name)
    data = ["--data", "fashion-mnist", "--input-size", 32]

    def probe(path):
        return run_json([b("shrink-eval"), path, *data[:2], "--latency-only", "--batch-size", args.batch_size,
                         "--json"], args.threads)

    for model in models:
        dense = os.path.join(work, model, "dense.safetensors")
        train_once(args.build, dense, ["--model", MODELS[model], *data, "--epochs", 0, "--seed", 0], args.threads)
        files = {"dense": dense}
        for mode, flags in MODES.items():
            for keep in KEEPS:
                out = os.path.join(work, model, f"{mode.replace(' ', '-')}-keep{keep}.safetensors")
                if not os.path.exists(out):
                    run_json([b("shrink-prune"), dense, "--method", "magnitude", "--keep", f"{keep}", *flags,
                              "--round-to", ROUND_TO, *data[:2], "--calib-samples", 64, "--out", out, "--json"],
                             args.threads)
                files[f"{mode}/{keep}"] = out

        def rounds(files=files):
            # Round-robin over the family's files, LATENCY_RUNS times, the dense model first in
            # every round and once more after the last: a slow spell of this VM then touches every
            # model alike, and each pruned run is paired with the dense runs on either side of it.
            runs = {tag: [] for tag in files}
            for _ in range(LATENCY_RUNS):
                for tag, path in files.items():
                    runs[tag].append(probe(path))
            closing_dense = probe(files["dense"])["latency_ms"]
            dense_runs = [r["latency_ms"] for r in runs["dense"]]
            around = [(a + b) / 2 for a, b in zip(dense_runs, dense_runs[1:] + [closing_dense])]
            summary = {}
            for tag, rs in runs.items():
                lat = [r["latency_ms"] for r in rs]
                summary[tag] = {"latency_ms": statistics.median(lat), "latency_runs": lat, "flops": rs[0]["flops"],
                            "params": rs[0]["params"], "widths": rs[0]["widths"]}
                if tag == "dense":
                    summary[tag]["closing_run"] = closing_dense
                else:
                    # The speedup of one round: the mean of the dense runs before and after this
                    # file's run, over it; the table shows the median over rounds.
                    summary[tag]["speedup_runs"] = [d / p for d, p in zip(around, lat)]
                    summary[tag]["speedup"] = statistics.median(summary[tag]["speedup_runs"])
            return summary
        measured = cells.get(cell_key(model, args), rounds)
        for tag, r in measured.items():
            print(f"{model} {tag}: {r['latency_ms']:.2f} ms, {r['flops'] / 1e6:.1f} MFLOPs", flush=True)
    write(cells, args, list(MODELS))  # every model with stored cells, not only this sitting's


def cell_key(model, args):
    # "protocol": cells of the unpaired protocol (no "speedup") are not read as paired ones.
    return {"model": model, "batch": args.batch_size, "threads": args.threads, "protocol": "paired"}


def write(cells, args, models):
    def get(model, mode, keep=None):
        measured = cells.done.get(Cells.canon(cell_key(model, args)))
        return measured and measured.get("dense" if mode == "dense" else f"{mode}/{keep}")

    lines = ["# Measured inference speedup of pruned CNNs (CPU)", "",
             "Generated by `scripts/results_speedup_cnn.py`; do not edit by hand. Randomly initialised models at "
             f"1x32x32, pruned by `shrink-prune --method magnitude --keep K --round-to {ROUND_TO}` (uniform "
             "allocation), block-inner groups only or with `--prune-residual`; latency from `shrink-eval "
             f"--latency-only` (BatchNorms folded into the convs, batch {args.batch_size}, median of 25 batches) at "
             f"{args.threads} threads, median of {LATENCY_RUNS} processes, taken round-robin over a model's dense and pruned "
             "files (the dense model first in each round and once more after the last). speedup = the median over "
             "rounds of (mean of the dense runs just before and just after the pruned run) / pruned latency, so a "
             "slow spell of the machine moves both sides of each ratio; "
             f"bar: speedup / FLOP reduction >= {BAR} where the reduction is 2x or more.", "",
             "| model | groups | keep | MFLOPs | FLOP reduction | latency (ms) | speedup | speedup / FLOP reduction | bar |",
             "|---|---|---:|---:|---:|---:|---:|---:|---|"]
    payload = []
    for model in models:
        d = get(model=model, mode="dense")
        if not d:
            continue
        lines.append(f"| {model} | dense | 1.00 | {d['flops'] / 1e6:.1f} | 1.00x | {d['latency_ms']:.2f} | 1.00x | | |")
        for mode in MODES:
            for keep in KEEPS:
                r = get(model=model, mode=mode, keep=keep)
                if not r:
                    continue
                reduction = d["flops"] / r["flops"]
                speedup = r["speedup"]
                ratio = speedup / reduction
                bar = ("met" if ratio >= BAR else "missed") if reduction >= 2 else ""
                lines.append(f"| {model} | {mode} | {keep:.2f} | {r['flops'] / 1e6:.1f} | {reduction:.2f}x | "
                             f"{r['latency_ms']:.2f} | {speedup:.2f}x | {ratio:.2f} | {bar} |")
                payload.append({"model": model, "mode": mode, "keep": keep, "dense": d, "pruned": r,
                                "flop_reduction": reduction, "speedup": speedup})
    os.makedirs(args.out_dir, exist_ok=True)
    with open(os.path.join(args.out_dir, "speedup_cnn.md"), "w") as f:
        f.write("\n".join(lines) + "\n")
    with open(os.path.join(args.out_dir, "speedup_cnn.json"), "w") as f:
        json.dump(payload, f, indent=1)


if __name__ == "__main__":
    main()
