#!/usr/bin/env bash
# Fuzzes every parser of outside bytes for a bounded time.
#   scripts/fuzz.sh [SECONDS_PER_TARGET (default 60)]
# Builds build-fuzz/ (clang, -O1 -g, asserts on, SHRINK_FUZZ=ON: ASan + UBSan + libFuzzer,
# CPU only, no tests or benchmarks), then runs each tests/fuzz/fuzz_<target> for the given
# time on a copy of its seed corpus tests/fuzz/corpus/<target>/ (the repository's corpus is
# never modified), with tests/fuzz/<target>.dict when present. A claimed size must be an
# error, never an allocation: -malloc_limit_mb=1024 turns any single allocation over 1 GiB
# into a failure, -rss_limit_mb=2048 any growth past 2 GiB, -timeout=10 any input taking
# longer than 10 s.
# Writes build-fuzz/fuzz_results.json (per target: executions, seconds, corpus_seed,
# corpus_final = distinct inputs kept, distinct_malformed / distinct_valid = distinct inputs
# the parser refused with an error / accepted, crashes, ...) from libFuzzer's final
# statistics and the targets' own tally line.
# libFuzzer's seed is SHRINK_FUZZ_SEED (default 1), so a CI run repeats the previous one's
# path as far as its time allows; exploratory runs should vary it.
# Exits non-zero, printing the reproducer's path, when any target crashes, leaks, times
# out or runs out of memory. Longer runs: scripts/fuzz.sh 3600; to reproduce a failure:
#   build-fuzz/fuzz_<target> <reproducer>
set -euo pipefail

seconds="${1:-60}"
if ! [[ "$seconds" =~ ^[1-9][0-9]*$ ]]; then
  echo "usage: $0 [SECONDS_PER_TARGET (a positive integer, default 60)]" >&2
  exit 2
fi

root="$(cd "$(dirname "$0")/.." && pwd)"
build="$root/build-fuzz"
jobs="${SHRINK_BUILD_JOBS:-$(nproc)}"
generator=()
command -v ninja >/dev/null && generator=(-G Ninja)
[[ -f "$build/CMakeCache.txt" ]] && generator=()  # keep the folder's generator

cmake -S "$root" -B "$build" "${generator[@]}" \
  -DCMAKE_CXX_COMPILER="${SHRINK_FUZZ_CXX:-clang++}" \
  -DCMAKE_BUILD_TYPE=Release -DCMAKE_CXX_FLAGS_RELEASE="-O1 -g" \
  -DSHRINK_FUZZ=ON -DSHRINK_CUDA=OFF -DSHRINK_BUILD_TESTS=OFF -DSHRINK_BUILD_BENCH=OFF >/dev/null
cmake --build "$build" -j "$jobs" --target fuzz_targets

