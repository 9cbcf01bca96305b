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
count), PFP (§2: every group's sensitivities from one pass of the dense network over |S| of the
images, the global-epsilon search for the widths with the parameters of the uniform half-width
cut, PFPNet's top-k; the cost model fitted by probing as shrink's; no BN-shift fold). Like shrink's criteria, they run in eval mode without weight
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


# ---- PFP (ALGORITHMS.md §2, shrink's prune/pfp*.cpp): sensitivities of every group from one
# pass of the dense network, the global-epsilon search for the widths meeting the parameter
# budget, PFPNet's top-k, then the rewrite. ----
PFP_DELTA, PFP_C = 1e-12, 3.0
LOG_EPS_LO, LOG_EPS_HI = -690.0, 345.0


def pfp_sample_size(model):
    """|S| = ceil(3 log(8 eta* sum eta / delta)), eta = per-sample outputs of every Linear and ungrouped conv."""
    etas, hooks = [], []
    for m in model.modules():
        if isinstance(m, nn.Linear) or (isinstance(m, nn.Conv2d) and m.groups == 1):
            hooks.append(m.register_forward_hook(lambda mod, i, o: etas.append(o[0].numel())))
    with torch.no_grad():
        model(torch.zeros(1, 3, 32, 32))
    for h in hooks:
        h.remove()
    return math.ceil(3.0 * (math.log(8.0 * max(etas) * sum(etas)) - math.log(PFP_DELTA)))


