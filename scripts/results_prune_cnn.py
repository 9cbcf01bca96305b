#!/usr/bin/env python3
"""Structured pruning of the CNN families (issue 11), every figure of
docs/results/prune_cnn_<data>.md from this script:

  1. PFP's headline metric (Liebenwein et al. 2020): the highest parameter (and FLOP)
     reduction whose test accuracy after fine-tuning stays within 0.5 points of the dense
     network's, for pfp, ispasp, magnitude (L1 = FT), sap and random, each without and with
     --refit: lenet5 (mnist and fashion-mnist, each beside its own dense model), resnet20 and
     resnet56 (fashion-mnist). A one-shot prune to each parameter target of TARGETS, mildest
     first, then FINETUNE; a method's sweep stops at its first target that misses the bar
     (the figure is the last target that met it). sap decides its own counts: its sweep is
     its defaults (eta_r = 0), then --sap-eta over SAP_ETAS (the keep bound's tolerance: a
     layer keeps about (1 + eta)^-2 of what eta = 0 keeps), mildest first, stopped the same way.
     On the ResNets each sweep runs twice: block-inner channels only (the default, as the
     official i-SpaSP and PFP code prune), and with --prune-residual (each stage's residual
     stream pruned too, where the PFP paper's ResNet reductions come from in good part).
  2. mobilenetv2 and resnet18: ispasp, magnitude and random (± refit) at FLOP targets of
     85 / 75 / 65% of dense, accuracy right after the cut and after a short fine-tune (one
     epoch; for resnet18 one pass over a seeded 10k-image part of the training split).
  3. Measured speedup: inference latency (shrink-eval's probe, batch 128, jobs x threads
     threads, one model at a time after everything else) of each pruned model beside its FLOP
     reduction; the issue's bar is a speedup of at least 0.8x the FLOP reduction where that
     reduction is 2x or more.

Images are Fashion-MNIST (or the 10k MNIST subset) padded to 32x32 (--input-size 32), one
grey channel. Dense models are trained once per seed with the settings of DENSE; the median
over the stored seeds with its range is shown. The paper's CIFAR-10 / MNIST figures stand beside ours
for scale only: different data.

Every finished cell (a dense model, a pruned and fine-tuned model) is kept in
docs/results/cells/prune_cnn_<data>.jsonl (committed: the table grows across sittings and
machines) and its model file under runs/results_prune_cnn/; a rerun resumes. A dense model whose
file is gone is trained again (the same seed gives the same bits), a finished cell is not; the
latency pass times only the model files present. The dense models of KEPT_DENSE (an hour or more
of training on 2 cores, and their tables take several sittings) are also kept in the repository,
docs/results/models/<data>-<model>-s<seed>.safetensors, and a sitting on a fresh checkout prunes
that file instead of training again; a training run a sitting could not finish may be kept beside
it as <name>.safetensors.run/ (its last saved state) and is resumed from there. --only limits a
sitting to some models, --max-minutes stops starting new cells after that long. --jobs 2 --threads 1 runs two methods'
sweeps at once, one thread each: on 2 cores that keeps both busy without the OpenMP barriers
of one 2-thread run (and a 2-thread run beside another process loses far more: a barrier waits
for a descheduled thread).

Usage: /usr/bin/python3 scripts/results_prune_cnn.py [--only lenet5,resnet20] [--data fashion-mnist]
       [--seeds 0,1,2] [--jobs 2] [--max-minutes 150] [--skip-latency] [--smoke]"""
import argparse
import itertools
import json
import os
import shutil
import statistics
import time

from results_common import (ROOT, Cells, fmt_num, fmt_pct, median_spread, run_json, run_parallel, seeds_arg,
                            train_once)

