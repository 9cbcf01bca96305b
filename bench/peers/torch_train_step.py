#!/usr/bin/env python3
"""PyTorch peer for bench_train_step: times one training step (forward, cross-entropy,
backward, SGD-momentum step) of the same MLPs at the same batch size and thread count.

Thread settings must be in the environment before torch is imported (see
shared BENCHMARKING.md): the caller sets OMP_NUM_THREADS, OPENBLAS_NUM_THREADS and the
OpenMP wait policy. Prints one JSON line per workload: {"name", "median_ms", ...}.
Run with /usr/bin/python3 (Debian's python3-torch)."""
import argparse
import json
import os
import statistics
import time

import torch  # noqa: E402  (env already set by the caller)

MODELS = {
    "lenet-300-100": [784, 300, 100, 10],
    "ffn-10000": [784, 10000, 10],
}


def build(widths):
    layers = []
    for i in range(len(widths) - 1):
        layers.append(torch.nn.Linear(widths[i], widths[i + 1]))
        if i + 2 < len(widths):
            layers.append(torch.nn.ReLU())
    return torch.nn.Sequential(*layers)


def time_step(widths, batch, reps, warmup):
    torch.manual_seed(0)
    model = build(widths)
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    x = torch.randn(batch, widths[0])
    y = torch.randint(0, widths[-1], (batch,))
    loss_fn = torch.nn.CrossEntropyLoss()

    def step():
        opt.zero_grad(set_to_none=True)
        loss = loss_fn(model(x), y)
        loss.backward()
        opt.step()

    for _ in range(warmup):
        step()
    samples = []
    for _ in range(reps):
        t0 = time.perf_counter()
        step()
        samples.append((time.perf_counter() - t0) * 1e3)
    return statistics.median(samples)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--reps", type=int, default=50)
    ap.add_argument("--warmup", type=int, default=10)
    ap.add_argument("--models", default=",".join(MODELS))
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    for name in args.models.split(","):
        ms = time_step(MODELS[name], args.batch, args.reps, args.warmup)
        print(json.dumps({"name": f"train_step/{name}/{args.batch}", "median_ms": ms,
                          "threads": args.threads, "torch": torch.__version__,
                          "omp_wait_policy": os.environ.get("OMP_WAIT_POLICY", "default"),
                          "gomp_spincount": os.environ.get("GOMP_SPINCOUNT", "default")}),
              flush=True)


if __name__ == "__main__":
    main()
