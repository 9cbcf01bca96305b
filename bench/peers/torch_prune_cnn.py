#!/usr/bin/env python3
"""PyTorch peer for bench_prune's CNN jobs (prune_cnn/resnet56/...): plain PyTorch on the same
pruning job — a randomly initialised CIFAR ResNet-56 (3x32x32 input, 16/32/64 channels, option-B
shortcuts, as shrink's resnet56), 256 random calibration images, every block-inner group
(conv1's filters, bn1, conv2's input channels) cut to half its units, block by block, input
to output, each group chosen on the network as already cut upstream (shrink's uniform
allocation). Timed: scoring, selection and the physical rewrite (new, smaller Conv2d and
BatchNorm2d modules). Not timed: building the model and the data.

Criteria, as shrink implements them (prune/*.cpp) from shared ALGORITHMS.md: magnitude (L1 of
conv1's filters), random, first-order Taylor (|sum a * dL/da| at conv2's input, one forward
and backward of the whole network per group, parameters frozen), i-SpaSP (§1.2-1.3: H = conv2's
input, B = conv2 + bn2 in eval mode, 20 iterations, phi by autograd), structured SAP (shrink's
own variant: the PQ index of conv1's filter norms decides the count). PFP and MobileNetV2 have
no peer yet. Like shrink's criteria, they run in eval mode without weight gradients.

Thread settings must be in the environment before torch is imported (shared BENCHMARKING.md).
Prints one JSON line per job, {"name", "median_ms", ...}, named as bench_prune's benchmarks.
Run with /usr/bin/python3 (Debian's python3-torch)."""
import argparse
import json
import math
import os
import statistics
import time

import torch  # noqa: E402  (env already set by the caller)
import torch.nn as nn
import torch.nn.functional as F

SAMPLES, KEEP = 256, 0.5


class BasicBlock(nn.Module):
    def __init__(self, cin, cout, stride):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.shortcut = None
        if stride != 1 or cin != cout:
            self.shortcut = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))

    def forward(self, x):
        y = self.bn2(self.conv2(F.relu(self.bn1(self.conv1(x)))))
        return F.relu(y + (x if self.shortcut is None else self.shortcut(x)))


def build(depth=56):
    n = (depth - 2) // 6
    layers, cin = [nn.Conv2d(3, 16, 3, 1, 1, bias=False), nn.BatchNorm2d(16), nn.ReLU()], 16
    for stage, cout in enumerate((16, 32, 64)):
        for i in range(n):
            layers.append(BasicBlock(cin, cout, 2 if stage > 0 and i == 0 else 1))
            cin = cout
    layers += [nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(64, 10)]
    return nn.Sequential(*layers).eval().requires_grad_(False)


def blocks(model):
    return [m for m in model if isinstance(m, BasicBlock)]


def rewrite(block, kept):
    """The physical rewrite of one block's inner channels: new conv1, bn1, conv2."""
    c1, b1, c2 = block.conv1, block.bn1, block.conv2
    new1 = nn.Conv2d(c1.in_channels, len(kept), 3, c1.stride, 1, bias=False)
    nb1 = nn.BatchNorm2d(len(kept))
    new2 = nn.Conv2d(len(kept), c2.out_channels, 3, 1, 1, bias=False)
    with torch.no_grad():
        new1.weight.copy_(c1.weight.index_select(0, kept))
        for name in ("weight", "bias", "running_mean", "running_var"):
            getattr(nb1, name).copy_(getattr(b1, name).index_select(0, kept))
        new2.weight.copy_(c2.weight.index_select(1, kept))
    block.conv1, block.bn1, block.conv2 = (new1.eval().requires_grad_(False), nb1.eval().requires_grad_(False),
                                         new2.eval().requires_grad_(False))


def top(scores, k):
    return torch.topk(scores, k).indices.sort().values


def conv2_input(model, block, x):
    """What conv2 reads, by a hook that stops the pass (as shrink's capture does)."""
    class Stop(Exception):
        pass
    seen = {}

    def hook(module, inputs):
        seen["h"] = inputs[0]
        raise Stop()
    handle = block.conv2.register_forward_pre_hook(hook)
    try:
        with torch.no_grad():
            model(x)
    except Stop:
        pass
    finally:
        handle.remove()
    return seen["h"]


def magnitude(model, block, x, y, k):
    return top(block.conv1.weight.abs().sum((1, 2, 3)), k)


