#!/usr/bin/env python3
"""PyTorch (eager, CUDA) peer for bench/bench_cuda.cpp: the same workloads on the same GPU.

  train_step  ffn-10000 (784-10000-10 MLP), forward + cross-entropy + backward + SGD-momentum
              step, batch 128 and 1024
  softmax     rows 4096 x 1024 float32, softmax over the last axis      (bytes: read + write)
  add         64 Mi float32 elements, c = a + b                          (bytes: 2 reads + write)
  sgemm       4096^3 float32 matmul                                      (FLOP/s)
  encoder     torch.nn.TransformerEncoder as bench_encoder's (4 pre-LN layers, d 128, 4 heads,
              FFN 512, GELU, batch_first): training step (MSE loss, AdamW) and inference under
              inference_mode, batch 32 at 64 and 512 tokens
  attention   one layer's attention, (8, T, 8 heads x 64) -> heads split, eager
              (softmax(q k^T / 8) v) and F.scaled_dot_product_attention, T = 512 and 2048

Timing follows shared GPU.md: warm-up, CUDA events, median of several repetitions. The
training step is also timed on the wall clock with a synchronize after each step, which is
how bench_cuda times shrink (its UseRealTime figures compare with median_wall_ms). Kernel
workloads queue --launches launches between two events and report the mean per launch, as
bench_cuda does. TF32 is off (matmul and cuDNN) unless --tf32; cudnn.benchmark is on.
Prints one JSON line per workload, each naming the device; "shrink_benchmark" is the name
bench_cuda reports for the same workload. Run with the python3 that has CUDA PyTorch."""
import argparse
import json
import statistics
import time

import torch


def configure(tf32):
    torch.backends.cudnn.benchmark = True
    torch.backends.cuda.matmul.allow_tf32 = tf32
    torch.backends.cudnn.allow_tf32 = tf32
    torch.set_float32_matmul_precision("high" if tf32 else "highest")


def build_mlp(widths):
    layers = []
    for i in range(len(widths) - 1):
        layers.append(torch.nn.Linear(widths[i], widths[i + 1]))
        if i + 2 < len(widths):
            layers.append(torch.nn.ReLU())
    return torch.nn.Sequential(*layers)


def time_train_step(batch, reps, warmup):
    torch.manual_seed(0)
    dev = torch.device("cuda")
    model = build_mlp([784, 10000, 10]).to(dev)
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    x = torch.randn(batch, 784, device=dev)
    y = (torch.arange(batch, device=dev) % 10).long()
    loss_fn = torch.nn.CrossEntropyLoss()

    def step():
        opt.zero_grad(set_to_none=True)
        loss = loss_fn(model(x), y)
        loss.backward()
        opt.step()

    for _ in range(warmup):
        step()
    torch.cuda.synchronize()
    event_ms, wall_ms = [], []
    for _ in range(reps):
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        t0 = time.perf_counter()
        start.record()
        step()
        end.record()
        end.synchronize()
        wall_ms.append((time.perf_counter() - t0) * 1e3)
        event_ms.append(start.elapsed_time(end))
    return statistics.median(event_ms), statistics.median(wall_ms)


def time_launches(fn, reps, warmup, launches):
    """Median over reps of the mean time (ms) of one launch among `launches` queued ones."""
    for _ in range(warmup):
        fn()
    torch.cuda.synchronize()
    samples = []
    for _ in range(reps):
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        for _ in range(launches):
            fn()
        end.record()
        end.synchronize()
        samples.append(start.elapsed_time(end) / launches)
    return statistics.median(samples)


def time_encoder(batch, tokens, train, reps, warmup):
    """Wall-clock median (ms) of one synchronised step, as bench_cuda's encoder_cuda times shrink."""
    torch.manual_seed(0)
    dev = torch.device("cuda")
    layer = torch.nn.TransformerEncoderLayer(128, 4, 512, dropout=0.0, activation="gelu", batch_first=True,
                                             norm_first=True)
    model = torch.nn.TransformerEncoder(layer, 4, enable_nested_tensor=False).to(dev)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4)
    x = torch.randn(batch, tokens, 128, device=dev)
    if not train:
        model.eval()

    def step():
        if train:
            opt.zero_grad(set_to_none=True)
            loss = model(x).square().mean()
            loss.backward()
            opt.step()
        else:
            with torch.inference_mode():
                model(x)

    for _ in range(warmup):
        step()
    torch.cuda.synchronize()
    wall = []
    for _ in range(reps):
        t0 = time.perf_counter()
        step()
        torch.cuda.synchronize()
        wall.append((time.perf_counter() - t0) * 1e3)
    return statistics.median(wall)


