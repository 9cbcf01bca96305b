#!/usr/bin/env python3
"""Writes docs/reliability.md from runs it makes itself (issue 8's evidence):

  1. scripts/fuzz.sh SECONDS        every libFuzzer target for SECONDS each -> build-fuzz/fuzz_results.json
  2. scripts/sanitize.sh all        ASan+UBSan over the CPU test suite, TSan over the data loader
  3. ctest (build/) -R 'MalformedFiles|KillResume'
                                    every binary on malformed checkpoints / data files, and the
                                    kill -9 and resume test; each writes a JSON summary

Any failure stops the script before the page is written, so the page's statement that nothing
crashed comes from the runs, not from a hand. Needs a built build/ (scripts/build.sh).

Usage: /usr/bin/python3 scripts/reliability_report.py [--fuzz-seconds 120]
       /usr/bin/python3 scripts/reliability_report.py --from DIR   (summaries of an earlier
       `SHRINK_RELIABILITY_OUT=DIR bash scripts/test.sh`)"""
import argparse
import datetime
import glob
import json
import os
import shutil
import subprocess

from machine import cpu_name, git_commit

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def sh(cmd, env=None):
    print("+", " ".join(cmd), flush=True)
    subprocess.run(cmd, check=True, cwd=ROOT, env=env)


PARSES = {
    "checkpoint": "`load_checkpoint`: safetensors + the model spec in its metadata, shapes against the spec, build, load",
    "safetensors": "`load_safetensors`: header JSON, dtypes, shapes, offsets, metadata",
    "idx": "`read_idx`: IDX headers and data, raw and gzip",
    "model_spec": "`parse_model_text` / spec JSON, then a shape-only build",
    "schedule": "`parse_schedule`, then the rate at extreme steps",
}


def fuzz_section(report):
    results, seconds = report["targets"], report["seconds_per_target"]
    lines = ["## Fuzzing (libFuzzer + ASan + UBSan)", "",
             f"Each target ran for {seconds} s from the seed corpus in `tests/fuzz/corpus/` "
             f"(`scripts/fuzz.sh {seconds}`; CI runs `scripts/fuzz.sh 60`; longer: `scripts/fuzz.sh 3600`). "
             "Distinct inputs are counted by a hash of their bytes. An input either parses or "
             "ends in a `shrink::Error`; a crash, a sanitizer report, a leak, a timeout (10 s) or an "
             "allocation over the malloc limit fails the run.", "",
             "| target | what it parses | executions | exec/s | malformed inputs (distinct) | corpus seed → final | crashes, leaks, timeouts, OOMs |",
             "|---|---|---:|---:|---:|---|---:|"]
    for name in sorted(results):
        r = results[name]
        bad = sum(int(r.get(k, 0)) for k in ("crashes", "leaks", "timeouts", "ooms"))
        execs = int(r.get("executions", 0))
        secs = float(r.get("seconds", seconds)) or 1.0
        distinct = r.get("distinct_malformed", "—")
        lines.append(f"| `{name}` | {PARSES.get(name, '')} | {execs:,} | {execs / secs:,.0f} | "
                     f"{distinct if isinstance(distinct, str) else f'{distinct:,}'} | "
                     f"{r.get('corpus_seed', '?')} → {r.get('corpus_final', '?')} | {bad} |")
    return lines


def sanitize_section(out):
    lines = ["## Sanitizers", ""]
    for mode, what in (("asan", "AddressSanitizer + UndefinedBehaviorSanitizer (`-O1`, leaks detected, "
                                "every UBSan check fatal) over every CPU test, the binaries the tool tests "
                                "run included; the host allocator hands out exact blocks under ASan so "
                                "reads past a tensor's end are seen"),
                       ("tsan", "ThreadSanitizer over the data loader's tests (its worker thread; OpenMP "
                                "held to one thread)")):
        path = os.path.join(out, f"sanitize_{mode}.json")
        if not os.path.exists(path):
            lines.append(f"- {mode}: not run")
            continue
        with open(path) as f:
            r = json.load(f)
        lines.append(f"- **{mode}**: {r['tests']} tests, {r['failures']} findings, {r['seconds']} s — {what}.")
    lines.append("")
    lines.append("Run: `bash scripts/sanitize.sh [asan|tsan|all]` (CI runs `all`).")
    return lines


