#!/usr/bin/env python3
"""Pruning the attention heads and FFN neurons of vit-tiny on Fashion-MNIST (issue 12), every
figure of docs/results/prune_vit_fashion-mnist.md from this script.

A dense vit-tiny (patch 7: 16 patches + a class token, d 128, 4 pre-LN layers of 4 heads, FFN
512; the settings of DENSE) is trained once per seed. Each method then removes 25 / 50 / 75% of
the heads of every layer (the self_attn groups only) or of the FFN neurons of every layer (the
linear1 groups only), without and with --refit, from the same dense model and the same
calibration batch; each cut model is evaluated, fine-tuned briefly (FINETUNE) and evaluated
again. Methods: ispasp (heads as units of the attention-output block, neurons of the FFN
block), magnitude (L1 of a unit's incoming weights: a head's Q/K/V rows), random, and the head
importance of Michel et al. 2019 (E_x |dLoss/d head mask|). The table gives the median over the
seeds with its range, FLOPs and parameters kept, and the inference latency (shrink-eval's probe,
batch 128, 2 threads) of each row's cut of one seed's dense model over that dense model's, the two
timed in alternation.

Cells are kept in docs/results/cells/prune_vit_fashion-mnist.jsonl (committed: the table grows
across sittings) and model files under runs/results_prune_vit/ (a dense model whose file is gone
is trained again: the same seed gives the same bits). --max-minutes stops starting new cells.

Usage: /usr/bin/python3 scripts/results_prune_vit.py [--seeds 0,1,2] [--max-minutes 150]
       [--skip-latency] [--smoke]"""
import argparse
import json
import os
import statistics
import time

from results_common import ROOT, Cells, fmt_num, fmt_pct, run_json, seeds_arg, train_once

DATA = "fashion-mnist"
MODEL = "vit-tiny"
DEPTH = 4
ADAMW = ["--optimizer", "adamw", "--weight-decay", 0.05, "--no-decay-norm-bias", "--label-smoothing", 0.1,
         "--batch-size", 128, "--augment", "crop:2,flip"]
DENSE = ["--epochs", 18, "--lr", 1e-3, "--schedule", "warmup:2+cosine", *ADAMW]
FINETUNE = ["--epochs", 1, "--lr", 2e-4, "--schedule", "cosine", *ADAMW]
METHODS = ["ispasp", "magnitude", "random", "head-importance"]
REMOVED = [0.25, 0.5, 0.75]
KINDS = {"heads": "self_attn", "ffn": "linear1"}  # which groups of every layer
LATENCY_RUNS = 3


class OutOfTime(Exception):
    pass


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build", default=os.path.join(ROOT, "build"))
    ap.add_argument("--runs", default=os.path.join(ROOT, "runs"))
    ap.add_argument("--seeds", default="0,1,2")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--max-minutes", type=float, default=0)
    ap.add_argument("--skip-latency", action="store_true")
    ap.add_argument("--smoke", action="store_true", help="one epoch, one removal fraction, two methods, a 2-layer "
                    "model: checks the plumbing (under runs/results_prune_vit_smoke, never docs/)")
    args = ap.parse_args()
    seeds = seeds_arg(args.seeds)
    start = time.time()
    work = os.path.join(args.runs, "results_prune_vit_smoke" if args.smoke else "results_prune_vit")
    b = lambda name: os.path.join(args.build, name)
    model_text = f"{MODEL}:depth=2,dim=32,heads=4,mlp=64" if args.smoke else MODEL
    depth = 2 if args.smoke else DEPTH
    removed = REMOVED[1:2] if args.smoke else REMOVED
    methods = ["ispasp", "head-importance"] if args.smoke else METHODS

    def epochs(flags):
        if not args.smoke:
            return flags
        out = list(flags)
        out[out.index("--epochs") + 1] = 1
        out[out.index("--schedule") + 1] = "cosine"
        return out

    cells = Cells(os.path.join(work, "cells.jsonl") if args.smoke else
                  os.path.join(ROOT, "docs", "results", "cells", f"prune_vit_{DATA}.jsonl"))
    def train_dense(seed):
        dense = os.path.join(work, f"s{seed}-dense.safetensors")
        train_once(args.build, dense, ["--model", model_text, "--data", DATA, "--seed", seed, *epochs(DENSE)],
                   args.threads)
        return dense

    try:
        for seed in seeds:
            keys = [{"dense": MODEL, "seed": seed}] + [
                row_key(seed, kind, fraction, method, refit)
                for kind in KINDS for fraction in removed for method in methods for refit in (False, True)]
            if all(Cells.canon(k) in cells.done for k in keys):
                continue  # every cell of this seed is on disk: its dense model is not needed again
            dense = train_dense(seed)
            ev = cells.get(keys[0], lambda: run_json([b("shrink-eval"), dense, "--data", DATA, "--json"], args.threads))
            print(f"{MODEL} seed {seed}: dense {ev['accuracy'] * 100:.2f}%", flush=True)
            for kind in KINDS:
                names = names_of(kind, depth)
                for fraction in removed:
                    for method in methods:
                        for refit in (False, True):
                            if args.max_minutes and time.time() - start > args.max_minutes * 60:
                                raise OutOfTime()
                            cell(cells, b, args, work, dense, seed, kind, names, fraction, method, refit, epochs)
    except OutOfTime:
        print(f"--max-minutes {args.max_minutes} reached: rerun to continue", flush=True)
    if not args.skip_latency:
        latency_pass(cells, b, args, work, seeds, depth, train_dense)
    write(cells, seeds, removed, work if args.smoke else os.path.join(ROOT, "docs", "results"))


