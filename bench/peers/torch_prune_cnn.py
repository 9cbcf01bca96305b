#!/usr/bin/env python3
"""PyTorch peer for bench_prune's CNN jobs (prune_cnn/resnet56/...): plain PyTorch on the same
pruning job — a randomly initialised CIFAR ResNet-56 (3x32x32 input, 16/32/64 channels, option-B
shortcuts, as shrink's resnet56) or MobileNetV2 (width 1.0, CIFAR strides, bench/peers/torch_conv.py's,
as shrink's), 256 random calibration images, every block-inner group cut to half its units, group by
group, input to output, each group chosen on the network as already cut upstream (shrink's uniform
allocation). The groups are the ones shrink's trace finds, written out by hand for these two
architectures (resnet_groups, mobilenet_groups): a ResNet block's conv1 filters + bn1 + conv2's
input channels; a MobileNetV2 expansion (1x1 conv + BN, the depthwise conv + BN it feeds, the
projection's input channels), the stem's channels, a block output that joins no residual add, the
last 1x1 conv's channels (read by the classifier). Timed: listing the groups, scoring, selection
and the physical rewrite (new, smaller Conv2d, BatchNorm2d and Linear modules). Not timed: building
the model and the data.

Criteria, as shrink implements them (prune/*.cpp) from shared ALGORITHMS.md: magnitude (L1 of
the producer's filters), random, first-order Taylor (|sum a * dL/da| at the consumer's input, one
forward and backward of the whole network per group, parameters frozen), i-SpaSP (§1.2-1.3: H =
the consumer's input, B = the consumer + its BN in eval mode, 20 iterations, phi by autograd),
structured SAP (shrink's own variant: the PQ index of the producer's filter norms decides the
count). PFP has no peer yet. Like shrink's criteria, they run in eval mode without weight
gradients.

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

from torch_conv import mobilenetv2  # the same MobileNetV2 as shrink's builder (parameter count checked there)

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


class Slot:
    """One module of the network by its parent and key (attribute or Sequential index)."""

    def __init__(self, parent, key):
        self.parent, self.key = parent, str(key)

    def get(self):
        return self.parent._modules[self.key]

    def set(self, module):
        self.parent._modules[self.key] = module.eval().requires_grad_(False)


class Group:
    """One block-inner channel group, as shrink's trace finds it: the producing conv and its
    BatchNorm, depthwise conv + BatchNorm pairs the channels pass through, the consumer (a conv
    or a Linear) and the BatchNorm after the consumer (i-SpaSP's block output), if any."""

    def __init__(self, producer, bn, consumer, norm_after=None, through=()):
        self.producer, self.bn, self.consumer, self.norm_after = producer, bn, consumer, norm_after
        self.through = list(through)

    @property
    def conv1(self):  # the producer, as the ResNet code calls it
        return self.producer.get()


def resnet_groups(model):
    return [Group(Slot(b, "conv1"), Slot(b, "bn1"), Slot(b, "conv2"), Slot(b, "bn2"))
            for b in model if isinstance(b, BasicBlock)]


def mobilenet_groups(model):
    """shrink's block-inner groups of its MobileNetV2, in its order: the stem's channels, each
    expansion, the output of a block whose output joins no residual add, the last 1x1 conv."""
    f = model.features
    blocks = list(f)[1:-1]
    out = []
    first = blocks[0].conv  # t = 1: the stem's channels pass its depthwise conv to its projection
    out.append(Group(Slot(f[0], 0), Slot(f[0], 1), Slot(first, 1), Slot(first, 2), [(Slot(first[0], 0),
                                                                                      Slot(first[0], 1))]))
    for i, block in enumerate(blocks):
        c = block.conv
        if len(c) == 4:  # expansion conv_bn, depthwise conv_bn, projection conv, bn
            out.append(Group(Slot(c[0], 0), Slot(c[0], 1), Slot(c, 2), Slot(c, 3), [(Slot(c[1], 0), Slot(c[1], 1))]))
        after = blocks[i + 1] if i + 1 < len(blocks) else None
        if not block.use_residual and not (after is not None and after.use_residual):
            proj, bn = Slot(c, len(c) - 2), Slot(c, len(c) - 1)
            if after is None:
                out.append(Group(proj, bn, Slot(f[-1], 0), Slot(f[-1], 1)))
            elif len(after.conv) == 4:
                out.append(Group(proj, bn, Slot(after.conv[0], 0), Slot(after.conv[0], 1)))
    out.append(Group(Slot(f[-1], 0), Slot(f[-1], 1), Slot(model.classifier, 1)))
    return out


def sliced_conv(conv, kept, axis):
    """conv with only the `kept` output (axis 0) or input (axis 1) channels; a depthwise conv
    keeps one filter per kept channel."""
    depthwise = conv.groups > 1
    cin = len(kept) if axis == 1 or depthwise else conv.in_channels
    cout = len(kept) if axis == 0 else conv.out_channels
    new = nn.Conv2d(cin, cout, conv.kernel_size, conv.stride, conv.padding, groups=len(kept) if depthwise else 1,
                    bias=conv.bias is not None)
    with torch.no_grad():
        new.weight.copy_(conv.weight.index_select(axis, kept))
        if conv.bias is not None:
            new.bias.copy_(conv.bias if axis == 1 else conv.bias.index_select(0, kept))
    return new


def sliced_bn(bn, kept):
    new = nn.BatchNorm2d(len(kept))
    with torch.no_grad():
        for name in ("weight", "bias", "running_mean", "running_var"):
            getattr(new, name).copy_(getattr(bn, name).index_select(0, kept))
    return new


def rewrite(group, kept):
    """The physical rewrite of one group: every member sliced, new modules in place."""
    group.producer.set(sliced_conv(group.producer.get(), kept, 0))
    group.bn.set(sliced_bn(group.bn.get(), kept))
    for conv, bn in group.through:
        conv.set(sliced_conv(conv.get(), kept, 0))
        bn.set(sliced_bn(bn.get(), kept))
    consumer = group.consumer.get()
    if isinstance(consumer, nn.Linear):
        new = nn.Linear(len(kept), consumer.out_features)
        with torch.no_grad():
            new.weight.copy_(consumer.weight.index_select(1, kept))
            new.bias.copy_(consumer.bias)
        group.consumer.set(new)
    else:
        group.consumer.set(sliced_conv(consumer, kept, 1))


def top(scores, k):
    return torch.topk(scores, k).indices.sort().values


def consumer_input(model, group, x):
    """What the consumer reads, by a hook that stops the pass (as shrink's capture does)."""
    class Stop(Exception):
        pass
    seen = {}

    def hook(module, inputs):
        seen["h"] = inputs[0]
        raise Stop()
    handle = group.consumer.get().register_forward_pre_hook(hook)
    try:
        with torch.no_grad():
            model(x)
    except Stop:
        pass
    finally:
        handle.remove()
    return seen["h"]


def unit_sum(t):
    """Sums over every axis but the channels (axis 1): images and positions."""
    return t.sum([d for d in range(t.dim()) if d != 1])


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
    handle = block.consumer.get().register_forward_pre_hook(hook)
    try:
        F.cross_entropy(model(x), y).backward()
    finally:
        handle.remove()
    return top(unit_sum(seen["a"] * seen["zero"].grad).abs(), k)


def ispasp(model, block, x, y, k, iterations=20, batch=256):
    h = consumer_input(model, block, x)
    m = h.shape[1]
    a = unit_sum(h).double()
    consumer, norm = block.consumer.get(), block.norm_after.get() if block.norm_after else None
    b = lambda t: norm(consumer(t)) if norm else consumer(t)  # noqa: E731  B: consumer (+ its BN), eval mode
    support = None
    for _ in range(iterations):
        phi = torch.zeros(m, dtype=torch.float64)
        for hb in h.split(batch):
            hb = hb.detach().requires_grad_()
            u = b(hb)
            if support is not None:
                mask = torch.zeros(1, m, *[1] * (h.dim() - 2))
                mask[0, support] = 1
                with torch.no_grad():
                    u_s = b(hb * mask)
                u = u - u_s
            (0.5 * (u * u).sum()).backward()
            phi += unit_sum(hb.grad).double()
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


def prune(model, groups, x, y, criterion, sap_counts=False):
    for block in groups:
        units = block.conv1.out_channels
        k = units if sap_counts else max(1, round(KEEP * units))
        kept = criterion(model, block, x, y, k)
        if len(kept) < units:
            rewrite(block, kept)
    return model


def build_mobilenetv2():
    return mobilenetv2(3, cifar_stride=True).eval().requires_grad_(False)


MODELS = {"resnet56": (build, resnet_groups), "mobilenetv2": (build_mobilenetv2, mobilenet_groups)}
CRITERIA = {"magnitude": (magnitude, False), "random": (random_units, False), "taylor": (taylor, False),
            "ispasp": (ispasp, False), "sap": (sap, True)}  # (criterion, sap decides its counts)
JOBS = {f"prune_cnn/{model}/{method}": (model, method) for model in MODELS for method in CRITERIA}


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
        if name not in JOBS:
            raise SystemExit(f"torch_prune_cnn.py: no job '{name}' (jobs: {', '.join(JOBS)})")
        model_name, method = JOBS[name]
        builder, find_groups = MODELS[model_name]
        fn, decides = CRITERIA[method]
        slow = method in ("ispasp", "taylor")
        samples = []
        for _ in range(1 if slow else args.reps):
            torch.manual_seed(1)
            model = builder()  # not timed
            t0 = time.perf_counter()
            prune(model, find_groups(model), x, y, fn, decides)
            samples.append((time.perf_counter() - t0) * 1e3)
        widths = [g.conv1.out_channels for g in find_groups(model)]
        print(json.dumps({"name": name, "median_ms": statistics.median(samples), "widths": widths,
                          "threads": args.threads, "torch": torch.__version__,
                          "omp_wait_policy": os.environ.get("OMP_WAIT_POLICY", "default"),
                          "gomp_spincount": os.environ.get("GOMP_SPINCOUNT", "default")}), flush=True)


if __name__ == "__main__":
    main()