def pfp_sensitivity(w, a):
    """s_j = max over rows and outputs of max(W+ a / z+, W- a / z-) (§2.1); w (out, in), a (rows, in)."""
    if (a < 0).any():
        a = torch.cat([a.clamp(min=0), (-a).clamp(min=0)])
    wp, wn = w.clamp(min=0), w.clamp(max=0)
    eps = torch.finfo(torch.float32).eps
    s = torch.zeros(w.shape[1])
    # (rows, out, in) products in chunks of ~8 MB: larger temporaries are fresh pages every time
    for ab in a.split(max(1, 2 ** 21 // w.numel())):
        zp, zn = ab @ wp.t(), ab @ wn.t()
        up = torch.where(zp.abs() > eps, zp.reciprocal(), torch.zeros_like(zp))
        un = torch.where(zn.abs() > eps, zn.reciprocal(), torch.zeros_like(zn))
        h = torch.maximum((up[:, :, None] * wp[None]).amax(1), (un[:, :, None] * wn[None]).amax(1))
        s = torch.maximum(s, (ab * h).amax(0))
    return s


def pfp_layer(model, group, a):
    """(sensitivity per unit, alpha_l) of one group from its consumer's input `a`."""
    consumer = group.consumer.get()
    units = group.conv1.out_channels
    if isinstance(consumer, nn.Conv2d):
        patches = F.unfold(a, consumer.kernel_size, consumer.dilation, consumer.padding, consumer.stride)
        positions = patches.shape[2]
        s = pfp_sensitivity(consumer.weight.flatten(1), patches.transpose(1, 2).reshape(-1, patches.shape[1]))
        kappa = consumer.kernel_size[0] * consumer.kernel_size[1]
    else:
        positions, kappa = 1, 1
        s = pfp_sensitivity(consumer.weight, a.reshape(a.shape[0], -1))
    s = s.view(units, -1).amax(1).double()
    alpha = 2.0 * PFP_C * (math.log(8.0 * (positions + 1.0) * kappa) - math.log(PFP_DELTA))
    return s, alpha


def params_at(model, groups, widths):
    """The model's parameter count with each group at widths[g] units (the others as they are)."""
    out_w, in_w = {}, {}
    for g, w in zip(groups, widths):
        out_w[id(g.producer.get())] = out_w[id(g.bn.get())] = w
        for conv, bn in g.through:
            out_w[id(conv.get())] = in_w[id(conv.get())] = out_w[id(bn.get())] = w
        in_w[id(g.consumer.get())] = w
    total = 0
    for m in model.modules():
        if isinstance(m, nn.Conv2d):
            o, i = out_w.get(id(m), m.out_channels), in_w.get(id(m), m.in_channels)
            per_group = 1 if m.groups > 1 else i  # depthwise: one input channel per filter
            total += o * per_group * m.kernel_size[0] * m.kernel_size[1] + (o if m.bias is not None else 0)
        elif isinstance(m, nn.BatchNorm2d):
            total += 2 * out_w.get(id(m), m.num_features)
        elif isinstance(m, nn.Linear):
            i = in_w.get(id(m), m.in_features)
            total += m.out_features * i + (m.out_features if m.bias is not None else 0)
    return total


def cost_model(model, groups):
    """cost(w) = C + A.(w-1) + sum_{g<h} B_gh (w_g-1)(w_h-1), fitted by probing widths in {1, 2}, as shrink's."""
    n = len(groups)
    ones = [1] * n
    constant = params_at(model, groups, ones)
    linear = torch.zeros(n, dtype=torch.float64)
    for g in range(n):
        linear[g] = params_at(model, groups, ones[:g] + [2] + ones[g + 1:]) - constant
    pairs = torch.zeros(n, n, dtype=torch.float64)
    for g in range(n):
        for h in range(g + 1, n):
            w = list(ones)
            w[g] = w[h] = 2
            pairs[g, h] = params_at(model, groups, w) - constant - linear[g] - linear[h]
    return lambda widths: float(constant + linear @ (widths - 1) + (widths - 1) @ pairs @ (widths - 1))


def width_at(layer, eps):
    log1m_p, positive, total, alpha, units = layer
    # m_l = ceil(3 (6 + 2 eps) alpha_l S_l / eps^2): infinite where eps^2 underflows, as in C++
    m = 3.0 * (6.0 + 2.0 * eps) * alpha * total / (eps * eps) if total > 0 and eps * eps > 0 else math.inf
    if total <= 0:
        e = 0.0
    elif not math.isfinite(m) or m > 1e300:
        e = float(positive)
    else:
        e = float(-torch.expm1(float(math.ceil(m)) * log1m_p).sum())
    return int(min(max(math.ceil(e - 1e-9), 1), units))


def widths_at(layers, log_eps):
    return torch.tensor([width_at(layer, math.exp(log_eps)) for layer in layers], dtype=torch.float64)


def next_channel_log_eps(layer, w):
    lo, hi = LOG_EPS_LO, LOG_EPS_HI
    if w >= layer[4] or width_at(layer, math.exp(lo)) <= w:
        return -math.inf
    if width_at(layer, math.exp(hi)) > w:
        return hi
    while hi - lo > 1e-12 * max(1.0, abs(hi)):
        mid = 0.5 * (lo + hi)
        if width_at(layer, math.exp(mid)) > w:
            lo = mid
        else:
            hi = mid
    return lo


def pfp_search(layers, cost, budget):
    """Bisection on log eps for the widest widths within budget, then the fill (shrink's search())."""
    lo, hi = LOG_EPS_LO, LOG_EPS_HI
    if cost(widths_at(layers, lo)) <= budget:
        hi = lo
    elif cost(widths_at(layers, hi)) > budget:
        lo = hi
    else:
        while hi - lo > 1e-12 * max(1.0, abs(hi)):
            mid = 0.5 * (lo + hi)
            if cost(widths_at(layers, mid)) > budget:
                lo = mid
            else:
                hi = mid
    widths = widths_at(layers, hi)
    achieved = cost(widths)
    nxt = [next_channel_log_eps(layer, int(w)) for layer, w in zip(layers, widths)]
    while True:
        pick, pick_cost = None, 0.0
        for g, layer in enumerate(layers):
            if widths[g] >= layer[4]:
                continue
            widths[g] += 1
            c = cost(widths)
            widths[g] -= 1
            if c > budget or (pick is not None and nxt[g] <= nxt[pick]):
                continue
            pick, pick_cost = g, c
        if pick is None:
            return widths, achieved
        achieved = pick_cost
        widths[pick] += 1
        nxt[pick] = next_channel_log_eps(layers[pick], int(widths[pick]))


def pfp(model, groups, x):
    """PFPNet on every group at once: half the parameters of the uniform half-width allocation's."""
    samples = min(pfp_sample_size(model), x.shape[0])
    seen, hooks = {}, []
    for g in groups:
        hooks.append(g.consumer.get().register_forward_pre_hook(
            lambda module, inputs, key=id(g): seen.__setitem__(key, inputs[0])))
    with torch.no_grad():
        model(x[:samples])
    for h in hooks:
        h.remove()
    layers, scores = [], []
    for g in groups:
        s, alpha = pfp_layer(model, g, seen[id(g)])
        total = float(s.sum())
        p = s / total if total > 0 else torch.full_like(s, 1.0 / len(s))
        layers.append((torch.log1p(-p), int((p > 0).sum()), total, alpha, len(s)))
        scores.append(s)
    cost = cost_model(model, groups)
    dense = torch.tensor([float(g.conv1.out_channels) for g in groups], dtype=torch.float64)
    uniform = torch.tensor([float(max(1, round(KEEP * g.conv1.out_channels))) for g in groups], dtype=torch.float64)
    reference, target = cost(dense), cost(uniform) / cost(dense)
    nominal, best, best_error = target, None, math.inf
    for _ in range(20):  # the outer loop on the nominal ratio
        widths, achieved = pfp_search(layers, cost, nominal * reference)
        error = abs(achieved / reference - target)
        if error < best_error:
            best, best_error = widths, error
        if error <= 0.005 * target:
            break
        nxt = nominal * target / (achieved / reference)
        if abs(nxt - nominal) <= 1e-12 * nominal:
            break
        nominal = nxt
    for g, s, w in zip(groups, scores, best):
        if int(w) < len(s):
            rewrite(g, top(s, int(w)))
    return model


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
WHOLE_MODEL = {"pfp": pfp}  # methods that score and allocate every group at once
JOBS = {f"prune_cnn/{model}/{method}": (model, method) for model in MODELS for method in [*CRITERIA, *WHOLE_MODEL]}


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
        slow = method in ("ispasp", "taylor", "pfp")
        samples = []
        for _ in range(1 if slow else args.reps):
            torch.manual_seed(1)
            model = builder()  # not timed
            t0 = time.perf_counter()
            if method in WHOLE_MODEL:
                WHOLE_MODEL[method](model, find_groups(model), x)
            else:
                prune(model, find_groups(model), x, y, *CRITERIA[method])
            samples.append((time.perf_counter() - t0) * 1e3)
        widths = [g.conv1.out_channels for g in find_groups(model)]
        print(json.dumps({"name": name, "median_ms": statistics.median(samples), "widths": widths,
                          "threads": args.threads, "torch": torch.__version__,
                          "omp_wait_policy": os.environ.get("OMP_WAIT_POLICY", "default"),
                          "gomp_spincount": os.environ.get("GOMP_SPINCOUNT", "default")}), flush=True)


if __name__ == "__main__":
    main()
