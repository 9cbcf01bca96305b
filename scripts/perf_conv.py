"""The conv section of the performance report (scripts/perf_report.py --only conv): CNN training
steps and inference (bench_conv against bench/peers/torch_conv.py), the conv kernels alone as a
fraction of the FP32 FMA peak measured in the same run (and against PyTorch's oneDNN kernels on
the same shapes), and the GEMMs under convolutions (bench_gemm's BM_sgemm_conv against
OpenBLAS's cblas_sgemm on the same calls). Every figure of the section comes from one run of this module."""
import os
import subprocess
import sys

from perf_common import best_google_benchmark, best_peer, run_google_benchmark_entries, run_peer, torch_label

# The targets (peer time / shrink time): PyTorch's depthwise and small convs are weak
# spots, its oneDNN 3x3 convs are not.
MODEL_TARGETS = {"train_step/lenet5/128": 1.0, "train_step/mobilenetv2/32": 1.0,
                 "train_step/resnet20/64": 0.8, "inference/resnet18/16": 0.8}
GEMM_TARGET = 0.95
MODEL_FILTER = "^(train_step|inference)/"
KERNEL_FILTER = "^conv_"
# <pass><suffix>/<layer>: a kernel that conv2d does not choose for that call, timed beside the
# one it chooses (<pass>/<layer>, whose benchmark label names it): conv_fwd_direct,
# conv_bwd_weight_direct, conv_fwd_winograd (the batched Winograd), conv_fwd_winograd_channels_last,
# conv_fwd_depthwise_blocked (8-channel blocks on a depthwise layer given to the row loops),
# conv_bwd_input_depthwise_rows and conv_bwd_weight_depthwise_rows (the row loops on a depthwise layer).
ALTERNATIVES = {"_winograd_channels_last": "winograd_channels_last", "_winograd": "winograd", "_direct": "direct",
                "_depthwise_blocked": "depthwise_blocked", "_depthwise_rows": "depthwise"}
# The columns of the measured-choice tables: dense convolutions, then depthwise ones.
DENSE_COLUMNS = [("direct", "direct"), ("direct_pixel_lanes", "direct, pixel lanes"), ("winograd", "batched Winograd"),
                 ("winograd_channels_last", "channels-last Winograd")]
DEPTHWISE_COLUMNS = [("depthwise", "row loops"), ("depthwise_3x3", "3×3 rolling rows"),
                     ("depthwise_blocked", "8-channel blocks")]


def gb_args(args):
    return [f"--benchmark_min_time={args.min_time}"] if args.min_time else []


def measure_models(binary, t, args):
    ours = best_google_benchmark(binary, t, args.repetitions, MODEL_FILTER, gb_args(args))
    peer = best_peer("torch_conv.py", t, ["--reps", str(max(3, 2 * args.repetitions)),
                                         "--models", ",".join(ours), "--kernels", ""])
    rows = []
    for name, e in ours.items():
        if name not in peer:
            sys.exit(f"perf_conv: bench/peers/torch_conv.py has no workload '{name}' (bench_conv's "
                     "workloads and the peer's must have the same names)")
        p = peer[name]
        if int(e["params"]) != p["params"]:
            sys.exit(f"perf_conv: {name}: shrink's model has {int(e['params'])} parameters, the "
                     f"PyTorch peer's {p['params']}: they are not the same model")
        rows.append({"workload": name, "shrink_ms": e["ms"], "peer": torch_label(p), "peer_ms": p["median_ms"],
                     "threads": t, "params": p["params"], "target": MODEL_TARGETS.get(name)})
    return rows


def alternative_of(name):
    """The kernel a <pass><suffix>/<layer> row times, or None for conv2d's own row."""
    kernel = name.split("/")[0]
    for suffix, algo in ALTERNATIVES.items():
        if kernel.endswith(suffix):
            return suffix, algo
    return None


def measure_kernels(binary, t, args):
    ours = best_google_benchmark(binary, t, args.repetitions, KERNEL_FILTER, gb_args(args))
    peer = best_peer("torch_conv.py", t, ["--models", "none", "--kernels",
                                          ",".join(n for n in ours if not alternative_of(n))])
    rows, choices = [], {}
    for name, e in ours.items():
        kernel, layer, shape = name.split("/", 2)
        alt = alternative_of(name)
        if alt:  # the measured alternatives behind conv2d's choice, one row per call
            suffix, algo = alt
            own = kernel[:-len(suffix)]
            chosen = ours[own + "/" + layer + "/" + shape]
            row = choices.setdefault((own, layer, shape), {"pass": own, "choice": True, "layer": layer,
                                                           "shape": shape, "threads": t,
                                                           "chosen": chosen.get("label", "?"),
                                                           "ms": {chosen.get("label", "?"): chosen["ms"]}})
            row["ms"][algo] = e["ms"]
            continue
        p = peer[name]
        rows.append({"pass": kernel, "layer": layer, "shape": shape, "shrink_ms": e["ms"],
                     "shrink_gflops": e["GFLOPS"], "peer": torch_label(p), "peer_ms": p["median_ms"],
                     "peer_gflops": p["gflops"], "algorithm": e.get("label"), "threads": t})
    return rows + list(choices.values())


