#!/usr/bin/env python3
"""Dense accuracy of the CNN families on real data (issue 10): each model is trained with
shrink-train under the settings below on --seeds seeds, evaluated with shrink-eval (eval mode,
running BatchNorm statistics), and tabulated with the median and range over seeds beside the
target the issue sets. Every figure of docs/results/cnn_<data>.md comes from this script.

Training a CIFAR-style network on 2 cores takes hours, longer than one sitting, so every run
keeps its whole state in runs/results_cnn/<cell>/state (shrink-train --checkpoint-dir, saved
every --checkpoint-every steps) and a rerun of the script continues each unfinished run where
it stopped (shrink-train --resume reaches the weights an uninterrupted run reaches). Finished
cells are kept in runs/results_cnn/<data>.jsonl. --only MODEL[,MODEL] limits a sitting to some
models; --max-minutes stops starting new work after that long (a run in flight is stopped at
its next saved state and continues on the next call).

Determinism: seed 0 of the cheapest model is trained twice from scratch and the two
test losses must be equal (the table says so), the issue's "same seed twice, same result".

Usage: /usr/bin/python3 scripts/results_cnn.py [--data fashion-mnist] [--seeds 0,1,2]
       [--only lenet5,resnet20] [--threads 2] [--max-minutes 150]"""
import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import time

from results_common import ROOT, Cells, fmt_pct, run_json, seeds_arg

SGD = ["--optimizer", "sgd", "--momentum", 0.9, "--nesterov", "--label-smoothing", 0.1, "--no-decay-norm-bias"]

# name -> (model text, image flags, training flags, target test accuracy or None, what it is)
MODELS = {
    "lenet5": ("lenet5", [], ["--epochs", 30, "--batch-size", 64, "--lr", 0.05, "--weight-decay", 5e-4,
                              "--schedule", "warmup:1+cosine", *SGD], 0.905,
               "the PFP paper's LeNet-5 at 28x28, no augmentation"),
    "resnet20": ("resnet20", ["--augment", "crop:2,flip"],
                 ["--epochs", 24, "--batch-size", 128, "--lr", 0.1, "--weight-decay", 5e-4,
                  "--schedule", "warmup:1+cosine", *SGD], 0.930,
                 "CIFAR ResNet-20 at the data's own 1x28x28, random crop (pad 2) + flip"),
    "mobilenetv2": ("mobilenetv2:cifar_stride=true,width=0.5", ["--augment", "crop:2,flip"],
                    ["--epochs", 12, "--batch-size", 128, "--lr", 0.1, "--weight-decay", 5e-4,
                     "--schedule", "warmup:1+cosine", *SGD], 0.920,
                    "MobileNetV2 (width 0.5, CIFAR strides) at the data's own 1x28x28, random crop (pad 2) + flip"),
    "resnet18": ("resnet18:small_input=true", ["--augment", "crop:2,flip"],
                 ["--epochs", 1, "--batch-size", 128, "--lr", 0.05, "--weight-decay", 5e-4,
                  "--schedule", "constant", *SGD], None,
                 "ResNet-18 with the small-input stem at 1x28x28, a short 1-epoch schedule, one seed"),
}
# Models trained on the first seed only, for the machine's sake: an epoch of mobilenetv2 at
# width 0.5 takes about 5 minutes on 2 cores, one of resnet18 (0.43 GMAC/sample) about 11.
ONE_SEED = {"mobilenetv2", "resnet18"}
REPEAT_SEED = 0  # lenet5 is trained twice from this seed


class OutOfTime(Exception):
    pass