def names_of(kind, depth):
    return ",".join(f"encoder.layers.{i}.{KINDS[kind]}" for i in range(depth))


def cut(b, args, dense, seed, names, fraction, method, refit, out):
    """shrink-prune's report of removing `fraction` of the units of `names` from `dense` into `out`."""
    return run_json([b("shrink-prune"), dense, "--method", method, "--groups", names, "--keep", f"{1 - fraction:.6f}",
                     *(["--refit"] if refit else []), "--data", DATA, "--seed", seed, "--out", out, "--json"],
                    args.threads)


def row_key(seed, kind, fraction, method, refit):
    return {"seed": seed, "kind": kind, "removed": fraction, "method": method, "refit": refit}


def cell(cells, b, args, work, dense, seed, kind, names, fraction, method, refit, epochs):
    key = row_key(seed, kind, fraction, method, refit)
    tag = f"s{seed}-{kind}-{method}-{'refit' if refit else 'plain'}-{int(fraction * 100)}"
    out = os.path.join(work, tag + ".safetensors")

    def compute():
        pruned = out + ".pruned.safetensors"
        report = cut(b, args, dense, seed, names, fraction, method, refit, pruned)
        train_once(args.build, out, ["--model", pruned, "--data", DATA, "--seed", seed, *epochs(FINETUNE)],
                   args.threads)
        os.remove(pruned)
        r = run_json([b("shrink-eval"), out, "--data", DATA, "--json"], args.threads)
        print(f"{tag}: cut {report['accuracy_after'] * 100:.2f}% -> tuned {r['accuracy'] * 100:.2f}%", flush=True)
        return {"accuracy_cut": report["accuracy_after"], "accuracy": r["accuracy"], "params": r["params"],
                "flops": r["flops"], "params_dense": report["params_before"], "flops_dense": report["flops_before"],
                "file": os.path.relpath(out, work)}
    return cells.get(key, compute)


def latency_pass(cells, b, args, work, seeds, depth, train_dense):
    """The inference latency of every row's cut beside the dense model's, one row at a time:
    shrink-eval's latency probe (the median of 25 batches of 128) in LATENCY_RUNS processes for
    the cut and as many for the dense model, alternating dense, cut, dense, cut, ... so that a slow
    spell of this VM (its speed drifts by 15% over minutes) weighs on both sides of a row's ratio;
    the row keeps both medians. Every cut is made again from the same dense model (the first seed
    whose dense file is present; the first seed's, trained again, when none is) without
    fine-tuning: fine-tuning changes no width, and the cut costs seconds where keeping every
    fine-tuned file would cost disk across sittings."""
    seed = next((s for s in seeds if os.path.exists(os.path.join(work, f"s{s}-dense.safetensors"))), seeds[0])
    dense = train_dense(seed)
    probe = lambda f: run_json([b("shrink-eval"), f, "--data", DATA, "--latency-only", "--json"],
                               args.threads)["latency_ms"]
    cells.get({"latency": "dense"}, lambda: {"ms": statistics.median(probe(dense) for _ in range(LATENCY_RUNS)),
                                             "seed": seed})
    configs = {(k["kind"], k["removed"], k["method"], k["refit"])
               for k in (json.loads(t) for t in cells.done) if "kind" in k}
    for kind, fraction, method, refit in sorted(configs):
        def measure(kind=kind, fraction=fraction, method=method, refit=refit):
            f = os.path.join(work, "latency-cut.safetensors")
            cut(b, args, dense, seed, names_of(kind, depth), fraction, method, refit, f)
            dense_ms, cut_ms = [], []
            for _ in range(LATENCY_RUNS):
                dense_ms.append(probe(dense))
                cut_ms.append(probe(f))
            os.remove(f)
            return {"ms": statistics.median(cut_ms), "dense_ms": statistics.median(dense_ms), "seed": seed}
        cells.get({"latency": {"kind": kind, "removed": fraction, "method": method, "refit": refit}}, measure)


