#!/usr/bin/env python3
"""PyTorch peer for bench_encoder: the same encoder (torch.nn.TransformerEncoder, 4 pre-LN
layers, d_model 128, 4 heads, FFN 512, GELU, dropout 0, batch_first) on the same (32, 64, 128)
input: a training step (forward, mean-square loss, backward, AdamW) and an inference forward
under torch.inference_mode (PyTorch's fast path where it applies).

Thread settings must be in the environment before torch is imported (shared BENCHMARKING.md):
the caller sets OMP_NUM_THREADS and the OpenMP wait policy. Prints one JSON line per workload:
{"name", "median_ms", ...}. Run with /usr/bin/python3 (Debian's python3-torch)."""
import argparse
import json
import os
import statistics
import time

import torch  # noqa: E402  (env already set by the caller)


def build():
    torch.manual_seed(0)
    layer = torch.nn.TransformerEncoderLayer(128, 4, 512, dropout=0.0, activation="gelu", batch_first=True,
                                             norm_first=True)
    return torch.nn.TransformerEncoder(layer, 4, enable_nested_tensor=False)


def median_ms(fn, reps, warmup):
    for _ in range(warmup):
        fn()
    samples = []
    for _ in range(reps):
        t0 = time.perf_counter()
        fn()
        samples.append((time.perf_counter() - t0) * 1e3)
    return statistics.median(samples)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--tokens", type=int, default=64)
    ap.add_argument("--reps", type=int, default=30)
    ap.add_argument("--warmup", type=int, default=5)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    x = torch.randn(args.batch, args.tokens, 128)
    model = build()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4)

    def step():
        opt.zero_grad(set_to_none=True)
        loss = model(x).square().mean()
        loss.backward()
        opt.step()

    infer_model = build().eval()

    def infer():
        with torch.inference_mode():
            infer_model(x)

    common = {"threads": args.threads, "torch": torch.__version__,
              "omp_wait_policy": os.environ.get("OMP_WAIT_POLICY", "default"),
              "gomp_spincount": os.environ.get("GOMP_SPINCOUNT", "default")}
    shape = f"{args.batch}/{args.tokens}"
    print(json.dumps({"name": f"encoder_train_step/{shape}", "median_ms": median_ms(step, args.reps, args.warmup),
                      **common}), flush=True)
    print(json.dumps({"name": f"encoder_inference/{shape}", "median_ms": median_ms(infer, args.reps, args.warmup),
                      **common}), flush=True)


if __name__ == "__main__":
    main()
