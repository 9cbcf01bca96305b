#!/usr/bin/env python3
"""PyTorch peer for bench_prune: plain PyTorch on the same pruning jobs, ffn-10000
(784-10000-10, randomly initialised) with 1024 random calibration samples, down to the same
hidden width. Timed: scoring, selection and the physical rewrite (new, smaller nn.Linear
layers holding the kept rows / columns). Not timed: building the model and the data.

Each job is a page-long port of the method as shrink implements it (prune/*.cpp), written
from shared ALGORITHMS.md: magnitude (L1 or L2 of each unit's incoming weights), random,
first-order Taylor, i-SpaSP (§1.2, 20 iterations, minibatches of 256), PFP deterministic
(§2.1-2.2: sensitivities on the |S| rule's first samples, the ε search, top-n) and PFP
sampling (Alg. 1: multinomial draws, reweighted consumer columns), SAP
structured (shrink's own variant: the PQ index of the unit L2 norms decides the count,
prune/sap.cpp), greedy forward selection (§1.6) and the rewrite alone. Like shrink's
criteria, they freeze the parameters (no weight gradients) and run in eval mode.

Thread settings must be in the environment before torch is imported (shared
BENCHMARKING.md): the caller sets OMP_NUM_THREADS, OPENBLAS_NUM_THREADS and the OpenMP wait
policy. Prints one JSON line per job, {"name", "median_ms", ...}, named as bench_prune's
benchmarks. Run with /usr/bin/python3 (Debian's python3-torch)."""
import argparse
import json
import math
import os
import statistics
import time

import torch  # noqa: E402  (env already set by the caller)
import torch.nn.functional as F

IN, HIDDEN, OUT, SAMPLES = 784, 10000, 10, 1024


def build():
    return torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(IN, HIDDEN), torch.nn.ReLU(),
                               torch.nn.Linear(HIDDEN, OUT)).eval().requires_grad_(False)


def rewrite(model, kept):
    """The physical rewrite: new, smaller Linears holding the kept rows / columns."""
    fc1, fc2 = model[1], model[3]
    new1, new2 = torch.nn.Linear(IN, len(kept)), torch.nn.Linear(len(kept), OUT)
    with torch.no_grad():
        new1.weight.copy_(fc1.weight.index_select(0, kept))
        new1.bias.copy_(fc1.bias.index_select(0, kept))
        new2.weight.copy_(fc2.weight.index_select(1, kept))
        new2.bias.copy_(fc2.bias)
    return torch.nn.Sequential(model[0], new1, model[2], new2)


def top(scores, k):
    return torch.topk(scores, k).indices.sort().values


def hidden(model, x):
    with torch.no_grad():
        return model[2](model[1](model[0](x)))


def magnitude(model, x, y, k):
    with torch.no_grad():
        return rewrite(model, top(model[1].weight.abs().sum(1), k))


def magnitude_l2(model, x, y, k):
    with torch.no_grad():
        return rewrite(model, top(model[1].weight.norm(dim=1), k))


def random_units(model, x, y, k):
    return rewrite(model, top(torch.rand(HIDDEN, dtype=torch.float64), k))


def taylor(model, x, y, k):
    # Molchanov et al. 2017: |sum_n a * dL/da| at the ReLU's output.
    h = hidden(model, x).requires_grad_()
    F.cross_entropy(model[3](h), y).backward()
    return rewrite(model, top((h.detach() * h.grad).sum(0).abs(), k))


def ispasp(model, x, y, k, iterations=20, batch=256):
    h = hidden(model, x)
    a = h.sum(0)
    fc2 = model[3]
    support = None
    for _ in range(iterations):
        phi = torch.zeros(HIDDEN)
        for hb in h.split(batch):
            hb = hb.detach().requires_grad_()
            u = fc2(hb)
            if support is not None:
                with torch.no_grad():
                    u_s = F.linear(hb.index_select(1, support), fc2.weight.index_select(1, support), fc2.bias)
                u = u - u_s
            (0.5 * (u * u).sum()).backward()
            phi += hb.grad.sum(0)
        merged = torch.full((HIDDEN,), -math.inf, dtype=a.dtype)
        omega = torch.topk(phi, min(2 * k, HIDDEN)).indices
        merged[omega] = a[omega]
        if support is not None:
            merged[support] = a[support]
        support = top(merged, k)
    return rewrite(model, support)