def train_resumable(build, cell_dir, args, threads, deadline, checkpoint_every):
    """shrink-train into cell_dir/model.safetensors, resuming cell_dir/state when it holds a
    saved run. Past `deadline` the run is stopped (SIGTERM; the last saved state stays)."""
    out = os.path.join(cell_dir, "model.safetensors")
    if os.path.exists(out):
        return out
    state = os.path.join(cell_dir, "state")
    os.makedirs(cell_dir, exist_ok=True)
    train = os.path.join(build, "shrink-train")
    if os.path.isdir(state) and any(n.startswith("state-") and ".tmp" not in n for n in os.listdir(state)):
        cmd = [train, "--resume", state, "--threads", threads]
    else:
        shutil.rmtree(state, ignore_errors=True)
        cmd = [train, *args, "--checkpoint-dir", state, "--checkpoint-every", checkpoint_every,
               "--metrics", os.path.join(cell_dir, "metrics.jsonl"), "--out", out, "--threads", threads]
    env = dict(os.environ, OMP_NUM_THREADS=str(threads))
    log = open(os.path.join(cell_dir, "train.log"), "a")
    p = subprocess.Popen([str(c) for c in cmd], stdout=log, stderr=subprocess.STDOUT, env=env)
    while p.poll() is None:
        if time.time() > deadline:
            p.send_signal(signal.SIGTERM)
            p.wait()
            raise OutOfTime(cell_dir)
        time.sleep(5)
    if p.returncode != 0:
        raise RuntimeError(f"{' '.join(map(str, cmd))} failed ({p.returncode}); see {cell_dir}/train.log")
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build", default=os.path.join(ROOT, "build"))
    ap.add_argument("--data", default="fashion-mnist")
    ap.add_argument("--runs", default=os.path.join(ROOT, "runs"))
    ap.add_argument("--seeds", default="0,1,2")
    ap.add_argument("--only", default=",".join(MODELS))
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--checkpoint-every", type=int, default=200, help="steps between saved states")
    ap.add_argument("--max-minutes", type=float, default=1e9)
    ap.add_argument("--fresh", action="store_true")
    args = ap.parse_args()
    deadline = time.time() + args.max_minutes * 60
    seeds = seeds_arg(args.seeds)
    work = os.path.join(args.runs, "results_cnn")
    cells = Cells(os.path.join(work, f"{args.data}.jsonl"), args.fresh)
    eval_bin = os.path.join(args.build, "shrink-eval")

    adopt_committed(cells, args.data)

    def cell(name, seed, tag=""):
        model, image, train, _, _ = MODELS[name]
        key = {"model": name, "seed": seed, "data": args.data, "repeat": tag}
        cell_dir = os.path.join(work, f"{args.data}-{name}-s{seed}{tag}")
        flags = ["--model", model, "--data", args.data, "--seed", seed, *image, *train]
        if cells.has(key) and cells.done[cells.canon(key)]["flags"] != [str(f) for f in flags]:
            print(f"{name} seed {seed}{tag}: stored under other settings; trained again", file=sys.stderr)
            cells.forget(key)
            shutil.rmtree(cell_dir, ignore_errors=True)

        def compute():
            out = train_resumable(args.build, cell_dir, flags, args.threads, deadline, args.checkpoint_every)
            r = run_json([eval_bin, out, "--data", args.data, "--json", "--batch-size", 128], args.threads)
            epochs = [json.loads(l) for l in open(os.path.join(cell_dir, "metrics.jsonl"))]
            return {"accuracy": r["accuracy"], "loss": r["loss"], "params": r["params"], "flops": r["flops"],
                    "latency_ms": r["latency_ms"], "train_seconds": sum(e["seconds"] for e in epochs),
                    "epochs": len(epochs), "flags": [str(f) for f in flags]}
        return cells.get(key, compute)

    names = [n for n in args.only.split(",") if n]
    for n in names:
        if n not in MODELS:
            sys.exit(f"--only: unknown model {n}; valid: {', '.join(MODELS)}")
    results, unfinished = {}, []
    for name in names:
        for seed in seeds[:1] if name in ONE_SEED else seeds:
            try:
                results.setdefault(name, {})[seed] = cell(name, seed)
            except OutOfTime as e:
                unfinished.append(str(e))
    if "lenet5" in names and REPEAT_SEED in seeds:
        try:
            cell("lenet5", REPEAT_SEED, "-repeat")
        except OutOfTime as e:
            unfinished.append(str(e))
    # The table holds every finished cell, also of models this sitting did not run (--only).
    stored = lambda name, seed, tag="": cells.done.get(cells.canon(
        {"model": name, "seed": seed, "data": args.data, "repeat": tag}))
    for key in sorted(cells.done):
        k = json.loads(key)
        if k.get("data") == args.data and k.get("repeat") == "" and k.get("model") in MODELS:
            results.setdefault(k["model"], {})[k["seed"]] = cells.done[key]
    results = {name: results[name] for name in MODELS if name in results}
    write_table(args, results, stored("lenet5", REPEAT_SEED, "-repeat"))
    if unfinished:
        print("stopped at --max-minutes; unfinished (rerun to continue): " + ", ".join(unfinished), file=sys.stderr)


