#!/usr/bin/env bash
# The main job, from a fresh Debian machine: install what is missing, build, train the
# default model (lenet-300-100) on Fashion-MNIST, prune it with i-SpaSP to a fifth of its
# parameters with two epochs of fine-tuning, and print the before/after report.
#
#   bash scripts/quickstart.sh        the job above (a few minutes on 2 cores)
#   bash scripts/quickstart.sh cnn    the same for CNNs: LeNet-5 trained 10 epochs, pruned by PFP
#                                     to 30% of its parameters; then a ResNet-20 at 32x32 with
#                                     crop+flip augmentation for 2 epochs, pruned by i-SpaSP to half
#                                     its FLOPs (block-inner channels, widths rounded to 8), each
#                                     with a short fine-tune and the before/after report (a short
#                                     demonstration; docs/results/ has the full schedules)
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
bash scripts/build.sh
mkdir -p runs
if [[ "${1:-}" == "cnn" ]]; then
  ./build/shrink-train --model lenet5 --data fashion-mnist --epochs 10 --seed 0 \
    --out runs/lenet5.safetensors --metrics runs/lenet5.jsonl
  ./build/shrink-prune runs/lenet5.safetensors --method pfp --target-params 0.3 --finetune-epochs 2 \
    --data fashion-mnist --seed 0 --out runs/lenet5-pruned.safetensors
  ./build/shrink-eval runs/lenet5-pruned.safetensors --data fashion-mnist
  ./build/shrink-train --model resnet20 --data fashion-mnist --input-size 32 --augment crop:4,flip \
    --epochs 2 --batch-size 128 --lr 0.1 --nesterov --no-decay-norm-bias --seed 0 \
    --out runs/resnet20.safetensors --metrics runs/resnet20.jsonl
  ./build/shrink-prune runs/resnet20.safetensors --method ispasp --target-flops 0.5 --round-to 8 \
    --finetune-epochs 1 --augment crop:4,flip --batch-size 128 --data fashion-mnist --seed 0 \
    --out runs/resnet20-pruned.safetensors
  ./build/shrink-eval runs/resnet20-pruned.safetensors --data fashion-mnist
  exit 0
fi
./build/shrink-train --model lenet-300-100 --data fashion-mnist --epochs 10 --seed 0 \
  --out runs/lenet-300-100.safetensors --metrics runs/lenet-300-100.jsonl
./build/shrink-prune runs/lenet-300-100.safetensors --method ispasp --target-params 0.2 \
  --finetune-epochs 2 --data fashion-mnist --seed 0 --out runs/lenet-300-100-pruned.safetensors
./build/shrink-eval runs/lenet-300-100-pruned.safetensors --data fashion-mnist