SGD = ["--optimizer", "sgd", "--momentum", 0.9, "--nesterov", "--label-smoothing", 0.1, "--no-decay-norm-bias"]
IMAGE = ["--input-size", 32]
CROP = ["--augment", "crop:2,flip"]
# model -> (model text, dense training flags, fine-tuning flags, data sets)
DENSE = {
    "lenet5": ("lenet5", ["--epochs", 30, "--batch-size", 64, "--lr", 0.05, "--weight-decay", 5e-4,
                          "--schedule", "warmup:1+cosine", *SGD],
               ["--epochs", 5, "--batch-size", 64, "--lr", 0.01, "--weight-decay", 5e-4, "--schedule", "cosine", *SGD],
               ["mnist", "fashion-mnist"]),
    "resnet20": ("resnet20", [*CROP, "--epochs", 24, "--batch-size", 128, "--lr", 0.1, "--weight-decay", 5e-4,
                              "--schedule", "warmup:1+cosine", *SGD],
                 [*CROP, "--epochs", 3, "--batch-size", 128, "--lr", 0.01, "--weight-decay", 5e-4, "--schedule",
                  "cosine", *SGD], ["fashion-mnist"]),
    "resnet56": ("resnet56", [*CROP, "--epochs", 12, "--batch-size", 128, "--lr", 0.1, "--weight-decay", 5e-4,
                              "--schedule", "warmup:1+cosine", *SGD],
                 [*CROP, "--epochs", 2, "--batch-size", 128, "--lr", 0.01, "--weight-decay", 5e-4, "--schedule",
                  "cosine", *SGD], ["fashion-mnist"]),
    "mobilenetv2": ("mobilenetv2:cifar_stride=true,width=0.5", [*CROP, "--epochs", 12, "--batch-size", 128, "--lr",
                                                                 0.1, "--weight-decay", 5e-4, "--schedule",
                                                                 "warmup:1+cosine", *SGD],
                    [*CROP, "--epochs", 1, "--batch-size", 128, "--lr", 0.01, "--weight-decay", 5e-4, "--schedule",
                     "cosine", *SGD], ["fashion-mnist"]),
    "resnet18": ("resnet18:small_input=true", [*CROP, "--epochs", 1, "--batch-size", 128, "--lr", 0.05,
                                               "--weight-decay", 5e-4, "--schedule", "constant", *SGD],
                 # One pass over a fixed 10k of the 60k training images (seeded by --seed): a full epoch
                 # of ResNet-18 takes about 35 min on 2 cores, and the table has 18 cells.
                 [*CROP, "--epochs", 1, "--train-samples", 10000, "--batch-size", 128, "--lr", 0.01,
                  "--weight-decay", 5e-4, "--schedule", "cosine", *SGD], ["fashion-mnist"]),
}
METRIC_MODELS = ["lenet5", "resnet20", "resnet56"]
METRIC_METHODS = ["pfp", "ispasp", "magnitude", "sap", "random"]
RESIDUAL_MODELS = ["resnet20", "resnet56"]  # models with residual streams: sweeps with --prune-residual too
TARGETS = [0.7, 0.5, 0.4, 0.3, 0.2, 0.15, 0.1, 0.075, 0.05]  # fractions of the parameters kept
# sap's points after its defaults: --sap-eta values (p = 0.5, q = 1: keep x (1 + eta)^-2 per layer,
# at most --sap-beta 0.9 of a layer's units removed), about 0.83, 0.64, 0.44 and 0.25 of eta = 0's.
SAP_ETAS = [0.1, 0.25, 0.5, 1.0]


def sap_points():
    """sap's sweep as (target, kind) cell keys: the defaults (kept as the first point's key of
    earlier sittings), then each eta."""
    return [(None, "params")] + [(eta, "sap-eta") for eta in SAP_ETAS]
FLOP_MODELS = ["mobilenetv2", "resnet18"]
FLOP_METHODS = ["ispasp", "magnitude", "random"]
FLOP_TARGETS = [0.85, 0.75, 0.65]
# The paper's figures (PFP, Table 1/2): (params removed %, FLOPs removed %), different data.
PAPER = {("lenet5", "mnist"): (92.4, None), ("resnet20", "cifar10"): (62.7, 45.5),
         ("resnet56", "cifar10"): (89.0, 84.4)}
BAR = 0.005  # within 0.5 points of dense
KEPT_DENSE = {"resnet56"}  # dense models kept in docs/results/models/ (see the docstring)


