#!/usr/bin/env python3
"""SAP (PQ Index, p = 0.5, q = 1) against the lottery ticket (LT: 20% of the remaining weights
per round by current magnitude) and one-shot (OS: 20% per round by the first dense model's
magnitudes) on the SAP paper's MLP 784-128-256-10 and Fashion-MNIST (Diao et al. 2023, Alg. 1;
shared ALGORITHMS.md §3): every round rewinds the survivors to the initial weights, trains
them, evaluates, and prunes; pruned weights are removed physically (CSR layers). Layer and
global scope, --seeds seeds each (seed = initialisation, shuffling and pruning), every cell
the median over seeds with the range.

Training per round follows the paper's optimiser (SGD, lr 0.1, momentum 0.9, Nesterov, weight
decay 5e-4, cosine over the round, batch 250, plain cross-entropy) for --epochs epochs instead
of the paper's 200, which do not fit on this machine: the table states how much the training
accuracy still moved over each round's last 5 epochs. Differences from the paper: no gradient
clipping, the last epoch (not the best test epoch) is kept, --rounds rounds instead of 30.

--model lenet5 runs the same protocol on LeNet-5 (28x28 grey images): its two convolutions
are pruned weight by weight too (nn::SparseConv2d), as the paper prunes every weight of more
than one dimension; the tables go to docs/results/sap_lenet5_<data>.*.

Finished rounds are kept in runs/results_sap/ (cells file and each round's model), so an
interrupted run resumes (--fresh restarts). Writes docs/results/sap_mlp_<data>.md/.json/.png.

Usage: /usr/bin/python3 scripts/results_sap.py [--model mlp|lenet5] [--rounds 15] [--epochs 20]
       [--scopes layer,global]"""
import argparse
import json
import os

from results_common import (ROOT, Cells, fmt_num, fmt_pct, matplotlib_pyplot, median_spread, run, run_json,
                            run_parallel, seeds_arg)

METHODS = [("sap", "SAP (0.5, 1)"), ("lottery", "LT 20%"), ("one-shot", "OS 20%")]
MODELS = {"mlp": ("mlp:784-128-256-10", "MLP 784-128-256-10"), "lenet5": ("lenet5", "LeNet-5")}
PLATEAU_EPOCHS = 5


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build", default=os.path.join(ROOT, "build"))
    ap.add_argument("--data", default="fashion-mnist")
    ap.add_argument("--model", default="mlp", choices=list(MODELS))
    ap.add_argument("--runs", default=os.path.join(ROOT, "runs"))
    ap.add_argument("--rounds", type=int, default=15)
    ap.add_argument("--epochs", type=int, default=20)
    ap.add_argument("--scopes", default="layer,global")
    ap.add_argument("--seeds", default="0,1,2")
    ap.add_argument("--jobs", type=int, default=2, help="chains run at once, one thread each")
    ap.add_argument("--fresh", action="store_true")
    ap.add_argument("--report-only", action="store_true",
                    help="write the tables from the rounds every run has finished, running nothing")
    args = ap.parse_args()
    seeds = seeds_arg(args.seeds)
    scopes = args.scopes.split(",")
    b = lambda name: os.path.join(args.build, name)
    work = os.path.join(args.runs, "results_sap")
    # The mlp's files keep their old names, so its stored rounds still count.
    tag = "" if args.model == "mlp" else f"{args.model}-"
    cells = Cells(os.path.join(work, f"{tag}{args.data}.jsonl"), args.fresh)
    train = ["--data", args.data, "--epochs", args.epochs, "--lr", 0.1, "--momentum", 0.9, "--nesterov",
             "--weight-decay", 5e-4, "--schedule", "cosine", "--batch-size", 250, "--label-smoothing", 0]

    def chain(seed, scope, method):
        init = os.path.join(work, f"{tag}init-s{seed}.safetensors")
        if not os.path.exists(init):
            run([b("shrink-train"), "--model", MODELS[args.model][0], "--epochs", 0, "--seed", seed, "--out", init], 1)
        current, reference = init, None
        for t in range(args.rounds):
            stem = os.path.join(work, f"{tag}{args.data}-s{seed}-{scope}-{method}-e{args.epochs}")
            trained, nxt = f"{stem}-trained{t}.safetensors", f"{stem}-round{t + 1}.safetensors"
            key = {"seed": seed, "scope": scope, "method": method, "round": t, "epochs": args.epochs}
            if not os.path.exists(nxt) or (method == "one-shot" and not os.path.exists(f"{stem}-trained0.safetensors")):
                cells.forget(key)  # its model is gone: run the round again

            def compute():
                metrics = trained + ".metrics.jsonl"
                if os.path.exists(metrics):
                    os.remove(metrics)
                run([b("shrink-train"), "--model", current, *train, "--seed", seed, "--metrics", metrics,
                     "--out", trained], 1)
                epochs = [json.loads(line) for line in open(metrics)]
                ev = run_json([b("shrink-eval"), trained, "--data", args.data, "--json"], 1)
                cmd = [b("shrink-sparsify"), trained, "--method", method, "--scope", scope, "--init", init,
                       "--seed", seed, "--out", nxt, "--json"]
                if method == "one-shot":
                    cmd += ["--reference", reference or trained]
                r = run_json(cmd, 1)
                d = sum(s["d"] for s in r["scopes"])
                train_acc = [e["train_accuracy"] for e in epochs]
                print(f"{args.data} seed {seed} {scope} {method} round {t}: {r['remaining_before']} weights, "
                      f"{ev['accuracy'] * 100:.2f}%", flush=True)
                return {"remaining": r["remaining_before"], "accuracy": ev["accuracy"],
                        "train_accuracy": train_acc[-1],
                        "train_accuracy_moved": max(train_acc[-PLATEAU_EPOCHS:]) - min(train_acc[-PLATEAU_EPOCHS:]),
                        # weight-averaged over the scopes: I(0.5, 1) of the trained weights before pruning
                        "pqi": sum(s["pqi"] * s["d"] for s in r["scopes"]) / max(d, 1)}
            cells.get(key, compute)
            reference = reference or f"{stem}-trained0.safetensors"
            current = nxt

    if args.report_only:
        done = lambda t: all(cells.has({"seed": s, "scope": sc, "method": m, "round": t, "epochs": args.epochs})
                             for sc in scopes for m, _ in METHODS for s in seeds)
        args.rounds = next((t for t in range(args.rounds) if not done(t)), args.rounds)
        if args.rounds == 0:
            raise SystemExit("results_sap: no round is finished by every run yet")
    else:
        run_parallel(args.jobs, [lambda s=s, sc=sc, m=m: chain(s, sc, m)
                                 for sc in scopes for m, _ in METHODS for s in seeds])
    write(args, seeds, scopes, cells)


