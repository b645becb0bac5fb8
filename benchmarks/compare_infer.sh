#!/usr/bin/env bash
# Inference speed, side by side: lowbit's low-bit inference path (include/lowbit/infer/) on
# exported DoReFa 1/1, 2/2, 4/4, SLB, APoT and ALQ models of ResNet-20 and VGG-Small, lowbit's
# FP32 model, PyTorch FP32 eval (its faster layout) and PyTorch int8 (static post-training
# quantization, FX graph mode; fbgemm where PyTorch has it, else oneDNN).
#
#   benchmarks/compare_infer.sh [--quick] [--reps R] [--threads "1 2"] [--batch "1 128"] [--models resnet20,vgg_small]
#
# Prints one JSON object per line on stdout (progress on stderr):
#   {"model", "method", "w_bits", "a_bits", "threads", "batch", "lowbit_img_s",
#    "lowbit_fp32_img_s", "pytorch_fp32_img_s", "pytorch_int8_img_s", ...}
# plus row, fake_quant_img_s (lowbit's fake-quantized evaluation, train_cifar --eval's path),
# model_bytes, peak_rss_mb, kernels (layers per kernel: binary, integer, float), int8_engine
# and pytorch_fp32_layout. The FP32 row has method "fp32" and lowbit_img_s = lowbit_fp32_img_s.
# lowbit's three figures of a row come from one process (benchmarks/bench_infer.cpp); PyTorch's
# from one process per (model, threads, batch), run just before that configuration's rows.
# The models are random-init exports (bench_infer --write-models): speed does not depend on
# the weights' values.
#
#   --quick   one round of timing (reps 1), batch 128 only: a few minutes
#   default   5 timing reps per figure (the median), batch 1 and 128, threads 1 and 2
#   --reps R  R timing reps per figure (after --quick: overrides its 1)
#
# Environment: LOWBIT_BUILD_DIR (default <repo>/build: configured Release, bench_infer built),
# LOWBIT_BENCH_INFER (a bench_infer binary to use instead), LOWBIT_PYTORCH_PYTHON.
# Benchmarks need the machine to themselves: pause training runs (kill -STOP) first.
set -euo pipefail
log() { echo "compare_infer: $*" >&2; }
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

QUICK=0
REPS=""
THREADS="1 2"
BATCHES="1 128"
MODELS="resnet20,vgg_small"
while [ $# -gt 0 ]; do
  case "$1" in
    --quick) QUICK=1; BATCHES="128" ;;
    --reps) REPS="$2"; shift ;;
    --threads) THREADS="$2"; shift ;;
    --batch) BATCHES="$2"; shift ;;
    --models) MODELS="$2"; shift ;;
    *) log "unknown argument '$1' (see the top of benchmarks/compare_infer.sh)"; exit 2 ;;
  esac
  shift
done
if [ -z "$REPS" ]; then
  REPS=5
  [ "$QUICK" = 1 ] && REPS=1
fi
require_python torch

BIN="${LOWBIT_BENCH_INFER:-}"
[ -n "$BIN" ] || BIN="$(build_release bench_infer)"
MODEL_DIR="$(mktemp -d)"
trap 'rm -rf "$MODEL_DIR"' EXIT
log "writing the random-init exports to $MODEL_DIR"
"$BIN" --write-models "$MODEL_DIR" >/dev/null
ROWS="$("$BIN" --list | cut -d' ' -f1)"

# merge LOWBIT_JSON PYTORCH_JSON ROW: one line with both.
merge() {
  "$PY" -c 'import json, sys
a, b = json.loads(sys.argv[1]), json.loads(sys.argv[2])
a["row"] = sys.argv[3]
for k in ("pytorch_fp32_img_s", "pytorch_int8_img_s", "int8_engine", "pytorch_fp32_layout"):
    a[k] = b[k]
print(json.dumps(a))' "$1" "$2" "$3"
}

for model in ${MODELS//,/ }; do
  for t in $THREADS; do
    for b in $BATCHES; do
      log "$model, $t thread(s), batch $b: PyTorch"
      pt="$(cd "$ROOT/benchmarks" && "$PY" bench_infer_pytorch.py --model "$model" --threads "$t" --batch "$b" --reps "$REPS")"
      log "$model, $t thread(s), batch $b: lowbit fp32"
      merge "$("$BIN" --model "$model" --threads "$t" --batch "$b" --reps "$REPS")" "$pt" fp32
      for row in $ROWS; do
        log "$model, $t thread(s), batch $b: lowbit $row"
        merge "$("$BIN" --file "$MODEL_DIR/${model}_${row}.lbq" --threads "$t" --batch "$b" --reps "$REPS" --profile)" "$pt" "$row"
      done
    done
  done
done
