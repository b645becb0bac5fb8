#!/usr/bin/env bash
# APoT's progressive initialization on CIFAR-10 (paper Sec. 4.2; the authors' CIFAR scripts,
# docs/notes/apot.md §1.6): FP32 -> APoT 4/4 -> 3/3 -> 2/2, each stage started with
#   train_cifar --init-from <previous stage>/checkpoint.bin
# (matching tensors copied; FP32 "X.weight" -> quantized "X.wq.latent"; see docs/apot.md).
#
#   benchmarks/progressive_apot.sh [RUNS_DIR]        (default runs/apot)
#
# Recipes: examples/configs/apot_resnet20_{fp32,4bit,3bit,2bit}.json (ResNet-20 with the
# authors' 1x1-conv shortcut, 1,000 training images per class, the full test set, 20 epochs
# per stage; FP32 lr 0.1 / wd 5e-4, quantized lr 0.04 / wd 1e-4, 2-bit wd 3e-5).
# Environment:
#   APOT_SET       extra "key=value" overrides for every stage, space separated, e.g. a smoke
#                  test: APOT_SET="train_per_class=20 epochs=1 test_images=500"
#   TRAIN_CIFAR    the trainer binary (default build/bin/train_cifar)
# A stage whose summary.json exists is skipped, and an interrupted stage (a checkpoint.bin
# but no summary.json) is resumed with train_cifar --resume, so an interrupted script can
# simply be rerun; the resumed run is bit-exact with an uninterrupted one.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
RUNS="${1:-runs/apot}"
TRAIN="${TRAIN_CIFAR:-$ROOT/build/bin/train_cifar}"
[ -x "$TRAIN" ] || { echo "progressive_apot.sh: no trainer at $TRAIN (build target train_cifar)" >&2; exit 2; }

SETS=()
for kv in ${APOT_SET:-}; do SETS+=(--set "$kv"); done

# stage NAME CONFIG [INIT_FROM_STAGE] [extra args...]
stage() {
  local name="$1" cfg="$2" from="$3"
  shift 3
  local out="$RUNS/$name"
  if [ -f "$out/summary.json" ]; then
    echo "== $name: done already ($out/summary.json)" >&2
    return
  fi
  if [ -f "$out/checkpoint.bin" ]; then
    echo "== $name: resuming $out" >&2
    "$TRAIN" --resume "$out" 2>&1 | tee -a "$RUNS/$name.log" >&2
    return
  fi
  local init=()
  [ -n "$from" ] && init=(--init-from "$RUNS/$from/checkpoint.bin")
  echo "== $name: $cfg ${init[*]} $*" >&2
  mkdir -p "$RUNS"
  rm -rf "$out"  # an attempt stopped before its first checkpoint starts over
  # the trainer's output goes to stderr and RUNS_DIR/NAME.log; stdout stays free for tables
  "$TRAIN" --config "$ROOT/examples/configs/$cfg" "${SETS[@]}" --set "out=$out" "${init[@]}" "$@" 2>&1 |
    tee "$RUNS/$name.log" >&2
}

stage fp32 apot_resnet20_fp32.json ""
stage w4a4 apot_resnet20_4bit.json fp32
stage w3a3 apot_resnet20_3bit.json w4a4
stage w2a2 apot_resnet20_2bit.json w3a3