def malformed_section(out):
    lines = ["## Malformed files through every binary", "",
             "`tests/test_malformed_files.cpp` breaks a real checkpoint and a real IDX data set "
             "(empty, cut short at many points, oversized or garbled headers, random bytes, a file of "
             "the other kind, a directory, NaN weights, a different image shape) and hands each to "
             "every binary; seeded one-byte header edits go to `shrink-eval` and may still parse. "
             "A broken file must end with exit status 1..127 and a message naming the file. In the test "
             "command the ASan + UBSan suite runs this test after the plain one and its summary is the one "
             "kept: these binaries ran instrumented.", "",
             "| test | binary | runs | broken files refused | header edits still valid / refused | exit statuses |",
             "|---|---|---:|---:|---|---|"]
    for path in sorted(glob.glob(os.path.join(out, "malformed_files.*.json"))):
        test = os.path.basename(path).split(".")[1]
        with open(path) as f:
            r = json.load(f)
        for binary in sorted(k for k in r if k.startswith("shrink-")):
            b = r[binary]
            edits = (f"{b.get('edited_still_valid', 0)} / {b.get('edited_refused', 0)}"
                     if "edited_still_valid" in b or "edited_refused" in b else "—")
            codes = ", ".join(f"{k}: {v}" for k, v in sorted(b.get("exit_codes", {}).items()))
            lines.append(f"| {test} | `{binary}` | {b['runs']} | {b.get('refused', 0)} | {edits} | {codes} |")
    return lines


def kill_section(out):
    path = os.path.join(out, "kill_resume.json")
    lines = ["## Kill -9 and resume", ""]
    if not os.path.exists(path):
        return lines + ["not run"]
    with open(path) as f:
        r = json.load(f)
    lost = [d.get("steps_lost_at_most") for d in r.get("resume_details", [])]
    lines += [f"`tests/test_kill_resume.cpp`: a training run (`shrink-train --checkpoint-dir`, a state every "
              f"{r.get('checkpoint_every')} steps) killed with SIGKILL at {r.get('kills')} seeded random moments "
              f"(one of them while a state was being written), resumed {r.get('resumes')} times with "
              "`--resume DIR` (in the test command, the ASan + UBSan suite's run is the one summarised).", "",
              f"- every saved state loadable after every kill: {r.get('checkpoints_verified_intact')} checks, "
              f"{r.get('checkpoints_lost')} lost",
              f"- work lost per resume, at most (steps since the last state): {lost}",
              f"- temporary files left behind: {r.get('temp_files_left')}",
              f"- final weights bit-identical to the uninterrupted run: {r.get('bit_identical')}"]
    return lines


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--fuzz-seconds", type=int, default=120)
    ap.add_argument("--from", dest="source", help="read the summaries a run of "
                    "`SHRINK_RELIABILITY_OUT=DIR bash scripts/test.sh` left in DIR instead of running")
    ap.add_argument("--out", default=os.path.join(ROOT, "docs", "reliability.md"))
    args = ap.parse_args()
    out = args.source
    how = (f"from the summaries of one run of `SHRINK_RELIABILITY_OUT=DIR bash scripts/test.sh` "
           "(the CI test command)")
    if not out:
        out = os.path.join(ROOT, "build", "reliability")
        shutil.rmtree(out, ignore_errors=True)
        os.makedirs(out)
        env = dict(os.environ, SHRINK_RELIABILITY_OUT=out)
        sh(["bash", "scripts/fuzz.sh", str(args.fuzz_seconds)], env)
        sh(["bash", "scripts/sanitize.sh", "all"], env)
        sh(["ctest", "--test-dir", "build", "-R", "MalformedFiles|KillResume", "--output-on-failure"], env)
        how = "from the runs it made"
    with open(os.path.join(out, "fuzz_results.json")) as f:
        fuzz = json.load(f)
    commit_file = os.path.join(out, "commit")
    commit = open(commit_file).read().strip() if os.path.exists(commit_file) else git_commit()
    if not fuzz.get("clean"):
        raise SystemExit("fuzz_results.json records a failure: no page written")

    page = ["# Reliability", "",
            f"Generated by `scripts/reliability_report.py` on {datetime.date.today()} at commit "
            f"`{commit}`, on {os.cpu_count()} × {cpu_name()}, {how}. Every figure below comes from "
            "those runs; a failing run stops them before any summary is written, so this page exists "
            "only for a run in which nothing crashed, hung, leaked or lost a checkpoint.", ""]
    for section in (fuzz_section(fuzz), sanitize_section(out), malformed_section(out), kill_section(out)):
        page += section + [""]
    with open(args.out, "w") as f:
        f.write("\n".join(page))
    print("wrote", args.out)


if __name__ == "__main__":
    main()
