#!/usr/bin/env python3
"""ffn-10000 (784-10000-10) pruned to 5000 ... 50 hidden units by each method, with and
without the consumer refit (--refit, beyond the seed papers), test accuracy without and with
one epoch of fine-tuning, pruning wall time, and GFS against i-SpaSP at three widths. Every
cell is the median over --seeds (each seed trains its own dense model and seeds its pruning),
printed with the range over seeds. Writes docs/results/ffn10000_<data>.md, .json and .png;
every figure comes from the binaries.

Finished cells are kept in runs/results_ffn/<data>.jsonl: an interrupted run resumes where it
stopped (--fresh starts over; do that after changing the binaries).

Usage: /usr/bin/python3 scripts/results_ffn.py [--data fashion-mnist[,mnist]] [--seeds 0,1,2] [--redo ispasp,gfs]"""
import argparse
import json
import os

from results_common import (ROOT, Cells, fmt_num, fmt_pct, matplotlib_pyplot, median_spread, run_json,
                            seeds_arg, train_once)

WIDTHS = [5000, 2000, 1000, 500, 200, 100, 50]
METHODS = ["ispasp", "pfp", "magnitude", "taylor", "random"]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build", default=os.path.join(ROOT, "build"))
    ap.add_argument("--data", default="fashion-mnist")
    ap.add_argument("--runs", default=os.path.join(ROOT, "runs"))
    ap.add_argument("--seeds", default="0,1,2")
    ap.add_argument("--widths", default=",".join(map(str, WIDTHS)), help="hidden widths pruned to")
    ap.add_argument("--gfs-widths", default="50,100,200")
    ap.add_argument("--finetune-widths", default="1000,200,50",
                    help="widths also measured after one epoch of fine-tuning")
    ap.add_argument("--calib-samples", type=int, default=512)
    ap.add_argument("--train-epochs", type=int, default=10)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--fresh", action="store_true", help="forget the finished cells and start over")
    ap.add_argument("--redo", default="",
                    help="methods whose cells are run again (e.g. ispasp,gfs after changing their code or to "
                         "time them on a quiet machine); the other cells are reused")
    ap.add_argument("--report-only", action="store_true",
                    help="write the tables from the finished cells without running the missing ones (shown as —)")
    args = ap.parse_args()
    seeds = seeds_arg(args.seeds)
    WIDTHS[:] = [int(w) for w in args.widths.split(",") if w]  # the tables list these
    gfs_widths = [int(w) for w in args.gfs_widths.split(",") if w]
    ft_widths = [int(w) for w in args.finetune_widths.split(",") if w]
    redo = set(m for m in args.redo.split(",") if m)
    unknown = redo - set(METHODS) - {"gfs"}
    if unknown:
        ap.error(f"--redo: unknown method(s) {sorted(unknown)}; choose from {METHODS + ['gfs']}")
    b = lambda name: os.path.join(args.build, name)
    for data in args.data.split(","):
        cells = Cells(os.path.join(args.runs, "results_ffn", f"{data}.jsonl"), args.fresh)
        scratch = os.path.join(args.runs, "results_ffn", "scratch.safetensors")
        dense = {}
        for seed in seeds:
            path = train_once(args.build, os.path.join(args.runs, f"ffn-10000-{data}-s{seed}.safetensors"),
                              ["--model", "ffn-10000", "--data", data, "--epochs", args.train_epochs,
                               "--seed", seed], args.threads)
            dense[seed] = cells.get({"dense": seed, "epochs": args.train_epochs},
                                    lambda: run_json([b("shrink-eval"), path, "--data", data, "--json"],
                                                     args.threads))

        def prune(seed, method, width, refit, ft):
            key = {"seed": seed, "method": method, "width": width, "refit": refit, "finetune": ft,
                   "calib": args.calib_samples, "epochs": args.train_epochs}

            def compute():
                cmd = [b("shrink-prune"), os.path.join(args.runs, f"ffn-10000-{data}-s{seed}.safetensors"),
                       "--method", method, "--keep", width / 10000, "--data", data, "--finetune-epochs", ft,
                       "--calib-samples", args.calib_samples, "--seed", seed, "--out", scratch, "--json"]
                r = run_json(cmd + (["--refit"] if refit else []), args.threads)
                print(f"{data} seed {seed} {method}{' +refit' if refit else ''} {width} ft{ft}: "
                      f"{r['accuracy_after'] * 100:.2f}% ({r['prune_seconds']:.3f}s)", flush=True)
                return {k: r[k] for k in ("accuracy_after", "prune_seconds", "params_after", "flops_after")}
            if args.report_only and not cells.has(key):
                return None
            if method in redo and not args.report_only:
                cells.forget(key)
            return cells.get(key, compute)

        def add(seed, method, width, refit, ft):
            r = prune(seed, method, width, refit, ft)
            if r is not None:
                rows.append({"seed": seed, "method": method, "width": width, "refit": refit, "finetune": ft, **r})

        rows = []
        for seed in seeds:
            for width in WIDTHS:
                for method in METHODS:
                    for refit in (0, 1):
                        add(seed, method, width, refit, 0)
                    if width in ft_widths:
                        add(seed, method, width, 0, 1)
                if width in gfs_widths:  # GFS: accuracy and time, no fine-tuning
                    add(seed, "gfs", width, 0, 0)
        shown = seeds
        if args.report_only:  # a partial table: only the seeds whose every cell is finished
            per_seed = {s: sum(r["seed"] == s for r in rows) for s in seeds}
            shown = [s for s in seeds if per_seed[s] == max(per_seed.values())]
            rows = [r for r in rows if r["seed"] in shown]
        write(os.path.join(ROOT, "docs", "results"), data, {s: dense[s] for s in shown}, rows, shown, args)


