#!/usr/bin/env bash
# The main job, from a fresh Debian machine: install what is missing, build, train the
# default model (lenet-300-100) on Fashion-MNIST, prune it with i-SpaSP to a fifth of its
# parameters with two epochs of fine-tuning, and print the before/after report.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
bash scripts/build.sh
mkdir -p runs
./build/shrink-train --model lenet-300-100 --data fashion-mnist --epochs 10 --seed 0 \
  --out runs/lenet-300-100.safetensors --metrics runs/lenet-300-100.jsonl
./build/shrink-prune runs/lenet-300-100.safetensors --method ispasp --target-params 0.2 \
  --finetune-epochs 2 --data fashion-mnist --seed 0 --out runs/lenet-300-100-pruned.safetensors
./build/shrink-eval runs/lenet-300-100-pruned.safetensors --data fashion-mnist
