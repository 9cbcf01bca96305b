#!/usr/bin/python3
"""Peer timing for shrink's sgemm: numpy float32 matmul (OpenBLAS on Debian).

Run with /usr/bin/python3 (the interpreter that has Debian's numpy). Prints one JSON
object per line: {"name": "sgemm/1024", "median_ms": ..., "gflops": ..., "threads": ...}.
The names match bench/bench_gemm.cpp so a script can pair the two outputs.
"""
import argparse
import json
import os
import sys


def parse_args():
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--reps", type=int, default=15, help="timed repetitions per shape")
    p.add_argument("--min-time", type=float, default=0.5,
                   help="keep repeating until this many seconds were timed")
    p.add_argument("--names", default="",
                   help="instead of SHAPES, these comma-separated bench_gemm names "
                        "'sgemm_conv/<layer>/<NN|TN|NT>/<m>x<n>x<k>' (shape and transposes read "
                        "from the name)")
    return p.parse_args()


args = parse_args()
# OpenBLAS reads its thread count when the library loads, so this must precede `import numpy`.
for var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS"):
    os.environ[var] = str(args.threads)

import re  # noqa: E402
import time  # noqa: E402

import numpy as np  # noqa: E402

# (name, m, n, k, trans_a): the same shapes as bench_gemm.cpp.
SHAPES = [
    ("sgemm/256", 256, 256, 256, False),
    ("sgemm/512", 512, 512, 512, False),
    ("sgemm/1024", 1024, 1024, 1024, False),
    ("sgemm/2048", 2048, 2048, 2048, False),
    # MLP 784-10000 forward, batch 128: X(128x784) * W^T.
    ("sgemm_ffn/128x10000x784", 128, 10000, 784, False),
    # Its weight gradient: dW(10000x784) = dY^T(10000x128) * X(128x784), A stored transposed.
    ("sgemm_ffn_wgrad_ta/10000x784x128", 10000, 784, 128, True),
    ("sgemm_small/128x300x784", 128, 300, 784, False),
    ("sgemm_small/128x10x100", 128, 10, 100, False),
]


CONV_NAME = re.compile(r"^sgemm_conv/[^/]+/([NT])([NT])/(\d+)x(\d+)x(\d+)$")


def named_shape(name):
    """'sgemm_conv/resnet20.layer1.bwd_input/TN/144x1024x16' -> (name, m, n, k, ta, tb)."""
    match = CONV_NAME.match(name)
    if not match:
        sys.exit(f"gemm_numpy: cannot read a GEMM shape from '{name}'")
    ta, tb, m, n, k = match.groups()
    return name, int(m), int(n), int(k), ta == "T", tb == "T"


def time_shape(m, n, k, trans_a, trans_b=False):
    """C = op(A) op(B) with A stored (k, m) when trans_a and B stored (n, k) when trans_b: numpy
    hands the transposed views to cblas_sgemm as transposes, no copy."""
    rng = np.random.default_rng(0)
    a = rng.standard_normal((k, m) if trans_a else (m, k), dtype=np.float32)
    b = rng.standard_normal((n, k) if trans_b else (k, n), dtype=np.float32)
    a_op = a.T if trans_a else a
    b = b.T if trans_b else b
    c = np.empty((m, n), dtype=np.float32)
    for _ in range(3):
        np.matmul(a_op, b, out=c)
    times = []
    t_total = 0.0
    while len(times) < args.reps or t_total < args.min_time:
        t0 = time.perf_counter()
        np.matmul(a_op, b, out=c)
        dt = time.perf_counter() - t0
        times.append(dt)
        t_total += dt
        if len(times) >= 10000:
            break
    times.sort()
    return times[len(times) // 2]


def main():
    shapes = ([named_shape(n) for n in args.names.split(",") if n] if args.names
              else [(*shape, False) for shape in SHAPES])
    for name, m, n, k, trans_a, trans_b in shapes:
        med = time_shape(m, n, k, trans_a, trans_b)
        print(json.dumps({
            "name": name,
            "median_ms": round(med * 1e3, 4),
            "gflops": round(2.0 * m * n * k / med / 1e9, 2),
            "threads": args.threads,
        }), flush=True)


if __name__ == "__main__":
    sys.exit(main())