def write(out_dir, data, dense, rows, seeds, args):
    os.makedirs(out_dir, exist_ok=True)
    stem = os.path.join(out_dir, f"ffn10000_{data}")
    with open(stem + ".json", "w") as f:
        json.dump({"dense": {str(s): d for s, d in dense.items()}, "rows": rows, "seeds": seeds,
                   "calib_samples": args.calib_samples, "train_epochs": args.train_epochs}, f, indent=1)

    def values(method, width, refit, ft, field="accuracy_after"):
        return [r[field] for r in rows if (r["method"], r["width"], r["refit"], r["finetune"]) ==
                (method, width, refit, ft)]

    def by_seed(method, width, refit, ft=0, field="accuracy_after"):
        return {r["seed"]: r[field] for r in rows
                if (r["method"], r["width"], r["refit"], r["finetune"]) == (method, width, refit, ft)}

    def diff(a, b):
        """Per-seed differences a - b in points, for the seeds both have."""
        return [(a[s] - b[s]) * 100 for s in seeds if s in a and s in b]

    def refit_gain(method, width):
        return diff(by_seed(method, width, 1), by_seed(method, width, 0))

    accs = [d["accuracy"] for d in dense.values()]
    n = len(seeds)
    header = "| hidden units | " + " | ".join(METHODS) + " |"
    rule = "|---:|" + "---|" * len(METHODS)

    def table(refit, ft):
        lines = [header, rule]
        for w in WIDTHS:
            if values(METHODS[0], w, refit, ft):
                lines.append(f"| {w} | " + " | ".join(fmt_pct(values(m, w, refit, ft)) for m in METHODS) + " |")
        return lines

    lines = [f"# ffn-10000 on {data}: accuracy after pruning the hidden layer", "",
             f"Generated by `scripts/results_ffn.py` (seeds {', '.join(map(str, seeds))}; each seed trains its own "
             f"dense 784-10000-10 for {args.train_epochs} epochs and seeds its pruning; every method prunes the "
             f"same dense models with the same {args.calib_samples} calibration samples). Dense test accuracy "
             f"{fmt_pct(accs, 2)}, {dense[seeds[0]]['params']} parameters. Each cell: median test accuracy (%) "
             f"over the {n} seeds, with the range (min–max) in brackets.", "",
             "## Without fine-tuning", "", *table(0, 0), "",
             "## Without fine-tuning, with `--refit`", "",
             "The consumer refit (beyond the seed papers): after a group is cut, the next layer's weights and "
             "bias are re-solved by ridge-regularised least squares so that its output on the calibration "
             "samples matches the dense layer's.", "", *table(1, 0), "",
             "Refit gain (points; median over seeds of the per-seed difference, range in brackets):", "",
             header, rule]
    for w in WIDTHS:
        lines.append(f"| {w} | " + " | ".join(fmt_num(refit_gain(m, w), 1) for m in METHODS) + " |")
    if any(r["finetune"] for r in rows):
        lines += ["", "## After one epoch of fine-tuning (no refit)", "", *table(0, 1)]
    lines += ["", "## i-SpaSP against magnitude without fine-tuning", "",
              "Points by which i-SpaSP beats magnitude (L1) on the same dense model (median over seeds, range):",
              "", "| hidden units | no refit | with refit |", "|---:|---:|---:|"]
    for w in WIDTHS:
        lines.append(f"| {w} | {fmt_num(diff(by_seed('ispasp', w, 0), by_seed('magnitude', w, 0)), 1)} | "
                     f"{fmt_num(diff(by_seed('ispasp', w, 1), by_seed('magnitude', w, 1)), 1)} |")
    lines += ["", "## Pruning wall time", "",
              "Seconds of scoring, selection and shrinking (no refit, no fine-tuning), median over seeds "
              f"with the range; {args.threads} threads.", "", header, rule.replace("---|", "---:|")]
    for w in WIDTHS:
        lines.append(f"| {w} | " + " | ".join(fmt_num(values(m, w, 0, 0, "prune_seconds")) for m in METHODS) + " |")
    gfs_widths = sorted({r["width"] for r in rows if r["method"] == "gfs"}, reverse=True)
    if gfs_widths:
        lines += ["", "## GFS against i-SpaSP", "",
                  "Greedy forward selection (Ye et al. 2020) costs about one scoring pass per selected unit. "
                  "Speedup: GFS seconds / i-SpaSP seconds on the same seed (median, range).", "",
                  "| hidden units | GFS accuracy | i-SpaSP accuracy | GFS s | i-SpaSP s | i-SpaSP speedup |",
                  "|---:|---:|---:|---:|---:|---:|"]
        for w in gfs_widths:
            g, i = by_seed("gfs", w, 0, 0, "prune_seconds"), by_seed("ispasp", w, 0, 0, "prune_seconds")
            speed = [g[s] / max(i[s], 1e-9) for s in seeds if s in g and s in i]
            lines.append(f"| {w} | {fmt_pct(values('gfs', w, 0, 0))} | {fmt_pct(values('ispasp', w, 0, 0))} | "
                         f"{fmt_num(list(g.values()), 2)} | {fmt_num(list(i.values()), 3)} | {fmt_num(speed, 0)}× |")
    checks = []
    for m in METHODS:
        worst = min((median_spread(refit_gain(m, w))[0] for w in WIDTHS if refit_gain(m, w)), default=None)
        if worst is not None:
            checks.append(f"{m}: refit's worst median change {worst:+.1f} points")
    lines += ["", "Checks: " + "; ".join(checks), "", f"![accuracy]({os.path.basename(stem)}.png)", ""]
    with open(stem + ".md", "w") as f:
        f.write("\n".join(lines))
    plt = matplotlib_pyplot()
    if plt is None:
        return
    panels = [ft for ft in (0, 1) if any(r["finetune"] == ft for r in rows)]
    fig, axes = plt.subplots(1, len(panels), figsize=(5.5 * len(panels), 4), sharey=True, squeeze=False)
    axes = axes[0]
    for ax, ft in zip(axes, panels):
        for i, m in enumerate(METHODS):
            for refit in ((0, 1) if ft == 0 else (0,)):
                pts = [(w, median_spread(values(m, w, refit, ft))) for w in WIDTHS if values(m, w, refit, ft)]
                ax.plot([p[0] for p in pts], [p[1][0] * 100 for p in pts], marker="o", color=f"C{i}",
                        linestyle="--" if refit else "-", label=m + (" +refit" if refit else ""))
        ax.axhline(median_spread(accs)[0] * 100, color="gray", linestyle=":", label="dense")
        ax.set_xscale("log")
        ax.set_xlabel("hidden units kept")
        ax.set_title(f"{data}: {'one epoch of fine-tuning' if ft else 'no fine-tuning'} (median of {n} seeds)")
    axes[0].set_ylabel("test accuracy (%)")
    axes[0].legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(stem + ".png", dpi=110)


if __name__ == "__main__":
    main()
