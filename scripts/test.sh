#!/usr/bin/env bash
# The test command: installs what is missing, builds, and runs every test suite:
#   1. the unit, op, kernel, tool, fault and kill-and-resume tests (ctest in build/; CUDA
#      tests, label `cuda`, skip with a message where no GPU is present; the PyTorch interop
#      tests run against Debian's python3-torch, which this installs);
#   2. the sanitizer suite: ASan + UBSan over every CPU test, TSan over the data loader
#      (scripts/sanitize.sh, build-asan/ and build-tsan/);
#   3. every fuzz target for SHRINK_FUZZ_SECONDS (default 60) seconds (scripts/fuzz.sh).
# `scripts/test.sh --quick` runs only step 1. With SHRINK_RELIABILITY_OUT=DIR the steps leave
# JSON summaries there (scripts/reliability_report.py --from DIR turns them into a page).
set -euo pipefail
cd "$(dirname "$0")/.."
if [[ -n "${SHRINK_RELIABILITY_OUT:-}" ]]; then  # which code the summaries describe
  mkdir -p "$SHRINK_RELIABILITY_OUT" && git rev-parse --short HEAD > "$SHRINK_RELIABILITY_OUT/commit" 2>/dev/null || true
fi
SHRINK_SETUP_INTEROP=1 bash scripts/setup.sh
bash scripts/build.sh
ctest --test-dir build --output-on-failure -j "$(nproc)"
[[ "${1:-}" == "--quick" ]] && exit 0
bash scripts/sanitize.sh all
bash scripts/fuzz.sh "${SHRINK_FUZZ_SECONDS:-60}"