def write(args, seeds, scopes, cells):
    stem = os.path.join(ROOT, "docs", "results", f"sap_{args.model}_{args.data}")
    curves = {}
    for scope in scopes:
        for m, _ in METHODS:
            for s in seeds:
                curves[(scope, m, s)] = [cells.done[Cells.canon({"seed": s, "scope": scope, "method": m, "round": t,
                                                                 "epochs": args.epochs})] for t in range(args.rounds)]
    dense = curves[(scopes[0], "sap", seeds[0])][0]["remaining"]
    with open(stem + ".json", "w") as f:
        json.dump({"rounds": args.rounds, "epochs": args.epochs, "seeds": seeds,
                   "curves": {f"{sc}/{m}/{s}": c for (sc, m, s), c in curves.items()}}, f, indent=1)
    moved = [r["train_accuracy_moved"] for c in curves.values() for r in c]
    final_train = [r["train_accuracy"] for c in curves.values() for r in c]
    lines = [f"# SAP vs LT vs OS on {MODELS[args.model][1]}, {args.data}", "",
             f"Generated by `scripts/results_sap.py`: {args.rounds} rounds of {args.epochs} epochs each (SGD, lr 0.1, "
             "momentum 0.9, Nesterov, weight decay 5e-4, cosine over the round, batch 250), rewinding the survivors "
             "to the initial weights every round (Diao et al. 2023, Alg. 1); pruned weights are removed physically "
             f"(CSR layers: SparseLinear, and SparseConv2d for convolutions). Seeds {', '.join(map(str, seeds))}: every cell is the median over seeds with the range "
             "in brackets. Each cell: remaining weights (% of dense) / test accuracy (%) after that round's "
             "training; PQI = weight-averaged I(0.5, 1) of the trained layers before that round's pruning.", "",
             f"Training plateau: over the last {PLATEAU_EPOCHS} epochs of a round the training accuracy moved by "
             f"{fmt_num([m * 100 for m in moved], 2)} points (median over every round of every run, range); the "
             f"last epoch's training accuracy (%) was {fmt_pct(final_train)}. The paper trains 200 epochs per round "
             "for 30 rounds, which does not fit on this machine.", ""]
    for scope in scopes:
        lines += [f"## {scope} scope", "", "| round | " + " | ".join(label for _, label in METHODS) + " | SAP PQI |",
                  "|---:|" + "---|" * len(METHODS) + "---:|"]
        for t in range(args.rounds):
            cells_t = []
            for m, _ in METHODS:
                rows = [curves[(scope, m, s)][t] for s in seeds]
                rem = median_spread([r["remaining"] / dense for r in rows])[0] * 100
                cells_t.append(f"{rem:.1f}% / {fmt_pct([r['accuracy'] for r in rows])}")
            pqi = fmt_num([curves[(scope, 'sap', s)][t]["pqi"] for s in seeds], 4)
            lines.append(f"| {t} | " + " | ".join(cells_t) + f" | {pqi} |")
        lines.append("")
    lines += [f"![trajectories]({os.path.basename(stem)}.png)", ""]
    with open(stem + ".md", "w") as f:
        f.write("\n".join(lines))
    plt = matplotlib_pyplot()
    if plt is None:
        return
    fig, axes = plt.subplots(len(scopes), 3, figsize=(15, 4 * len(scopes)), squeeze=False)
    for row, scope in zip(axes, scopes):
        for m, label in METHODS:
            med = lambda field, t: median_spread([curves[(scope, m, s)][t][field] for s in seeds])[0]
            rem = [med("remaining", t) / dense * 100 for t in range(args.rounds)]
            acc = [med("accuracy", t) * 100 for t in range(args.rounds)]
            row[0].plot(range(args.rounds), rem, marker="o", label=label)
            row[1].plot(rem, acc, marker="o", label=label)
            row[2].plot(range(args.rounds), [med("pqi", t) for t in range(args.rounds)], marker="o", label=label)
        row[0].set(xlabel="round", ylabel="remaining weights (%)", yscale="log", title=f"{scope} scope")
        row[1].set(xlabel="remaining weights (%)", ylabel="test accuracy (%)", xscale="log", title=f"{scope} scope")
        row[1].invert_xaxis()
        row[2].set(xlabel="round", ylabel="PQI I(0.5, 1) before pruning", title=f"{scope} scope: PQI per round")
        for ax in row:
            ax.legend()
    fig.tight_layout()
    fig.savefig(stem + ".png", dpi=110)


if __name__ == "__main__":
    main()