def pfp_sensitivity(w, act, chunk=16):
    """s_j = max_x max_i max(W+_ij a_j / z+_i, W-_ij a_j / z-_i) (ALGORITHMS.md §2.1)."""
    if (act < 0).any():
        act = torch.cat([act.clamp(min=0), (-act).clamp(min=0)])
    eps = torch.finfo(torch.float32).eps
    wp, wn = w.clamp(min=0), w.clamp(max=0)
    s = torch.zeros(w.shape[1])
    for ab in act.split(chunk):
        inv = []
        for z in (ab @ wp.t(), ab @ wn.t()):
            inv.append(torch.where(z.abs() > eps, 1.0 / z, torch.zeros_like(z)))
        ratio = torch.where(w > 0, inv[0][:, :, None] * w, inv[1][:, :, None] * w)  # (n, out, in)
        s = torch.maximum(s, (ab * ratio.amax(1)).amax(0))
    return s.double()


def pfp_allocate(model, x, k, delta=1e-12, c=3.0):
    """Sensitivities s, probabilities p and the width n of the ε search (ALGORITHMS.md §2.2)."""
    eta = [HIDDEN, OUT]  # outputs of the weighted layers
    samples = min(SAMPLES, math.ceil(3 * (math.log(8 * max(eta) * sum(eta)) - math.log(delta))))
    s = pfp_sensitivity(model[3].weight, hidden(model, x[:samples]))
    p = s / s.sum()
    log1m_p, positive = torch.log1p(-p), int((p > 0).sum())
    alpha = 2 * c * (math.log(8 * (1 + 1) * 1) - math.log(delta))  # P_l = 1, kappa = 1 (FC)

    def width(log_eps):
        e = math.exp(log_eps)
        m = 3 * (6 + 2 * e) * alpha * float(s.sum()) / (e * e)
        unique = positive if not m < 1e300 else float(-torch.expm1(float(math.ceil(m)) * log1m_p).sum())
        return min(max(math.ceil(unique - 1e-9), 1), HIDDEN)

    cost = lambda n: n * (IN + 1) + n * OUT + OUT  # noqa: E731  parameters at hidden width n
    budget = cost(k)  # a keep target: the parameters of the uniform allocation meeting it
    lo, hi = -690.0, 345.0  # log ε in [1e-300, 1e150]
    while hi - lo > 1e-12 * max(1.0, abs(hi)):
        mid = 0.5 * (lo + hi)
        lo, hi = (mid, hi) if cost(width(mid)) > budget else (lo, mid)
    n = width(hi)
    while n < HIDDEN and cost(n + 1) <= budget:  # the fill: one layer's next channels
        n += 1
    return s, p, n


def pfp(model, x, y, k):
    """PFPNet: the n channels of largest sensitivity."""
    s, _, n = pfp_allocate(model, x, k)
    return rewrite(model, top(s, n))


def pfp_sampling(model, x, y, k):
    """PFPNetRand (Alg. 1): M draws from p whose expected distinct count is n; the consumer's
    column j is scaled by count_j / (M p_j)."""
    _, p, n = pfp_allocate(model, x, k)
    log1m_p = torch.log1p(-p)
    expected = lambda m: float(-torch.expm1(m * log1m_p).sum())  # noqa: E731
    target = min(n, int((p > 0).sum()) - 0.5)
    lo, hi = 0, 1
    while hi < (1 << 26) and expected(hi) < target:
        lo, hi = hi, hi * 2
    while hi - lo > 1:
        mid = lo + (hi - lo) // 2
        lo, hi = (mid, hi) if expected(mid) < target else (lo, mid)
    counts = torch.bincount(torch.multinomial(p, hi, replacement=True), minlength=HIDDEN)
    kept = counts.nonzero().squeeze(1)
    pruned = rewrite(model, kept)
    with torch.no_grad():
        pruned[3].weight.mul_((counts[kept] / (hi * p[kept])).float())
    return pruned