def attention_workloads(args, emit):
    dev = torch.device("cuda")
    heads, d, batch = 8, 64, 8
    for tokens in (512, 2048):
        torch.manual_seed(0)
        q, k, v = (torch.randn(batch, tokens, heads * d, device=dev) for _ in range(3))

        def split(x):
            return x.view(batch, tokens, heads, d).transpose(1, 2)

        def eager():
            p = torch.softmax(split(q) @ split(k).transpose(-1, -2) / d ** 0.5, dim=-1)
            return (p @ split(v)).transpose(1, 2).reshape(batch, tokens, heads * d)

        flops = 4 * batch * heads * tokens * tokens * d
        with torch.inference_mode():
            ms = time_launches(eager, args.reps, args.warmup, args.launches)
            emit({"name": f"attention/eager/{tokens}", "median_ms": ms, "flops": flops / (ms * 1e-3),
                  "shrink_benchmark": f"attention_cuda/{batch}/{tokens}/1/manual_time"})
            sdpa = getattr(torch.nn.functional, "scaled_dot_product_attention", None)
            if sdpa is not None:
                def fused():
                    return sdpa(split(q), split(k), split(v)).transpose(1, 2).reshape(batch, tokens, heads * d)
                ms = time_launches(fused, args.reps, args.warmup, args.launches)
                emit({"name": f"attention/sdpa/{tokens}", "median_ms": ms, "flops": flops / (ms * 1e-3),
                      "shrink_benchmark": f"attention_cuda/{batch}/{tokens}/1/manual_time"})


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--reps", type=int, default=30)
    ap.add_argument("--warmup", type=int, default=10)
    ap.add_argument("--launches", type=int, default=20)
    ap.add_argument("--tf32", action="store_true")
    args = ap.parse_args()
    if not torch.cuda.is_available():
        print(json.dumps({"error": "no CUDA GPU visible to PyTorch"}))
        return
    configure(args.tf32)
    device = torch.cuda.get_device_name(0)
    common = {"device": device, "torch": torch.__version__, "cuda": torch.version.cuda,
              "tf32": args.tf32, "cudnn_benchmark": True}

    def emit(record):
        print(json.dumps({**record, **common}), flush=True)

    for batch in (128, 1024):
        ev, wall = time_train_step(batch, args.reps, args.warmup)
        emit({"name": f"train_step/ffn-10000/{batch}", "median_ms": ev, "median_wall_ms": wall,
              "shrink_benchmark": f"train_step_cuda/ffn-10000/{batch}/real_time"})

    dev = torch.device("cuda")
    x = torch.full((4096, 1024), 0.5, device=dev)
    # The output comes from PyTorch's caching allocator: no cudaMalloc inside the loop.
    ms = time_launches(lambda: torch.softmax(x, dim=-1), args.reps, args.warmup, args.launches)
    nbytes = 2 * x.numel() * 4
    emit({"name": "softmax/4096x1024", "median_ms": ms, "bytes_per_second": nbytes / (ms * 1e-3),
          "shrink_benchmark": "softmax_rows_cuda/4096/1024/manual_time"})
    del x

    n = 64 << 20
    a, b = torch.full((n,), 0.5, device=dev), torch.full((n,), 0.5, device=dev)
    c = torch.empty_like(a)
    ms = time_launches(lambda: torch.add(a, b, out=c), args.reps, args.warmup, args.launches)
    emit({"name": f"add/{n}", "median_ms": ms, "bytes_per_second": 3 * n * 4 / (ms * 1e-3),
          "shrink_benchmark": f"add_cuda/{n}/manual_time"})
    del a, b, c

    n = 4096
    a, b = torch.full((n, n), 0.5, device=dev), torch.full((n, n), 0.5, device=dev)
    c = torch.empty_like(a)
    ms = time_launches(lambda: torch.mm(a, b, out=c), args.reps, args.warmup, args.launches)
    emit({"name": f"sgemm/{n}", "median_ms": ms, "flops": 2 * n ** 3 / (ms * 1e-3),
          "shrink_benchmark": f"sgemm_cuda/{n}/manual_time"})
    del a, b, c

    for tokens in (64, 512):
        for train in (True, False):
            wall = time_encoder(32, tokens, train, args.reps, args.warmup)
            emit({"name": f"encoder/{'train_step' if train else 'inference'}/32/{tokens}", "median_wall_ms": wall,
                  "median_ms": wall, "shrink_benchmark": f"encoder_cuda/32/{tokens}/{int(train)}/real_time"})
    attention_workloads(args, emit)


if __name__ == "__main__":
    main()
