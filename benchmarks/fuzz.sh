#!/usr/bin/env bash
# Builds the libFuzzer harnesses of tests/fuzz/ (clang, ASan + UBSan, build-fuzz/) and runs
# each for SECONDS (default 60), one after another, from the seed corpora of
# scripts/fuzz_corpus.sh; prints per harness the inputs run, the coverage (libFuzzer's final
# "cov" = edges, "ft" = features) and the findings. docs/fuzzing.md explains the harnesses.
#
#   benchmarks/fuzz.sh [SECONDS] [HARNESS...]     e.g. benchmarks/fuzz.sh 600
#
# Environment: BUILD (default build-fuzz), CXX (default clang++), FUZZ_ARGS (extra libFuzzer
# flags, e.g. "-jobs=2"), NICE (default "nice -n 19": the machine may be training),
# FUZZ_SEED and FUZZ_RUNS (libFuzzer's -seed and -runs: with both, a run is the same inputs on
# every machine, as CI wants; SECONDS then only caps it).
# Findings (the crashing input, "crash-*", "leak-*", "timeout-*", "oom-*") are written to
# BUILD/findings/<harness>/ (only those of this run are counted); the corpus grows in BUILD/corpus/<harness>/. Reproduce one with
#   BUILD/fuzz/<harness> BUILD/findings/<harness>/crash-...
# Exits 1 if any harness had a finding.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
SECONDS_EACH="${1:-60}"
shift || true
BUILD="${BUILD:-$ROOT/build-fuzz}"
NICE="${NICE-nice -n 19}"
[[ "$SECONDS_EACH" =~ ^[0-9]+$ && "$SECONDS_EACH" -gt 0 ]] || {
  echo "fuzz.sh: SECONDS is '$SECONDS_EACH', expected a positive whole number" >&2
  exit 2
}

# OpenMP off: a fuzzer runs one input at a time, and libFuzzer's leak checks and -jobs expect
# no thread pool. Debug keeps stb_image's asserts; the harness flags add -O1.
CXX="${CXX:-clang++}" $NICE cmake -S "$ROOT" -B "$BUILD" -DLOWBIT_FUZZ=ON -DLOWBIT_OPENMP=OFF \
  -DLOWBIT_BUILD_TESTS=OFF -DLOWBIT_BUILD_EXAMPLES=OFF -DLOWBIT_BUILD_BENCHMARKS=OFF \
  -DLOWBIT_INSTALL=OFF -DLOWBIT_NATIVE=OFF -DCMAKE_BUILD_TYPE=Debug >/dev/null
$NICE cmake --build "$BUILD" -j "${JOBS:-1}"
"$ROOT/scripts/fuzz_corpus.sh" "$BUILD/corpus" >/dev/null

HARNESSES=("$@")
if [[ ${#HARNESSES[@]} -eq 0 ]]; then
  for exe in "$BUILD"/fuzz/fuzz_*; do HARNESSES+=("$(basename "$exe")"); done
fi

export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=1}"
export UBSAN_OPTIONS="${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}"
printf '%-22s %10s %8s %8s %6s %9s  %s\n' harness execs cov ft secs findings notes
total_findings=0
for h in "${HARNESSES[@]}"; do
  exe="$BUILD/fuzz/$h"
  [[ -x "$exe" ]] || { echo "fuzz.sh: no harness '$h' in $BUILD/fuzz" >&2; exit 2; }
  mkdir -p "$BUILD/corpus/$h" "$BUILD/findings/$h"
  log="$BUILD/findings/$h.log"
  stamp="$BUILD/findings/$h.start"
  touch "$stamp"  # findings newer than it are this run's
  start=$(date +%s)
  # -timeout: one input running over 10 s is a finding (the decode budget is ~2 s);
  # -rss_limit_mb: so is one using over 2 GB. The outer timeout only guards a hung harness.
  notes=()
  rc=0
  fixed=()
  [[ -n "${FUZZ_SEED:-}" ]] && fixed+=("-seed=$FUZZ_SEED")
  [[ -n "${FUZZ_RUNS:-}" ]] && fixed+=("-runs=$FUZZ_RUNS")
  # shellcheck disable=SC2086
  timeout $((SECONDS_EACH + 120)) $NICE "$exe" -max_total_time="$SECONDS_EACH" -print_final_stats=1 \
    -timeout=10 -rss_limit_mb=2048 -artifact_prefix="$BUILD/findings/$h/" "${fixed[@]}" ${FUZZ_ARGS:-} \
    "$BUILD/corpus/$h" </dev/null >"$log" 2>&1 || rc=$?
  [[ $rc -eq 0 ]] || notes+=("exit $rc")
  secs=$(( $(date +%s) - start ))
  execs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$' | tail -1 || true)
  last=$(grep -E '^#[0-9]+.*cov: ' "$log" | tail -1 || true)
  cov=$(sed -n 's/.* cov: \([0-9]*\).*/\1/p' <<<"$last")
  ft=$(sed -n 's/.* ft: \([0-9]*\).*/\1/p' <<<"$last")
  findings=$(find "$BUILD/findings/$h" -maxdepth 1 -type f -newer "$stamp" | wc -l)
  total_findings=$((total_findings + findings))
  printf '%-22s %10s %8s %8s %6s %9s  %s\n' "$h" "${execs:-?}" "${cov:-?}" "${ft:-?}" "$secs" "$findings" "${notes[*]:-ok}"
  if [[ $findings -gt 0 ]]; then
    # The report's head, and each input as base64 (up to 4 KB), so that a finding on a machine
    # whose files are gone (CI) can be rebuilt: base64 -d > input; BUILD/fuzz/<harness> input.
    grep -m 12 -E 'ERROR|runtime error|SUMMARY|ALARM|out-of-memory|#[0-5] ' "$log" | sed 's/^/    | /' || true
    find "$BUILD/findings/$h" -maxdepth 1 -type f -newer "$stamp" | while read -r f; do
      if [[ $(stat -c %s "$f") -le 4096 ]]; then echo "    $(basename "$f") (base64): $(base64 -w0 "$f")"; fi
    done
  fi
done
echo "fuzz.sh: logs in $BUILD/findings/<harness>.log; $total_findings finding(s)"
[[ $total_findings -eq 0 ]]