def write(cells, seeds, removed, out_dir):
    entries = [(json.loads(k), v) for k, v in cells.done.items()]
    dense = {k["seed"]: v for k, v in entries if "dense" in k}
    latency = {json.dumps(k["latency"], sort_keys=True): v for k, v in entries if "latency" in k}
    dense_lat = latency.get('"dense"')
    rows = [(k, v) for k, v in entries if "kind" in k]
    if not dense:
        return
    dense_acc = [dense[s]["accuracy"] for s in seeds if s in dense]
    lines = [f"# Pruning vit-tiny's heads and FFN neurons on {DATA}", "",
             "Generated by `scripts/results_prune_vit.py`; do not edit by hand. Dense model and fine-tuning settings: "
             "the script's DENSE and FINETUNE.", "",
             f"Dense vit-tiny: {fmt_pct(dense_acc, 2)}% test accuracy (median [min, max] over {len(dense_acc)} "
             + (f"seed(s)); inference latency of seed {dense_lat['seed']}'s dense model: {dense_lat['ms']:.2f} ms per "
             "batch of 128 (2 threads); the latency column is each row's cut of that same model (widths are what "
             "latency depends on; fine-tuning changes none) over the dense model's, both timed in alternation "
             "(the script's latency_pass)." if dense_lat
                else "seed(s)); latency not measured yet (the script's latency pass)."), ""]
    for kind in KINDS:
        lines += [f"## {'Attention heads' if kind == 'heads' else 'FFN neurons'} removed in every layer", "",
                  "| removed | method | refit | after the cut % | after fine-tuning % | params kept | FLOPs kept | "
                  "latency kept | seeds |", "|---:|---|---|---:|---:|---:|---:|---:|---:|"]
        for fraction in removed:
            for method in METHODS:
                for refit in (False, True):
                    vs = [v for k, v in rows if k["kind"] == kind and k["removed"] == fraction and
                          k["method"] == method and k["refit"] == refit and k["seed"] in seeds]
                    if not vs:
                        continue
                    lat = latency.get(json.dumps({"kind": kind, "removed": fraction, "method": method,
                                                  "refit": refit}, sort_keys=True))
                    lat_text = f"{lat['ms'] / lat.get('dense_ms', dense_lat['ms']):.3f}" if lat and dense_lat else "–"
                    lines.append(f"| {int(fraction * 100)}% | {method} | {'yes' if refit else 'no'} | "
                                 f"{fmt_pct([v['accuracy_cut'] for v in vs], 2)} | "
                                 f"{fmt_pct([v['accuracy'] for v in vs], 2)} | "
                                 f"{fmt_num([v['params'] / v['params_dense'] for v in vs], 3)} | "
                                 f"{fmt_num([v['flops'] / v['flops_dense'] for v in vs], 3)} | {lat_text} | {len(vs)} |")
        lines.append("")
    os.makedirs(out_dir, exist_ok=True)
    with open(os.path.join(out_dir, f"prune_vit_{DATA}.md"), "w") as f:
        f.write("\n".join(lines) + "\n")
    with open(os.path.join(out_dir, f"prune_vit_{DATA}.json"), "w") as f:
        json.dump({"seeds": seeds, "cells": [{"key": k, "value": v} for k, v in entries]}, f, indent=1)


if __name__ == "__main__":
    main()
