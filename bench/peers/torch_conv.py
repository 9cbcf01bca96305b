#!/usr/bin/env python3
"""PyTorch peer for bench_conv: the same CNN workloads at the same batch sizes and thread
count, under the same names.

  train_step/<model>/<batch>   forward (train mode), cross-entropy, backward, SGD momentum 0.9
  inference/<model>/<batch>    eval mode under torch.no_grad()
  conv_fwd|conv_bwd_input|conv_bwd_weight/<layer>/<n>x<c>x<h>x<w>-><c_out>/k<k>s<s>p<p>g<g>
                               one convolution pass alone (F.conv2d or
                               aten.convolution_backward with one output), shapes parsed from
                               the name bench_conv gives it (pass them with --kernels)

The models are written here with the module structure of shrink's builders (nn/models_cnn.cpp)
and of the reference code they follow (torchvision's ResNet and MobileNetV2, the CIFAR ResNet
with option-B projection shortcuts); their parameter counts are asserted equal to shrink's.

Thread settings must be in the environment before torch is imported (shared BENCHMARKING.md):
the caller sets OMP_NUM_THREADS, OPENBLAS_NUM_THREADS and the OpenMP wait policy. Prints one
JSON line per workload: {"name", "median_ms", ...}. Run with /usr/bin/python3 (Debian's torch)."""
import argparse
import json
import os
import re
import statistics
import sys
import time
from collections import OrderedDict

import torch  # noqa: E402  (env already set by the caller)
from torch import nn

# ---- models (parameter names as shrink's builders) ----


def lenet5(channels, classes=10):
    return nn.Sequential(nn.Conv2d(channels, 6, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2),
                         nn.Conv2d(6, 16, 5), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(),
                         nn.Linear(16 * 5 * 5, 120), nn.ReLU(), nn.Linear(120, 84), nn.ReLU(),
                         nn.Linear(84, classes))


