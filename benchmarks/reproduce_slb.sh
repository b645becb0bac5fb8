#!/usr/bin/env bash
# Reproduces the SLB table (docs/slb.md, docs/results.md): ResNet-20 on a CIFAR-10
# subset, one budget for every row, one command:
#
#   benchmarks/reproduce_slb.sh            # 10,000 training images (1000 per class), the full
#                                          # 10,000-image test set, 20 epochs
#   (Run time, not measured as a whole: 200,000 training images per row; bench_slb's 1-thread
#   step times on a loaded 2-core machine (docs/performance.md) give about 20 minutes for the
#   FP32 row and up to 1.45x that for SLB with SBN, several hours for the table. On a busy
#   machine pass --set threads=1: there, 2-thread steps were 3x slower than 1-thread ones.)
#   SLB_TINY=1 benchmarks/reproduce_slb.sh # 200 training images, 500 test images, 1 epoch:
#                                          # proves the script end to end in a few minutes
#
# Rows: FP32; DoReFa 1/1 and 2/2 (method ste: BWN for 1-bit weights, DoReFa for 2-bit and for
# activations); SLB 1/1, 1/32, 2/2, 4/4 (exp schedule, SBN); SLB 1/1 without SBN; SLB 1/1 with
# the linear and the sin schedule; and one row that is not the paper's: SLB 1/1 with T_e = 1000
# instead of 10, a temperature schedule that sharpens P within this short budget
# (docs/results.md). Every row: first conv and last FC in FP32, SGD lr 0.1
# cosine, batch 128, weight decay 5e-4, seed 0.
#
# Runs go to $SLB_RUNS (default runs/reproduce_slb[_tiny]/<row>/). A row whose summary.json
# exists is not rerun; one with only a checkpoint (interrupted) is resumed. Extra arguments
# are passed to every train_cifar call (e.g. --set threads=2 or --set data=DIR).
# Prints a markdown table (row, command, test accuracy, wall time) built from each run's
# summary.json, and writes it to <runs>/table.md; draws <runs>/test_acc.svg (every row's test
# accuracy per epoch), schedules.svg (SLB 1/1 with the exp, linear and sin schedules) and
# sharpness.svg (mean max_i P_i per epoch of the SLB rows) with build/bin/report --plot.
#
# Environment: LOWBIT_BUILD_DIR (default <repo>/build; target train_cifar is built there if
# missing), SLB_TINY, SLB_RUNS.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BUILD_DIR="${LOWBIT_BUILD_DIR:-$ROOT/build}"
EXE="$BUILD_DIR/bin/train_cifar"
REPORT="$BUILD_DIR/bin/report"
if [[ ! -x "$EXE" || ! -x "$REPORT" ]]; then
  cmake -S "$ROOT" -B "$BUILD_DIR" -DCMAKE_BUILD_TYPE=Release >&2
  cmake --build "$BUILD_DIR" --target train_cifar report -j "$(nproc 2>/dev/null || echo 2)" >&2
fi

if [[ "${SLB_TINY:-0}" == 1 ]]; then
  BUDGET=(--set train_per_class=20 --set test_images=500 --set epochs=1)
  RUNS="${SLB_RUNS:-$ROOT/runs/reproduce_slb_tiny}"
else
  BUDGET=(--set train_per_class=1000 --set test_images=0 --set epochs=20)
  RUNS="${SLB_RUNS:-$ROOT/runs/reproduce_slb}"
fi
COMMON=(--set model=resnet20 --set batch=128 --set lr=0.1 --set schedule=cosine --set weight_decay=5e-4
        --set first_layer=fp32 --set last_layer=fp32 --set seed=0)
mkdir -p "$RUNS"