def gemm_entries(binary, t, args, bench_filter):
    """One thread: a plain run. More: the best of the OpenMP wait settings, as for the models (on
    a busy machine a spinning pool can make every fork wait for its second thread)."""
    if t == 1:
        return run_google_benchmark_entries(binary, t, args.repetitions, bench_filter, extra_args=gb_args(args))
    return best_google_benchmark(binary, t, args.repetitions, bench_filter, gb_args(args))


def openblas_peer(binary, t, args, names):
    """OpenBLAS's cblas_sgemm on the same calls: bench_gemm's BM_openblas_conv benchmarks, in a
    process of their own, or numpy's matmul (same library, plus its per-call overhead) when
    bench_gemm could not open libopenblas.so.0. name (without BM_sgemm_) -> (label, ms, GFLOP/s)."""
    listed = subprocess.run([binary, "--benchmark_list_tests", "--benchmark_filter=^BM_openblas_conv/"],
                            capture_output=True, text=True).stdout
    if listed.strip():
        entries = gemm_entries(binary, t, args, "^BM_openblas_conv/")
        return {n.replace("BM_openblas_", "", 1): ("OpenBLAS (cblas_sgemm)", e["ms"], e["GFLOPS"])
                for n, e in entries.items()}
    peer = run_peer("gemm_numpy.py", t, args=["--names", ",".join(f"sgemm_{n}" for n in names)])
    return {p["name"].replace("sgemm_", "", 1): ("OpenBLAS (numpy)", p["median_ms"], p["gflops"]) for p in peer}


def measure_gemms(build, threads, args):
    """The conv GEMMs at every thread count: forward and backward-input run one serial GEMM per
    thread (1 thread is their figure), backward-weight one threaded GEMM."""
    binary = os.path.join(build, "bench_gemm")
    rows = []
    for t in threads:
        ours = gemm_entries(binary, t, args, "^BM_sgemm_conv/")
        names = [n.replace("BM_sgemm_", "", 1) for n in ours]
        peer = openblas_peer(binary, t, args, names)
        for name, e in ours.items():
            label, peer_ms, peer_gflops = peer[name.replace("BM_sgemm_", "", 1)]
            rows.append({"workload": name.split("/", 1)[1], "shrink_ms": e["ms"], "peer": label,
                         "peer_ms": peer_ms, "shrink_gflops": e["GFLOPS"], "peer_gflops": peer_gflops,
                         "threads": t})
    return rows


def measure_chains(build, threads, args):
    """bench_conv_chains at every thread count: each chain of blocks in one call beside the conv2d
    calls it replaces (<chain>_apart/<stage>/<shape>). Ours against ours, so under the default
    OpenMP wait setting only."""
    binary = os.path.join(build, "bench_conv_chains")
    rows = []
    for t in threads:
        ours = run_google_benchmark_entries(binary, t, args.repetitions, "^(residual|inverted_residual)_chain",
                                            extra_args=gb_args(args))
        for name, e in ours.items():
            kernel, stage, shape = name.split("/", 2)
            if kernel.endswith("_apart"):
                continue
            apart = ours[kernel + "_apart/" + stage + "/" + shape]
            rows.append({"op": kernel, "stage": stage, "shape": shape, "threads": t, "chain_ms": e["ms"],
                         "apart_ms": apart["ms"], "ran": e.get("label", "?")})
    return rows


def measure_conv(args):
    threads = [int(x) for x in args.threads.split(",")]
    t = max(threads)
    binary = os.path.join(args.build, "bench_conv")
    peak = run_google_benchmark_entries(binary, t, args.repetitions, "^peak/fma/")["peak/fma"]
    return {"threads": t, "peak_gflops": peak["GFLOPS"],
            "models": measure_models(binary, t, args), "kernels": measure_kernels(binary, t, args),
            "gemm": measure_gemms(args.build, threads, args), "chains": measure_chains(args.build, threads, args)}