class BasicBlock(nn.Module):
    """conv3x3-bn-relu-conv3x3-bn, + identity or a 1x1 conv-bn projection (option B)."""

    def __init__(self, inp, planes, stride, shortcut_name):
        super().__init__()
        self.conv1 = nn.Conv2d(inp, planes, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(planes, planes, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.shortcut_name = None
        if stride != 1 or inp != planes:
            self.shortcut_name = shortcut_name
            setattr(self, shortcut_name, nn.Sequential(nn.Conv2d(inp, planes, 1, stride, bias=False),
                                                       nn.BatchNorm2d(planes)))

    def forward(self, x):
        y = self.relu(self.bn1(self.conv1(x)))
        y = self.bn2(self.conv2(y))
        identity = x if self.shortcut_name is None else getattr(self, self.shortcut_name)(x)
        return self.relu(y + identity)


def resnet(stem, widths, blocks, shortcut_name, head, channels, classes=10, maxpool=False):
    """stem: (kernel, stride, padding, width); `head`: the linear layer's name; stages of BasicBlocks, the first block of every
    stage after the first with stride 2; global average pooling; a linear head."""
    k, s, p, w = stem
    layers = [("conv1", nn.Conv2d(channels, w, k, s, p, bias=False)), ("bn1", nn.BatchNorm2d(w)),
              ("relu", nn.ReLU(inplace=True))]
    if maxpool:
        layers.append(("maxpool", nn.MaxPool2d(3, 2, 1)))
    inp = w
    for i, (width, n) in enumerate(zip(widths, blocks)):
        stage = []
        for b in range(n):
            stage.append(BasicBlock(inp, width, 2 if i > 0 and b == 0 else 1, shortcut_name))
            inp = width
        layers.append((f"layer{i + 1}", nn.Sequential(*stage)))
    layers += [("avgpool", nn.AdaptiveAvgPool2d(1)), ("flatten", nn.Flatten()),
               (head, nn.Linear(inp, classes))]
    return nn.Sequential(OrderedDict(layers))


def cifar_resnet20(channels):
    return resnet((3, 1, 1, 16), [16, 32, 64], [3, 3, 3], "shortcut", "linear", channels)


def resnet18(channels, small_input):
    stem = (3, 1, 1, 64) if small_input else (7, 2, 3, 64)
    return resnet(stem, [64, 128, 256, 512], [2, 2, 2, 2], "downsample", "fc", channels,
                  maxpool=not small_input)


def conv_bn(inp, out, k, stride=1, groups=1, act=True):
    layers = [nn.Conv2d(inp, out, k, stride, k // 2, groups=groups, bias=False), nn.BatchNorm2d(out)]
    if act:
        layers.append(nn.ReLU6(inplace=True))
    return nn.Sequential(*layers)


class InvertedResidual(nn.Module):
    def __init__(self, inp, out, stride, t):
        super().__init__()
        hidden = inp * t
        layers = [conv_bn(inp, hidden, 1)] if t != 1 else []
        layers += [conv_bn(hidden, hidden, 3, stride, hidden),
                   nn.Conv2d(hidden, out, 1, bias=False), nn.BatchNorm2d(out)]
        self.conv = nn.Sequential(*layers)
        self.use_residual = stride == 1 and inp == out

    def forward(self, x):
        return x + self.conv(x) if self.use_residual else self.conv(x)


def mobilenetv2(channels, cifar_stride, classes=10):
    """torchvision's MobileNetV2 at width 1.0 (Sandler et al. 2018, Table 2); cifar_stride: stride
    1 in the stem and the second stage, as shrink's builder."""
    settings = [(1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1),
                (6, 160, 3, 2), (6, 320, 1, 1)]
    inp = 32
    features = [conv_bn(channels, inp, 3, 1 if cifar_stride else 2)]
    for stage, (t, c, n, s) in enumerate(settings):
        for i in range(n):
            stride = 1 if i > 0 else (1 if cifar_stride and stage == 1 else s)
            features.append(InvertedResidual(inp, c, stride, t))
            inp = c
    features.append(conv_bn(inp, 1280, 1))
    return nn.Sequential(OrderedDict([("features", nn.Sequential(*features)), ("avgpool", nn.AdaptiveAvgPool2d(1)),
                               ("flatten", nn.Flatten()),
                               ("classifier", nn.Sequential(nn.Dropout(0.2), nn.Linear(1280, classes)))]))


# name -> (builder, channels, input size, shrink's parameter count for 10 classes: bench_conv's
# "params" counter; resnet20 is 269,722 with option-A shortcuts plus two 1x1 conv-BN projections,
# 16->32 (576) and 32->64 (2,176))
MODELS = {
    "lenet5": (lambda: lenet5(1), 1, 28, 61_706),
    "resnet20": (lambda: cifar_resnet20(3), 3, 32, 272_474),
    "mobilenetv2": (lambda: mobilenetv2(3, cifar_stride=True), 3, 32, 2_236_682),
    "resnet18": (lambda: resnet18(3, small_input=True), 3, 64, 11_173_962),
    "resnet18-imagenet-stem": (lambda: resnet18(3, small_input=False), 3, 64, 11_181_642),
}
TRAIN = {"lenet5": 128, "resnet20": 64, "mobilenetv2": 32}
INFER = {"lenet5": 128, "resnet20": 64, "mobilenetv2": 32, "resnet18": 16, "resnet18-imagenet-stem": 16}


def build(name):
    builder, channels, size, expected = MODELS[name]
    torch.manual_seed(0)
    model = builder()
    count = sum(p.numel() for p in model.parameters())
    print(f"torch_conv: {name} parameters: PyTorch {count:,}, shrink {expected:,}", file=sys.stderr)
    assert count == expected, f"{name}: PyTorch model has {count} parameters, shrink's has {expected}"
    return model, channels, size, count


def median_ms(fn, reps, warmup, min_time=0.0):
    for _ in range(warmup):
        fn()
    samples, total = [], 0.0
    while len(samples) < reps or total < min_time:
        t0 = time.perf_counter()
        fn()
        dt = time.perf_counter() - t0
        samples.append(dt * 1e3)
        total += dt
    return statistics.median(samples)


def time_model(name, batch, train, reps, warmup):
    model, channels, size, count = build(name)
    x = torch.randn(batch, channels, size, size)
    if train:
        model.train()
        y = torch.arange(batch) % 10
        opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
        loss_fn = nn.CrossEntropyLoss()

        def step():
            opt.zero_grad(set_to_none=True)
            loss = loss_fn(model(x), y)
            loss.backward()
            opt.step()
        return median_ms(step, reps, warmup), count
    model.eval()

    def forward():
        with torch.no_grad():
            model(x)
    return median_ms(forward, reps, warmup), count


KERNEL = re.compile(r"^(conv_fwd|conv_bwd_input|conv_bwd_weight)/[^/]+/(\d+)x(\d+)x(\d+)x(\d+)->(\d+)/"
                    r"k(\d+)s(\d+)p(\d+)g(\d+)$")


def time_kernel(name, reps, min_time):
    m = KERNEL.match(name)
    if not m:
        sys.exit(f"torch_conv: cannot read a convolution from '{name}'")
    pass_, n, c, h, w, co, k, s, p, g = m.group(1), *map(int, m.groups()[1:])
    torch.manual_seed(0)
    x = torch.randn(n, c, h, w)
    weight = torch.randn(co, c // g, k, k)
    with torch.no_grad():
        dy = torch.randn_like(torch.nn.functional.conv2d(x, weight, None, s, p, 1, g))
    flops = 2.0 * dy.numel() * (c // g) * k * k

    def run():
        with torch.no_grad():
            if pass_ == "conv_fwd":
                torch.nn.functional.conv2d(x, weight, None, s, p, 1, g)
            else:
                mask = [pass_ == "conv_bwd_input", pass_ == "conv_bwd_weight", False]
                torch.ops.aten.convolution_backward(dy, x, weight, None, [s, s], [p, p], [1, 1], False,
                                                    [0, 0], g, mask)
    ms = median_ms(run, reps, 3, min_time)
    return ms, flops / ms / 1e6


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--reps", type=int, default=10, help="timed steps per model workload")
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--models", default="all", help="'all', 'none' or comma-separated workload names "
                    "(train_step/resnet20/64, inference/resnet18/16, ...)")
    ap.add_argument("--kernels", default="", help="comma-separated conv_* names as bench_conv lists them")
    ap.add_argument("--kernel-min-time", type=float, default=0.3, help="seconds timed per kernel at least")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    env = {"threads": args.threads, "torch": torch.__version__,
           "omp_wait_policy": os.environ.get("OMP_WAIT_POLICY", "default"),
           "gomp_spincount": os.environ.get("GOMP_SPINCOUNT", "default")}
    workloads = [f"train_step/{m}/{b}" for m, b in TRAIN.items()] + [f"inference/{m}/{b}" for m, b in INFER.items()]
    if args.models != "all":
        workloads = [w for w in args.models.split(",") if w and w != "none"]
    for workload in workloads:
        kind, model, batch = workload.split("/")
        ms, count = time_model(model, int(batch), kind == "train_step", args.reps, args.warmup)
        print(json.dumps({"name": workload, "median_ms": ms, "params": count, **env}), flush=True)
    for name in filter(None, args.kernels.split(",")):
        ms, gflops = time_kernel(name, args.reps, args.kernel_min_time)
        print(json.dumps({"name": name, "median_ms": ms, "gflops": gflops, **env}), flush=True)


if __name__ == "__main__":
    main()
