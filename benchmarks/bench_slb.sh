#!/usr/bin/env bash
# SLB speed and memory (docs/performance.md, "SLB: the cost of the search"): ResNet-20
# training images/s and peak RSS for FP32, STE 2/2, SLB 1/1, 2/2, 4/4 (with SBN; 4/4 also
# with the discrete pass on float convs instead of integer codes, slb_integer_pass = false)
# and SLB 4/32 without SBN, with their ratios to lowbit's own FP32 step measured in the
# same rounds.
#
#   benchmarks/bench_slb.sh [ROUNDS] [extra bench_slb args, e.g. --threads 2 --steps 5]
#
# One process per configuration and round (so peak RSS is per configuration); the order of
# the configurations is reversed every other round so machine noise hits them alike. Per
# configuration: the median over rounds of bench_slb's median step time; then one more run
# per configuration for its live memory (see below). Prints a markdown table.
# Environment: LOWBIT_BUILD_DIR (default <repo>/build; bench_slb is built if missing).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BUILD_DIR="${LOWBIT_BUILD_DIR:-$ROOT/build}"
EXE="$BUILD_DIR/bin/bench_slb"
if [[ ! -x "$EXE" ]]; then
  cmake -S "$ROOT" -B "$BUILD_DIR" -DCMAKE_BUILD_TYPE=Release >&2
  cmake --build "$BUILD_DIR" --target bench_slb -j "$(nproc 2>/dev/null || echo 2)" >&2
fi
ROUNDS="${1:-3}"
shift || true
CONFIGS=(
  "FP32|--method fp32 --w-bits 32 --a-bits 32"
  "STE 2/2|--method ste --w-bits 2 --a-bits 2"
  "SLB 1/1 SBN|--method slb --w-bits 1 --a-bits 1 --sbn 1"
  "SLB 2/2 SBN|--method slb --w-bits 2 --a-bits 2 --sbn 1"
  "SLB 4/4 SBN|--method slb --w-bits 4 --a-bits 4 --sbn 1"
  "SLB 4/4 SBN, float pass|--method slb --w-bits 4 --a-bits 4 --sbn 1 --integer 0"
  "SLB 4/32 no SBN|--method slb --w-bits 4 --a-bits 32 --sbn 0"
)
tmp="$(mktemp)"
trap 'rm -f "$tmp"' EXIT
for ((r = 0; r < ROUNDS; ++r)); do
  order=("${CONFIGS[@]}")
  if ((r % 2 == 1)); then
    order=()
    for ((k = ${#CONFIGS[@]} - 1; k >= 0; --k)); do order+=("${CONFIGS[k]}"); done
  fi
  for c in "${order[@]}"; do
    IFS='|' read -r label args <<<"$c"
    # shellcheck disable=SC2086
    line="$("$EXE" $args "$@")"
    echo "round $((r + 1)) $label: $line" >&2
    echo "$label|$line" >>"$tmp"
  done
done
# Live memory: glibc's default allocator keeps freed heap chunks resident, so peak RSS also
# counts its fragmentation, which shifts with the order of allocations (the same FP32 step
# measured 269 MB and 353 MB in two builds). With every allocation above 64 KB its own
# mapping, returned to the system when freed, peak RSS is the peak of what lowbit holds.
# (Since lowbit's page pool, core/block_cache.hpp, large tensors are mappings anyway on Linux,
# and the two columns agree within a few MB.)
for c in "${CONFIGS[@]}"; do
  IFS='|' read -r label args <<<"$c"
  # shellcheck disable=SC2086
  line="$(MALLOC_MMAP_THRESHOLD_=65536 "$EXE" $args "$@" --steps 2 --warmup 1)"
  echo "live $label: $line" >&2
  echo "live $label|$line" >>"$tmp"
done
python3 - "$tmp" <<'PY'
import json, statistics, sys
rows = {}
order = []
for raw in open(sys.argv[1]):
    label, js = raw.rstrip("\n").split("|", 1)
    if label not in rows:
        rows[label] = []
        order.append(label)
    rows[label].append(json.loads(js))
def med(label, key):
    return statistics.median(r[key] for r in rows[label])
f_ms, f_rss, f_live = med("FP32", "step_ms"), med("FP32", "peak_rss_mb"), med("live FP32", "peak_rss_mb")
t = rows["FP32"][0]
print(f"ResNet-20, batch {t['batch']}, {t['threads']} threads, {len(rows['FP32'])} rounds (median step time)\n")
print("| config | images/s | step time / FP32 | peak RSS (MB) | RSS / FP32 | live peak (MB) | live / FP32 |")
print("|---|---|---|---|---|---|---|")
for label in order:
    if label.startswith("live "):
        continue
    ms, rss, live = med(label, "step_ms"), med(label, "peak_rss_mb"), med("live " + label, "peak_rss_mb")
    print(f"| {label} | {t['batch'] * 1000 / ms:.1f} | {ms / f_ms:.2f}x | {rss:.0f} | {rss / f_rss:.2f}x "
          f"| {live:.0f} | {live / f_live:.2f}x |")
PY