run_root="$build/fuzz-run"
rm -rf "$run_root"
mkdir -p "$run_root"
failed=0
for src in "$root"/tests/fuzz/fuzz_*.cpp; do
  name="$(basename "$src" .cpp)"
  target="${name#fuzz_}"
  work="$run_root/$target"
  mkdir -p "$work/corpus" "$work/artifacts"
  seeds="$root/tests/fuzz/corpus/$target"
  [[ -d "$seeds" ]] && cp -R "$seeds/." "$work/corpus/"
  args=(-seed="${SHRINK_FUZZ_SEED:-1}" -max_total_time="$seconds" -rss_limit_mb=2048 -malloc_limit_mb=1024 -timeout=10
        -print_final_stats=1 -artifact_prefix="$work/artifacts/")
  [[ -f "$root/tests/fuzz/$target.dict" ]] && args+=(-dict="$root/tests/fuzz/$target.dict")
  echo "== $name: ${seconds}s on $(ls "$work/corpus" | wc -l) seeds"
  start=$(date +%s.%N)
  rc=0
  OMP_NUM_THREADS=1 \
  ASAN_OPTIONS="detect_leaks=1:abort_on_error=0:allocator_may_return_null=0${ASAN_OPTIONS:+:$ASAN_OPTIONS}" \
  UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1${UBSAN_OPTIONS:+:$UBSAN_OPTIONS}" \
    "$build/$name" "${args[@]}" "$work/corpus" >"$work/log" 2>&1 || rc=$?
  end=$(date +%s.%N)
  echo "$rc $start $end" >"$work/status"
  grep -E "^#[0-9]+[[:space:]]+DONE|^Done [0-9]+ runs" "$work/log" | tail -2 || true
  if [[ $rc -ne 0 ]]; then
    failed=1
    echo "!! $name failed (exit $rc); log: $work/log" >&2
    grep -E "ERROR: (libFuzzer|AddressSanitizer|LeakSanitizer)|runtime error:|fuzz invariant failed" "$work/log" | head -3 >&2 || true
    for artifact in "$work"/artifacts/*; do
      [[ -e "$artifact" ]] && echo "   reproducer: $artifact (run: $build/$name $artifact)" >&2
    done
  fi
done

python3 - "$run_root" "$seconds" "$root/tests/fuzz/corpus" "$build/fuzz_results.json" <<'PY'
import json, re, sys
from pathlib import Path

run_root, seconds, seeds_root, out = Path(sys.argv[1]), int(sys.argv[2]), Path(sys.argv[3]), Path(sys.argv[4])
KINDS = [("leak", r"ERROR: LeakSanitizer"), ("timeout", r"ERROR: libFuzzer: timeout"),
         ("out-of-memory", r"ERROR: libFuzzer: out-of-memory|malloc\(\d+\) exceeds limit"),
         ("address", r"ERROR: AddressSanitizer"), ("undefined", r"runtime error:"),
         ("invariant", r"fuzz invariant failed"), ("crash", r"ERROR: libFuzzer: deadly signal")]
results = {}
for work in sorted(p for p in run_root.iterdir() if p.is_dir()):
    log = (work / "log").read_text(errors="replace")
    rc, start, end = (work / "status").read_text().split()
    stat = dict(re.findall(r"^stat::(\w+):\s+(\d+)", log, re.M))
    done = re.findall(r"^#(\d+)\s+DONE\s+cov: (\d+) ft: (\d+) corp: (\d+)/", log, re.M)
    inited = re.findall(r"^#\d+\s+INITED\s+cov: \d+ ft: \d+ corp: (\d+)/", log, re.M)
    tally = re.findall(r"^shrink-fuzz: (\d+) distinct inputs refused, (\d+) distinct accepted", log, re.M)
    seeds = seeds_root / work.name
    failure = next((kind for kind, pattern in KINDS if re.search(pattern, log)), "crash" if rc != "0" else None)
    artifacts = sorted(str(a) for a in (work / "artifacts").iterdir()
                       if not a.name.startswith("slow-unit-"))
    results[work.name] = {
        "executions": int(stat.get("number_of_executed_units", done[-1][0] if done else 0)),
        "seconds": round(float(end) - float(start), 1),
        "exec_per_sec": int(stat.get("average_exec_per_sec", 0)),
        "corpus_seed": len(list(seeds.iterdir())) if seeds.is_dir() else 0,
        "corpus_after_load": int(inited[-1]) if inited else None,
        "corpus_final": int(done[-1][3]) if done else None,
        "new_units": int(stat.get("new_units_added", 0)),
        "distinct_malformed": int(tally[-1][0]) if tally else None,
        "distinct_valid": int(tally[-1][1]) if tally else None,
        "coverage_edges": int(done[-1][1]) if done else None,
        "features": int(done[-1][2]) if done else None,
        "peak_rss_mb": int(stat.get("peak_rss_mb", 0)),
        "crashes": 0 if rc == "0" else 1,
        "failure": failure if rc != "0" else None,
        "reproducers": artifacts if rc != "0" else [],
        "exit_status": int(rc),
    }
report = {"seconds_per_target": seconds,
          "limits": {"rss_limit_mb": 2048, "malloc_limit_mb": 1024, "timeout_s": 10},
          "sanitizers": "address,undefined (+ leak)", "targets": results,
          "clean": all(r["crashes"] == 0 for r in results.values())}
out.write_text(json.dumps(report, indent=2) + "\n")
print(f"wrote {out}")
PY

if [[ $failed -ne 0 ]]; then
  echo "fuzz: FAILED (see the reproducers above)" >&2
  exit 1
fi
if [[ -n "${SHRINK_RELIABILITY_OUT:-}" ]]; then  # for scripts/reliability_report.py
  mkdir -p "$SHRINK_RELIABILITY_OUT" && cp "$build/fuzz_results.json" "$SHRINK_RELIABILITY_OUT/"
fi
echo "fuzz: every target ran ${seconds}s with no crash, leak, timeout or out-of-memory"