def adopt_committed(cells, data):
    """Takes the finished cells of the committed table (docs/results/cnn_<data>.json) that
    runs/ does not hold: runs/ lives on one machine, the committed table travels with the
    repository, so a sitting on a fresh clone continues the table instead of dropping rows."""
    path = os.path.join(ROOT, "docs/results", f"cnn_{data}.json")
    if not os.path.exists(path):
        return
    committed = json.load(open(path))
    found = [({"model": name, "seed": int(seed), "data": data, "repeat": ""}, value)
             for name, by_seed in committed.get("results", {}).items() for seed, value in by_seed.items()]
    if committed.get("repeat"):
        found.append(({"model": "lenet5", "seed": REPEAT_SEED, "data": data, "repeat": "-repeat"},
                      committed["repeat"]))
    for key, value in found:
        if not cells.has(key):
            cells.get(key, lambda v=value: v)


def write_table(args, results, repeat):
    rows = ["| model | setting | test accuracy, median (range) | target | params | MFLOPs/sample | "
            "train min/run | seeds |", "|---|---|---:|---:|---:|---:|---:|---:|"]
    for name, by_seed in results.items():
        model, image, train, target, what = MODELS[name]
        vals = list(by_seed.values())
        acc = [v["accuracy"] for v in vals]
        med = sorted(acc)[len(acc) // 2]
        verdict = "" if target is None else (" ✓" if med >= target else " ✗ (missed)")
        rows.append(f"| `{model}` | {what}; {vals[0]['epochs']} epochs | {fmt_pct(acc, 2)}{verdict} | "
                    f"{'—' if target is None else f'{target * 100:.1f}%'} | {vals[0]['params']:,} | "
                    f"{vals[0]['flops'] / 1e6:.1f} | {sum(v['train_seconds'] for v in vals) / len(vals) / 60:.0f} | "
                    f"{len(vals)} |")
    lines = [f"# CNN accuracy on {args.data}", "",
             "Generated by `/usr/bin/python3 scripts/results_cnn.py --data " + args.data + "`; do not edit by "
             "hand. Test accuracy of the final epoch's weights (no early stopping, no test-set selection), "
             "evaluated by `shrink-eval` in eval mode (running BatchNorm statistics). FLOPs count a multiply-add "
             "as 2. Train minutes are the wall time of one run on this 2-core machine, which was shared with "
             "other work while these ran: a cost figure, not a speed measurement (docs/performance.md has those).",
             "", *rows, ""]
    lines.append("Settings (every flag passed to `shrink-train`):")
    lines.append("")
    for name, by_seed in results.items():
        flags = next(iter(by_seed.values()))["flags"]
        flags = [f for i, f in enumerate(flags) if not (i > 0 and flags[i - 1] == "--seed") and f != "--seed"]
        lines.append(f"- `{name}`: `shrink-train {' '.join(flags)} --seed S`")
    if repeat is not None and REPEAT_SEED in results.get("lenet5", {}):
        first = results["lenet5"][REPEAT_SEED]
        same = first["loss"] == repeat["loss"] and first["accuracy"] == repeat["accuracy"]
        lines += ["", f"Same seed twice: `lenet5` seed {REPEAT_SEED} trained again from scratch gives test loss "
                  f"{repeat['loss']:.6f} vs {first['loss']:.6f} — {'identical' if same else 'DIFFERENT'}."]
    os.makedirs(os.path.join(ROOT, "docs/results"), exist_ok=True)
    base = os.path.join(ROOT, "docs/results", f"cnn_{args.data}")
    with open(base + ".md", "w") as f:
        f.write("\n".join(lines) + "\n")
    with open(base + ".json", "w") as f:
        json.dump({"results": results, "repeat": repeat}, f, indent=1, sort_keys=True)
    print("\n".join(lines))


if __name__ == "__main__":
    main()
