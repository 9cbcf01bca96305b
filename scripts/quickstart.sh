#!/usr/bin/env bash
# The main job, from a fresh Debian machine: install what is missing, build, train the
# default model (lenet-300-100) on Fashion-MNIST, and evaluate the checkpoint.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
bash scripts/build.sh
mkdir -p runs
./build/shrink-train --model lenet-300-100 --data fashion-mnist --epochs 10 --seed 0 \
  --out runs/lenet-300-100.safetensors --metrics runs/lenet-300-100.jsonl
./build/shrink-eval runs/lenet-300-100.safetensors --data fashion-mnist