class OutOfTime(Exception):
    pass


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build", default=os.path.join(ROOT, "build"))
    ap.add_argument("--runs", default=os.path.join(ROOT, "runs"))
    ap.add_argument("--only", default=",".join(DENSE))
    ap.add_argument("--seeds", default="0,1,2")
    ap.add_argument("--jobs", type=int, default=1,
                    help="method sweeps at once, --threads each (2 x 1 thread keeps both cores busy without "
                         "OpenMP barriers; a dense model trains with jobs x threads)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--max-minutes", type=float, default=0)
    ap.add_argument("--skip-latency", action="store_true",
                    help="write the tables from the stored cells without timing models that have no latency yet "
                         "(the latency pass needs a quiet machine: run it later)")
    ap.add_argument("--smoke", action="store_true", help="one epoch everywhere, two targets: checks the plumbing "
                    "(cells and tables under runs/results_prune_cnn_smoke, never docs/)")
    args = ap.parse_args()
    args.all_threads = args.jobs * args.threads  # one binary alone on the machine: dense training, latency
    seeds = seeds_arg(args.seeds)
    models = [m for m in args.only.split(",") if m]
    for m in models:
        if m not in DENSE:
            raise SystemExit(f"--only: unknown model '{m}' (known: {', '.join(DENSE)})")
    start = time.time()
    work = os.path.join(args.runs, "results_prune_cnn_smoke" if args.smoke else "results_prune_cnn")
    b = lambda name: os.path.join(args.build, name)
    targets = TARGETS[:2] if args.smoke else TARGETS
    flop_targets = FLOP_TARGETS[:1] if args.smoke else FLOP_TARGETS

    def epochs(flags):
        if not args.smoke:
            return flags
        out = list(flags)
        out[out.index("--epochs") + 1] = 1
        out[out.index("--schedule") + 1] = "cosine"  # no room for a warm-up epoch
        return out

    def check_time():
        if args.max_minutes and time.time() - start > args.max_minutes * 60:
            raise OutOfTime()

    by_data = {}
    for model in models:
        for data in DENSE[model][3]:
            by_data.setdefault(data, []).append(model)
    for data, data_models in by_data.items():
        cells = Cells(os.path.join(work, f"{data}.jsonl") if args.smoke else
                      os.path.join(ROOT, "docs", "results", "cells", f"prune_cnn_{data}.jsonl"))
        try:
            for model in data_models:
                run_model(model, data, seeds, cells, work, b, args, epochs, check_time, targets, flop_targets)
        except OutOfTime:
            print(f"--max-minutes {args.max_minutes} reached: rerun to continue", flush=True)
        if not args.skip_latency:
            latency_pass(data, cells, work, b, args)
        write(data, cells, work if args.smoke else os.path.join(ROOT, "docs", "results"), targets,
              args.all_threads)


def model_path(work, data, model, seed, tag):
    return os.path.join(work, data, model, f"s{seed}-{tag}.safetensors")


def kept_dense_path(data, model, seed):
    return os.path.join(ROOT, "docs", "results", "models", f"{data}-{model}-s{seed}.safetensors")


def dense_model(args, data, model, seed, work, flags):
    """The dense model's file: the repository's copy for KEPT_DENSE models once it exists, else
    trained under work/ (then copied into the repository for KEPT_DENSE models; never in --smoke)."""
    keep = model in KEPT_DENSE and not args.smoke
    kept = kept_dense_path(data, model, seed)
    if keep and os.path.exists(kept):
        return kept
    dense = model_path(work, data, model, seed, "dense")
    if keep and os.path.isdir(kept + ".run") and not os.path.exists(dense) and not os.path.isdir(dense + ".run"):
        # A training run that a sitting could not finish, its last state kept in the repository: resume it.
        shutil.copytree(kept + ".run", dense + ".run")
    dense = train_once(args.build, dense, flags, args.all_threads)
    if keep:
        os.makedirs(os.path.dirname(kept), exist_ok=True)
        shutil.copyfile(dense, kept + ".tmp")
        os.replace(kept + ".tmp", kept)  # atomic: a partial copy is never taken for the model
        shutil.rmtree(kept + ".run", ignore_errors=True)  # an unfinished run's state, now finished
    return dense