def sap(model, x, y, k, p=0.5, q=1.0, eta_r=0.0, gamma=1.0, beta=0.9):
    with torch.no_grad():
        norms = model[1].weight.double().norm(dim=1)
    nz = norms[norms != 0]
    a = nz / nz.max()
    d = nz.numel()
    index = max(0.0, float(1 - (a.pow(p).mean() ** (1 / p)) / (a.pow(q).mean() ** (1 / q))))
    r = math.ceil(d * (1 + eta_r) ** (-q / (q - p)) * (1 - index) ** (q * p / (q - p)))
    prune = math.floor(d * max(0.0, min(gamma * (1 - r / d), beta)))
    return rewrite(model, top(norms, max(1, HIDDEN - prune)))


def gfs(model, x, y, k, chunk_elements=1 << 22):
    h = hidden(model, x)  # (N, m)
    fc2 = model[3]
    n = h.shape[0]
    h_rows, w_rows = h.t().contiguous(), fc2.weight.t().contiguous()  # (m, N), (m, out)
    partial = fc2.bias.expand(n, OUT).clone()
    chosen = torch.zeros(HIDDEN, dtype=torch.bool)
    chunk = max(1, min(HIDDEN, chunk_elements // (n * OUT)))
    support = []
    for _ in range(k):
        loss = torch.empty(HIDDEN)
        for start in range(0, HIDDEN, chunk):
            hj, wj = h_rows[start:start + chunk, :, None], w_rows[start:start + chunk, None, :]
            logits = (partial + hj * wj).log_softmax(-1)  # (c, N, out)
            loss[start:start + chunk] = -logits.gather(2, y.expand(len(hj), n)[:, :, None]).mean((1, 2))
        loss[chosen] = math.inf
        best = int(loss.argmin())
        chosen[best] = True
        support.append(best)
        partial += h[:, best:best + 1] * fc2.weight[:, best]
    return rewrite(model, torch.tensor(sorted(support)))


def shrink_only(model, x, y, k):
    return rewrite(model, torch.arange(0, HIDDEN, 20))


JOBS = {  # bench_prune's names -> (function, width)
    "prune_to/ispasp/500": (ispasp, 500),
    "prune_to/pfp/500": (pfp, 500),
    "prune_to/pfp-sampling/500": (pfp_sampling, 500),
    "prune_to/magnitude/500": (magnitude, 500),
    "prune_to/magnitude-l2/500": (magnitude_l2, 500),
    "prune_to/taylor/500": (taylor, 500),
    "prune_to/random/500": (random_units, 500),
    "prune_to/sap/auto": (sap, None),
    "prune_to/ispasp/50": (ispasp, 50),
    "prune_to/gfs/50": (gfs, 50),
    "shrink_only/500": (shrink_only, 500),
}


def time_job(fn, width, x, y, reps, warmup):
    samples = []
    for r in range(warmup + reps):
        torch.manual_seed(1)
        model = build()  # not timed
        t0 = time.perf_counter()
        pruned = fn(model, x, y, width)
        if r >= warmup:
            samples.append((time.perf_counter() - t0) * 1e3)
        assert pruned[1].out_features >= 1
    return statistics.median(samples), pruned[1].out_features


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--warmup", type=int, default=1)
    ap.add_argument("--jobs", default=",".join(j for j in JOBS if "gfs" not in j),
                    help="comma-separated job names (default: all but GFS, which takes minutes)")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    x = torch.randn(SAMPLES, IN)
    y = torch.randint(0, OUT, (SAMPLES,))
    for name in args.jobs.split(","):
        fn, width = JOBS[name]
        slow = "gfs" in name
        ms, kept = time_job(fn, width, x, y, 1 if slow else args.reps, 0 if slow else args.warmup)
        print(json.dumps({"name": name, "median_ms": ms, "kept": kept, "threads": args.threads,
                          "torch": torch.__version__,
                          "omp_wait_policy": os.environ.get("OMP_WAIT_POLICY", "default"),
                          "gomp_spincount": os.environ.get("GOMP_SPINCOUNT", "default")}),
              flush=True)


if __name__ == "__main__":
    main()