def random_units(model, block, x, y, k):
    return top(torch.rand(block.conv1.out_channels, dtype=torch.float64), k)


def taylor(model, block, x, y, k):
    seen = {}

    def hook(module, inputs):
        zero = torch.zeros_like(inputs[0], requires_grad=True)
        seen["a"], seen["zero"] = inputs[0].detach(), zero
        return (inputs[0] + zero,)
    handle = block.conv2.register_forward_pre_hook(hook)
    try:
        F.cross_entropy(model(x), y).backward()
    finally:
        handle.remove()
    return top((seen["a"] * seen["zero"].grad).sum((0, 2, 3)).abs(), k)


def ispasp(model, block, x, y, k, iterations=20, batch=256):
    h = conv2_input(model, block, x)
    m = h.shape[1]
    a = h.sum((0, 2, 3)).double()
    b = lambda t: block.bn2(block.conv2(t))  # noqa: E731  B: conv2 + bn2, eval mode
    support = None
    for _ in range(iterations):
        phi = torch.zeros(m, dtype=torch.float64)
        for hb in h.split(batch):
            hb = hb.detach().requires_grad_()
            u = b(hb)
            if support is not None:
                mask = torch.zeros(1, m, 1, 1)
                mask[0, support] = 1
                with torch.no_grad():
                    u_s = b(hb * mask)
                u = u - u_s
            (0.5 * (u * u).sum()).backward()
            phi += hb.grad.sum((0, 2, 3)).double()
        merged = torch.full((m,), -math.inf, dtype=torch.float64)
        omega = torch.topk(phi, min(2 * k, m)).indices
        merged[omega] = a[omega]
        if support is not None:
            merged[support] = a[support]
        support = top(merged, k)
    return support


def sap(model, block, x, y, k, p=0.5, q=1.0, eta_r=0.0, gamma=1.0, beta=0.9):
    norms = block.conv1.weight.double().flatten(1).norm(dim=1)
    nz = norms[norms != 0]
    a = nz / nz.max()
    d = nz.numel()
    index = max(0.0, float(1 - (a.pow(p).mean() ** (1 / p)) / (a.pow(q).mean() ** (1 / q))))
    r = math.ceil(d * (1 + eta_r) ** (-q / (q - p)) * (1 - index) ** (q * p / (q - p)))
    prune = math.floor(d * max(0.0, min(gamma * (1 - r / d), beta)))
    return top(norms, max(1, norms.numel() - prune))


def prune(model, x, y, criterion, sap_counts=False):
    for block in blocks(model):
        units = block.conv1.out_channels
        k = units if sap_counts else max(1, round(KEEP * units))
        kept = criterion(model, block, x, y, k)
        if len(kept) < units:
            rewrite(block, kept)
    return model


JOBS = {  # bench_prune's names -> (criterion, sap decides its counts)
    "prune_cnn/resnet56/magnitude": (magnitude, False),
    "prune_cnn/resnet56/random": (random_units, False),
    "prune_cnn/resnet56/taylor": (taylor, False),
    "prune_cnn/resnet56/ispasp": (ispasp, False),
    "prune_cnn/resnet56/sap": (sap, True),
}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--jobs", default=",".join(JOBS))
    ap.add_argument("--list-jobs", action="store_true", help="print the job names, one per line, and exit")
    args = ap.parse_args()
    if args.list_jobs:
        print("\n".join(JOBS))
        return
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    x = torch.randn(SAMPLES, 3, 32, 32)
    y = torch.randint(0, 10, (SAMPLES,))
    for name in args.jobs.split(","):
        fn, decides = JOBS[name]
        slow = "ispasp" in name or "taylor" in name
        samples = []
        for _ in range(1 if slow else args.reps):
            torch.manual_seed(1)
            model = build()  # not timed
            t0 = time.perf_counter()
            prune(model, x, y, fn, decides)
            samples.append((time.perf_counter() - t0) * 1e3)
        widths = [b.conv1.out_channels for b in blocks(model)]
        print(json.dumps({"name": name, "median_ms": statistics.median(samples), "widths": widths,
                          "threads": args.threads, "torch": torch.__version__,
                          "omp_wait_policy": os.environ.get("OMP_WAIT_POLICY", "default"),
                          "gomp_spincount": os.environ.get("GOMP_SPINCOUNT", "default")}), flush=True)


if __name__ == "__main__":
    main()
