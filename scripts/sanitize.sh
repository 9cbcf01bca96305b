#!/usr/bin/env bash
# Sanitizer runs of the CPU code (the CUDA backend is left out: sanitizers do not see into
# device code, and no GPU is needed):
#   asan  AddressSanitizer + UndefinedBehaviorSanitizer over the whole CPU test suite
#         (every test labelled `cpu`, the binaries they run included), build-asan/.
#   tsan  ThreadSanitizer over the code with its own threads (the data loader's worker),
#         build-tsan/; OpenMP is held to one thread there (libgomp is not instrumented,
#         so its own synchronisation would read as races).
# Usage: scripts/sanitize.sh [asan|tsan|all]   (default all). A finding fails the run.
# With SHRINK_RELIABILITY_OUT=DIR, a summary per mode goes to DIR/sanitize_<mode>.json.
set -euo pipefail
cd "$(dirname "$0")/.."
mode=${1:-all}
jobs=$(nproc)
generator=()
command -v ninja >/dev/null 2>&1 && generator=(-G Ninja)
# -O1: sanitizer reports stay readable, builds stay quick; assertions stay on. ASan returns
# null for a request beyond what it can map (allocator_may_return_null), as malloc does, so
# our allocator's out-of-memory error is what gets tested.
common=(-DCMAKE_BUILD_TYPE=Release "-DCMAKE_CXX_FLAGS_RELEASE=-O1 -g" -DSHRINK_CUDA=OFF
        -DSHRINK_BUILD_BENCH=OFF -DSHRINK_ASSERTS=ON)

summary() {  # mode, seconds, tests
  [[ -n "${SHRINK_RELIABILITY_OUT:-}" ]] || return 0
  mkdir -p "$SHRINK_RELIABILITY_OUT"
  printf '{"mode": "%s", "seconds": %s, "tests": %s, "failures": 0}\n' "$1" "$2" "$3" \
    > "$SHRINK_RELIABILITY_OUT/sanitize_$1.json"
}

run_asan() {
  local flags="-fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer"
  cmake -S . -B build-asan "${generator[@]}" "${common[@]}" "-DCMAKE_CXX_FLAGS=$flags" \
        "-DCMAKE_EXE_LINKER_FLAGS=-fsanitize=address,undefined" >/dev/null
  cmake --build build-asan -j "$jobs"
  local start=$SECONDS
  ASAN_OPTIONS=detect_leaks=1:allocator_may_return_null=1:strict_string_checks=1:detect_stack_use_after_return=1 \
  UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
    ctest --test-dir build-asan -L cpu --output-on-failure -j "$jobs"
  summary asan $((SECONDS - start)) "$(ctest --test-dir build-asan -L cpu -N | sed -n 's/^Total Tests: //p')"
}

run_tsan() {
  cmake -S . -B build-tsan "${generator[@]}" "${common[@]}" "-DCMAKE_CXX_FLAGS=-fsanitize=thread" \
        "-DCMAKE_EXE_LINKER_FLAGS=-fsanitize=thread" >/dev/null
  cmake --build build-tsan -j "$jobs" --target test_loader
  local start=$SECONDS
  OMP_NUM_THREADS=1 TSAN_OPTIONS=halt_on_error=1:second_deadlock_stack=1 \
    ctest --test-dir build-tsan -R '^(DataLoader|Loader)' --output-on-failure -j "$jobs" --no-tests=error
  summary tsan $((SECONDS - start)) "$(ctest --test-dir build-tsan -R '^(DataLoader|Loader)' -N | sed -n 's/^Total Tests: //p')"
}

case "$mode" in
  asan) run_asan ;;
  tsan) run_tsan ;;
  all) run_asan; run_tsan ;;
  *) echo "usage: $0 [asan|tsan|all]" >&2; exit 2 ;;
esac