# name | label | settings
ROWS=(
  "fp32|FP32 32/32|--set method=fp32"
  "dorefa_1w1a|DoReFa 1/1|--set method=ste --set w_bits=1 --set a_bits=1"
  "dorefa_2w2a|DoReFa 2/2|--set method=ste --set w_bits=2 --set a_bits=2"
  "slb_1w1a|SLB 1/1|--set method=slb --set w_bits=1 --set a_bits=1"
  "slb_1w32a|SLB 1/32|--set method=slb --set w_bits=1 --set a_bits=32"
  "slb_2w2a|SLB 2/2|--set method=slb --set w_bits=2 --set a_bits=2"
  "slb_4w4a|SLB 4/4|--set method=slb --set w_bits=4 --set a_bits=4"
  "slb_1w1a_nosbn|SLB 1/1 w/o SBN|--set method=slb --set w_bits=1 --set a_bits=1 --set slb.sbn=false"
  "slb_1w1a_linear|SLB 1/1 linear schedule|--set method=slb --set w_bits=1 --set a_bits=1 --set slb.schedule=linear"
  "slb_1w1a_sin|SLB 1/1 sin schedule|--set method=slb --set w_bits=1 --set a_bits=1 --set slb.schedule=sin"
  "slb_1w1a_te1000|SLB 1/1, T_e = 1000 (not in the paper)|--set method=slb --set w_bits=1 --set a_bits=1 --set slb.t_end=1000"
)

for row in "${ROWS[@]}"; do
  IFS='|' read -r name label settings <<<"$row"
  out="$RUNS/$name"
  if [[ -f "$out/summary.json" ]]; then
    echo "[$name] done already ($out/summary.json)" >&2
    continue
  fi
  # shellcheck disable=SC2206
  args=(${settings})
  if [[ -f "$out/checkpoint.bin" ]]; then
    echo "[$name] resuming $out" >&2
    "$EXE" --resume "$out" >"$out/log.txt" 2>&1
  else
    mkdir -p "$out"
    echo "[$name] train_cifar ${COMMON[*]} ${BUDGET[*]} ${args[*]} --set out=$out $*" >&2
    "$EXE" "${COMMON[@]}" "${BUDGET[@]}" "${args[@]}" --set out="$out" "$@" >"$out/log.txt" 2>&1
  fi
done

table="$RUNS/table.md"
{
  echo "| row | W/A | settings (train_cifar \$COMMON \$BUDGET ...) | test acc. (final) | best | wall time |"
  echo "|---|---|---|---|---|---|"
  for row in "${ROWS[@]}"; do
    IFS='|' read -r name label settings <<<"$row"
    s="$RUNS/$name/summary.json"
    jq -r --arg lbl "$label" --arg cmd "$settings" '
      "| \($lbl) | \(.w_bits)/\(.a_bits) | `\($cmd)` | \(.final_test_acc * 10000 | round / 100)% | \(.best_test_acc * 10000 | round / 100)% | \(.wall_s | round) s |"' "$s"
  done
  echo
  echo "COMMON = \`${COMMON[*]}\`; BUDGET = \`${BUDGET[*]}\`; extra: \`$*\`."
  echo "Budget: $(jq -r '"\(.train_images) training images, \(.test_images) test images, \(.epochs) epochs, \(.threads) threads"' "$RUNS/fp32/summary.json")."
} >"$table"
cat "$table"

dirs=()
for row in "${ROWS[@]}"; do dirs+=("$RUNS/${row%%|*}"); done
"$REPORT" --plot test_acc --svg "$RUNS/test_acc.svg" --title "Test accuracy per epoch (W_q, discrete BN statistics for SLB)" "${dirs[@]}" >&2
"$REPORT" --plot test_acc --svg "$RUNS/schedules.svg" --title "SLB 1/1: temperature schedules (Fig. 1)" \
  "$RUNS/slb_1w1a" "$RUNS/slb_1w1a_linear" "$RUNS/slb_1w1a_sin" >&2
"$REPORT" --plot mean_max_p --svg "$RUNS/sharpness.svg" --title "Mean of max_i P_i per epoch (SLB Eq. 5)" \
  "${dirs[@]:3}" >&2