def run_model(model, data, seeds, cells, work, b, args, epochs, check_time, targets, flop_targets):
    text, train, finetune, _ = DENSE[model]
    common = ["--data", data, *IMAGE]
    for seed in seeds:
        check_time()
        dense = dense_model(args, data, model, seed, work, ["--model", text, *common, "--seed", seed, *epochs(train)])
        ev = cells.get({"dense": model, "seed": seed},
                       lambda: run_json([b("shrink-eval"), dense, "--data", data, "--json"],
                                        args.all_threads))
        print(f"{data} {model} seed {seed}: dense {ev['accuracy'] * 100:.2f}%", flush=True)

        def cell(method, refit, target, kind, residual=False):
            key = {"model": model, "seed": seed, "method": method, "refit": refit, "target": target, "kind": kind}
            if residual:  # block-inner cells keep the keys of the sittings before this variant
                key["residual"] = True
            tag = f"{method}-{'refit' if refit else 'plain'}{'-residual' if residual else ''}-{kind}{target}"
            out = model_path(work, data, model, seed, tag)

            def compute():
                check_time()
                pruned = out + ".pruned.safetensors"
                if method != "sap":
                    flags = [f"--target-{kind}", f"{target:.6f}"]
                else:
                    flags = [] if target is None else ["--sap-eta", f"{target:g}"]
                flags += ["--refit"] if refit else []
                flags += ["--prune-residual"] if residual else []
                cut = run_json([b("shrink-prune"), dense, "--method", method, *flags,
                                "--data", data, "--seed", seed, "--out", pruned, "--json"], args.threads)
                # The fine-tune's own test pass after its last epoch gives the accuracy (a shrink-eval of
                # the file would repeat that pass, minutes on a ResNet-18); fine-tuning keeps the shapes.
                metrics = out + ".metrics.jsonl"
                if os.path.exists(metrics) and not os.path.isdir(out + ".run"):
                    os.remove(metrics)  # not from a run that train_once resumes below
                train_once(args.build, out, ["--model", pruned, *common, "--seed", seed, *epochs(finetune),
                                             "--metrics", metrics], args.threads)
                os.remove(pruned)
                if os.path.exists(metrics):
                    with open(metrics) as f:
                        accuracy = json.loads(f.read().splitlines()[-1])["test_accuracy"]  # the last epoch's
                    os.remove(metrics)
                else:  # the model was written in an earlier sitting that stopped before its cell was kept
                    accuracy = run_json([b("shrink-eval"), out, "--data", data, "--json"], args.threads)["accuracy"]
                result = {"accuracy_cut": cut["accuracy_after"], "accuracy": accuracy, "params": cut["params_after"],
                          "flops": cut["flops_after"], "params_dense": cut["params_before"],
                          "flops_dense": cut["flops_before"], "groups": cut["groups"], "file": out}
                print(f"{data} {model} s{seed} {tag}: cut {cut['accuracy_after'] * 100:.2f}% -> tuned "
                      f"{accuracy * 100:.2f}% params x{cut['params_after'] / cut['params_before']:.3f}", flush=True)
                return result
            return cells.get(key, compute)

        def sweep(method, refit, residual):
            for target, kind in (sap_points() if method == "sap" else [(t, "params") for t in targets]):
                r = cell(method, refit, target, kind, residual)
                if r["accuracy"] < ev["accuracy"] - BAR:
                    break  # the sweep's first miss: milder targets already met the bar

        def flop_points(method, refit):
            for target in flop_targets:
                cell(method, refit, target, "flops")

        # Each method's sweep is one task; --jobs of them run at once (cells are independent
        # binaries, and the cells file takes one line at a time).
        tasks = []
        for residual in ((False, True) if model in RESIDUAL_MODELS else (False,)):
            for method in (METRIC_METHODS if model in METRIC_MODELS else []):
                tasks += [lambda m=method, rf=refit, rs=residual: sweep(m, rf, rs) for refit in (False, True)]
        for method in (FLOP_METHODS if model in FLOP_MODELS else []):
            tasks += [lambda m=method, rf=refit: flop_points(m, rf) for refit in (False, True)]
        run_parallel(args.jobs, tasks)


LATENCY_RUNS = 3  # processes per model; one process's median can sit 20% off another's on this VM


