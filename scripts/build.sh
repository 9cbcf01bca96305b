#!/usr/bin/env bash
# Configures and builds shrink (Release, assertions on) into build/. Extra arguments go to cmake.
set -euo pipefail
cd "$(dirname "$0")/.."
generator=()
command -v ninja >/dev/null 2>&1 && generator=(-G Ninja)
if [[ ! -f build/CMakeCache.txt ]]; then
  cmake -S . -B build "${generator[@]}" -DCMAKE_BUILD_TYPE=Release -DSHRINK_ASSERTS=ON "$@"
fi
cmake --build build -j "$(nproc)"