def ratio_cell(ratio, target):
    if target is None:
        return f"{ratio:.2f}×", ""
    return f"{ratio:.2f}×", f"≥ {target:.2f}× {'met' if ratio >= target else '**not met**'}"


def choice_table(kernels, columns):
    """The measured-choice rows whose kernels are among `columns` (algorithm, heading): each
    kernel's time on the same call, bold for the one conv2d runs."""
    names = {algo for algo, _ in columns}
    lines = ["| layer | shape | pass | " + " | ".join(f"{h} (ms)" for _, h in columns) + " |",
             "|---|---|---|" + "---:|" * len(columns)]
    for r in kernels:
        if not r.get("choice") or not (set(r["ms"]) & names) or not set(r["ms"]) <= names:
            continue
        cells = []
        for algo, _ in columns:
            ms = r["ms"].get(algo)
            cells.append("—" if ms is None else (f"**{ms:.3f}**" if algo == r["chosen"] else f"{ms:.3f}"))
        lines.append(f"| {r['layer']} | {r['shape']} | {r['pass']} | {' | '.join(cells)} |")
    return lines


def render_conv(conv):
    if not conv:
        return ["## Convolutional networks (CPU)", "", "Not measured yet: run `scripts/perf_report.py --only conv`.", ""]
    date, device, t, peak = conv["date"], conv["device"], conv["threads"], conv["peak_gflops"]
    lines = ["## Convolutional networks (CPU)", "",
             f"`bench/bench_conv.cpp` against `bench/peers/torch_conv.py` (the same models written as "
             f"torch modules, parameter counts checked equal), medians of {conv['repetitions']} repetitions, "
             f"{t} threads, {device}, {date}. Both sides run under each OpenMP wait setting and keep their "
             "best median. Training step: forward (train mode), cross-entropy, backward, SGD with momentum; "
             "inference: eval mode without gradients. `resnet18` is the small-input stem (3×3/1, no max-pool) "
             "on 3×64×64; `resnet18-imagenet-stem` is torchvision's 7×7/2 stem with max-pool on the same input.",
             "", "| workload | params | shrink (ms) | peer | peer (ms) | ratio | target |",
             "|---|---:|---:|---|---:|---:|---|"]
    for r in conv["models"]:
        ratio, target = ratio_cell(r["peer_ms"] / r["shrink_ms"], r["target"])
        lines.append(f"| {r['workload']} | {r['params']:,} | {r['shrink_ms']:.2f} | {r['peer']} | "
                     f"{r['peer_ms']:.2f} | {ratio} | {target} |")
    lines += ["", "### Conv kernels alone", "",
              f"One kernel call on the layer shapes of those models (n×c×h×w→c_out, kernel k, stride s, "
              f"padding p, groups g); GFLOP/s = 2 · multiply-adds / time. FP32 FMA peak measured in the same "
              f"run (`peak/fma`, independent 8-wide FMA chains on every thread): **{peak:.1f} GFLOP/s on "
              f"{t} threads**. kernel: the one conv2d runs for the call (`direct`, `winograd` (batched), "
              f"`winograd_channels_last`, `depthwise` (row loops), `depthwise_blocked` (8 channels per vector), "
              f"`depthwise_3x3` (3×3 stride 1 on wide rows, rolling row sums), `direct_pixel_lanes` (backward-"
              f"weight with output pixels as the vector lanes, for few output channels), "
              f"`im2col`). PyTorch: `F.conv2d` and "
              f"`aten.convolution_backward` (oneDNN) on the same shapes.",
              "", "| layer | shape | pass | kernel | shrink (ms) | shrink GFLOP/s | % of peak | PyTorch (ms) | "
              "PyTorch GFLOP/s | ratio |", "|---|---|---|---|---:|---:|---:|---:|---:|---:|"]
    for r in conv["kernels"]:
        if r.get("choice") or r.get("direct"):  # "direct": a pair row of a report written before 2026-12-05
            continue
        lines.append(f"| {r['layer']} | {r['shape']} | {r['pass']} | {r.get('algorithm') or ''} | {r['shrink_ms']:.3f} | "
                     f"{r['shrink_gflops']:.1f} | {100 * r['shrink_gflops'] / peak:.0f}% | {r['peer_ms']:.3f} | "
                     f"{r['peer_gflops']:.1f} | {r['peer_ms'] / r['shrink_ms']:.2f}× |")
    lines += ["", "Float 3×3 stride-1 layers run Winograd F(4×4, 3×3) where it pays (36 products per 4×4 output "
              "tile where the direct sum spends 144), forward and, through the flipped kernel, backward-input: "
              "the channels-last kernel (`kernels/cpu/conv_winograd_channels_last.h`, channels as the vector lanes) on "
              "maps up to 16×16 and 8-output layers, the batched one (`kernels/cpu/conv_winograd.h`, tiles as the "
              "lanes) on wider layers of larger maps; backward-weight from 32 channels each way. Backward-weight of "
              "layers with few output channels runs `kernels/cpu/conv_weight_pixels.h` (output pixels as the lanes) "
              "where 16-channel panels would be part empty. Their GFLOP/s count the direct "
              "sum's multiply-adds, so they can pass the peak. The measured choice: each kernel on the same call "
              "(bold: the one conv2d runs):", ""]
    lines += choice_table(conv["kernels"], DENSE_COLUMNS)
    lines += ["", "Depthwise layers: the forward on 8-channel blocks where output rows are short, rolling row sums "
              "for 3×3 stride 1 on wider rows; backward-input at stride 1 is the forward on the flipped kernel (so "
              "its kernel is that forward's), else, like every backward-weight, 8-channel blocks "
              "(`kernels/cpu/conv_depthwise_blocked.h`); the row loops (`kernels/cpu/conv_depthwise_rows.h`) are the "
              "alternative measured beside them:", ""]
    lines += choice_table(conv["kernels"], DEPTHWISE_COLUMNS)
    if conv.get("chains"):
        lines += ["", "### Blocks in one call (inference)", "",
                  "`bench/bench_conv_chains.cpp`: consecutive blocks of a folded model in one kernel call, against "
                  "the conv2d calls with epilogues that the same blocks make apart, batch 64, medians under the default "
                  "OpenMP wait setting. "
                  "`conv2d_residual_chain`: residual blocks with identity shortcuts, through the channels-last "
                  "Winograd with the maps between convolutions kept in its padded layout "
                  "(`kernels/cpu/conv_winograd_channels_last.h`). `inverted_residual_chain`: MobileNetV2 blocks "
                  "(expand, depthwise, project) channels-last one image at a time "
                  "(`kernels/cpu/inverted_residual_channels_last.h`). Stages of the dense models and of the same "
                  "models pruned to keep 0.25 of every group (`--prune-residual --round-to 8`). ran: `chained` (one "
                  "fused pass) or `apart` (the call fell back to its blocks).", "",
                  "| op | stage | shape | threads | one call (ms) | conv2d calls (ms) | speedup | ran |",
                  "|---|---|---|---:|---:|---:|---:|---|"]
        for r in conv["chains"]:
            lines.append(f"| {r['op']} | {r['stage']} | {r['shape']} | {r['threads']} | {r['chain_ms']:.3f} | "
                         f"{r['apart_ms']:.3f} | {r['apart_ms'] / r['chain_ms']:.2f}× | {r['ran']} |")
    peers = sorted({r["peer"] for r in conv["gemm"]})
    lines += ["", "### GEMMs under convolutions", "",
              "The sgemm calls of the im2col lowering in `kernels/cpu/conv.cpp` (row-major, per block of "
              "images: forward `NN` m = c_out, n = images·out_h·out_w, k = c_in·kh·kw; backward-input `TN` m = K, "
              "k = c_out; backward-weight `NT` m = c_out, n = K, k = images·out_h·out_w), against OpenBLAS's "
              "`cblas_sgemm` on the same calls (the peer column says when it was numpy's matmul instead, which adds "
              "a few microseconds per call to the peer). That lowering now serves float64 and float backward-input "
              "at stride > 1 only: every other float convolution runs Winograd or the direct kernels of "
              "`kernels/cpu/conv_direct.h` (the kernel tables above), which read the padded image from the "
              "micro-kernel instead of calling sgemm. Forward and backward-input run one serial GEMM per thread, "
              f"so their 1-thread rows are the ones that matter; backward-weight runs one threaded GEMM. Target ≥ "
              f"{GEMM_TARGET:.2f}×.", "",
              f"Peer: {', '.join(peers)}.", "",
              "| layer.pass / op / m×n×k | shrink (ms) | shrink GFLOP/s | OpenBLAS (ms) | OpenBLAS GFLOP/s | "
              "ratio | target | threads |", "|---|---:|---:|---:|---:|---:|---|---:|"]
    for r in conv["gemm"]:
        ratio, target = ratio_cell(r["peer_ms"] / r["shrink_ms"], GEMM_TARGET)
        lines.append(f"| {r['workload']} | {r['shrink_ms']:.4f} | {r['shrink_gflops']:.1f} | {r['peer_ms']:.4f} | "
                     f"{r['peer_gflops']:.1f} | {ratio} | {target} | {r['threads']} |")
    return lines + [""]