def latency_pass(data, cells, work, b, args):
    """Latency of every kept model, one at a time (quiet), cached per file: the median over
    LATENCY_RUNS processes of shrink-eval's probe (itself the median of 25 batches)."""
    for key_text, value in list(cells.done.items()):
        key = json.loads(key_text)
        files = []  # (the file the latency is keyed by, the file timed)
        if "dense" in key:
            f = model_path(work, data, key["dense"], key["seed"], "dense")
            kept = kept_dense_path(data, key["dense"], key["seed"])
            files.append((f, f if os.path.exists(f) or args.smoke else kept))
        elif isinstance(value, dict) and "file" in value:
            files.append((value["file"], value["file"]))
        for f, timed in files:
            if os.path.exists(timed):
                cells.get({"latency": os.path.relpath(f, work)}, lambda timed=timed: statistics.median(
                    run_json([b("shrink-eval"), timed, "--data", data, "--json"], args.all_threads)["latency_ms"]
                    for _ in range(LATENCY_RUNS)))


def write(data, cells, out_dir, targets, latency_threads):
    if not cells.done:
        return  # nothing measured on this data set yet: no empty table
    rows = {}
    for key_text, value in cells.done.items():
        key = json.loads(key_text)
        rows.setdefault("dense" if "dense" in key else ("latency" if "latency" in key else "cell"), []).append((key, value))
    dense = {(k["dense"], k["seed"]): v for k, v in rows.get("dense", [])}
    # Every stored seed, not this sitting's --seeds: a sitting that runs one seed of one model
    # must not narrow the other tables of the file to that seed.
    seeds = sorted({s for _, s in dense})
    latency = {k["latency"]: v for k, v in rows.get("latency", [])}
    cell_rows = rows.get("cell", [])
    lines = [f"# Structured pruning of CNNs on {data} (32x32)", "",
             "Generated by `scripts/results_prune_cnn.py`; do not edit by hand. Settings: see the script's DENSE "
             "table (dense training and fine-tuning per model).", ""]
    payload = {"data": data, "seeds": seeds, "cells": [{"key": k, "value": v} for k, v in cell_rows],
               "dense": [{"model": m, "seed": s, **v} for (m, s), v in dense.items()]}
    models = sorted({k["model"] for k, _ in cell_rows})

    def dense_accuracies(model):
        return [dense[(model, s)]["accuracy"] for s in seeds if (model, s) in dense]

    for model in models:
        if model not in METRIC_MODELS:
            continue
        dense_acc = dense_accuracies(model)
        streams = model in RESIDUAL_MODELS
        lines += [f"## {model}: highest reduction within 0.5 points of dense ({fmt_pct(dense_acc, 2)}%)", "",
                  f"| method | refit |{' residual streams |' if streams else ''} params removed % | FLOPs removed % "
                  "| accuracy % | seeds |", f"|---|---|{'---|' if streams else ''}---:|---:|---:|---:|"]
        for residual, method, refit in itertools.product((False, True) if streams else (False,), METRIC_METHODS,
                                                         (False, True)):
            best = []
            for s in seeds:
                if (model, s) not in dense:
                    continue
                done = [v for k, v in cell_rows if k["model"] == model and k["seed"] == s
                        and k["method"] == method and k["refit"] == refit
                        and k.get("residual", False) == residual]
                bar = dense[(model, s)]["accuracy"] - BAR
                ok = [v for v in done if v["accuracy"] >= bar]
                # A seed counts once its sweep is over (a miss, or every target run): a sweep
                # still under way would show a milder figure than it will end with.
                if not done or (len(ok) == len(done) and len(done) < (len(sap_points()) if method == "sap" else len(targets))):
                    continue
                if ok:
                    best.append(min(ok, key=lambda v: v["params"]))
                else:  # even the mildest target missed: nothing removed within the bar
                    v = done[0]
                    best.append({"params": v["params_dense"], "params_dense": v["params_dense"],
                                 "flops": v["flops_dense"], "flops_dense": v["flops_dense"],
                                 "accuracy": dense[(model, s)]["accuracy"]})
            if not best:
                continue
            lines.append(f"| {method} | {'yes' if refit else 'no'} | "
                         + (f"{'pruned' if residual else 'kept'} | " if streams else "") +
                         f"{fmt_num([100 * (1 - v['params'] / v['params_dense']) for v in best], 1)} | "
                         f"{fmt_num([100 * (1 - v['flops'] / v['flops_dense']) for v in best], 1)} | "
                         f"{fmt_pct([v['accuracy'] for v in best], 2)} | {len(best)} |")
        lines.append(f"\nsap decides its own counts: its points are its defaults, then --sap-eta "
                     f"{', '.join(f'{e:g}' for e in SAP_ETAS)}; the others' are --target-params "
                     f"{', '.join(f'{t:g}' for t in targets)}, each sweep stopped at its first miss."
                     + (" Residual streams kept: block-inner channels only (the default); pruned: with "
                        "--prune-residual, each stage's stream a group too." if streams else ""))
        for (m, d), (p, f) in PAPER.items():
            if m == model:
                lines.append(f"\nThe paper ({d}, different data): PFP removes {p}% of the parameters"
                             + (f", {f}% of the FLOPs." if f else "."))
        lines.append("")
    for model in models:
        if model not in FLOP_MODELS:
            continue
        dense_acc = dense_accuracies(model)
        lines += [f"## {model}: FLOP targets (dense {fmt_pct(dense_acc, 2)}%)", "",
                  "| method | refit | FLOPs target | FLOPs kept | params kept | after the cut % | after fine-tuning % | seeds |",
                  "|---|---|---:|---:|---:|---:|---:|---:|"]
        for method in FLOP_METHODS:
            for refit in (False, True):
                for target in FLOP_TARGETS:
                    vs = [v for k, v in cell_rows if k["model"] == model and k["method"] == method and
                          k["refit"] == refit and k["target"] == target and k["kind"] == "flops"]
                    if vs:
                        lines.append(f"| {method} | {'yes' if refit else 'no'} | {target:.2f} | "
                                     f"{fmt_num([v['flops'] / v['flops_dense'] for v in vs])} | "
                                     f"{fmt_num([v['params'] / v['params_dense'] for v in vs])} | "
                                     f"{fmt_pct([v['accuracy_cut'] for v in vs], 2)} | "
                                     f"{fmt_pct([v['accuracy'] for v in vs], 2)} | {len(vs)} |")
        lines.append("\nEach method cuts the dense model once to --target-flops T (FLOPs and parameters kept: the "
                     f"op-level counter's, on the pruned model), then fine-tunes it ({model}'s fine-tuning flags in "
                     "DENSE); accuracy is on the test set before and after the fine-tune."
                     + (" Its dense model has one epoch of training (one takes about 35 minutes on 2 cores), so the "
                        "fine-tune is further training and a pruned model can pass the dense one."
                        if model == "resnet18" else ""))
        lines.append("")
    speed_rows = []
    for k, v in sorted(cell_rows, key=lambda kv: (kv[0]["model"], kv[0]["method"], kv[0]["seed"])):
        if k["seed"] != seeds[0]:
            continue
        rel = os.path.relpath(v["file"], os.path.dirname(os.path.dirname(os.path.dirname(v["file"]))))
        dense_rel = os.path.join(data, k["model"], f"s{k['seed']}-dense.safetensors")
        if rel not in latency or dense_rel not in latency:
            continue
        reduction = v["flops_dense"] / v["flops"]
        speedup = latency[dense_rel] / latency[rel]
        speed_rows.append(f"| {k['model']} | {k['method']}{' (residual streams too)' if k.get('residual') else ''} | {'yes' if k['refit'] else 'no'} | {k['target']} | "
                          f"{reduction:.2f}x | {speedup:.2f}x | {speedup / reduction:.2f} |")
    lines += [f"## Measured speedup (CPU, {latency_threads} thread{'s' if latency_threads != 1 else ''}, shrink-eval's latency probe: batch 128, median of 25)", ""]
    if speed_rows:
        lines += ["| model | method | refit | target | FLOP reduction | speedup | speedup / FLOP reduction |",
                  "|---|---|---|---|---:|---:|---:|", *speed_rows]
    else:
        lines.append("Not measured yet: the latency pass runs without --skip-latency on a quiet machine "
                     "(docs/results/speedup_cnn.md has the speedups of every family at fixed keep fractions).")
    os.makedirs(out_dir, exist_ok=True)
    with open(os.path.join(out_dir, f"prune_cnn_{data}.md"), "w") as f:
        f.write("\n".join(lines) + "\n")
    with open(os.path.join(out_dir, f"prune_cnn_{data}.json"), "w") as f:
        json.dump(payload, f, indent=1)


if __name__ == "__main__":
    main()
