#!/usr/bin/env bash
# The test command: installs what is missing, builds, and runs every test suite.
# CUDA tests (label `cuda`) skip with a message where no GPU is present.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
bash scripts/build.sh
ctest --test-dir build --output-on-failure -j "$(nproc)"
