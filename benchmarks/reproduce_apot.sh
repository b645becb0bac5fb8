#!/usr/bin/env bash
# The APoT comparison on CIFAR-10 (docs/apot.md), one command, one budget for every
# row, then a markdown table on stdout built from each run's summary.json:
#   FP32; APoT 4/4, 3/3, 2/2 initialized progressively (benchmarks/progressive_apot.sh);
#   uniform 3/3 and PoT 3/3 (level sets, paper Table 3); APoT 3/3 without WN and without RCF
#   (Table 3's ablation: apot.wn=off; apot.rcf=off = no clipping, alpha = max|W|).
# Every 3/3 row uses the same recipe (examples/configs/apot_resnet20_3bit.json) and starts
# from the same APoT 4/4 checkpoint, so it differs from APoT 3/3 in one setting -- except the
# row without WN, which starts from the FP32 run: the 4/4 run's alphas were learned on
# normalized weights (about 3) and would put every raw weight (std about 0.1) on level 0;
# from FP32 its alphas start at apot_w_alpha * std(W) (docs/apot.md). Without WN the paper
# reports divergence (Table 3: 2.0%); a run that stops with an error (a non-finite loss or
# alpha) is shown as "diverged" with the error line, its log is RUNS_DIR/NAME.log. A weight
# alpha that SGD pushes below 0 acts as |alpha|, as in the authors' code (quant/apot/apot.hpp).
#
#   benchmarks/reproduce_apot.sh [RUNS_DIR]          (default runs/apot)
#   APOT_SET="train_per_class=20 epochs=1 test_images=500" benchmarks/reproduce_apot.sh runs/apot_smoke
#
# Budget (examples/configs/apot_resnet20_*.json): ResNet-20 (1x1-conv shortcut, as the
# authors'), 10,000 training images (1,000 per class), the full 10,000 test images, 20
# epochs per run, 8 runs. APOT_SET overrides keys in every run; TRAIN_CIFAR names the trainer.
# Runs whose summary.json exists are not rerun; an interrupted run (checkpoint, no summary,
# no error in its log) is resumed. Columns: best and final test accuracy (the
# authors report the best epoch), model bytes (quant/summary.hpp), FixOPs per image of the
# fixed-point layers and their ratio to uniform quantization at the same bits (Table 1's rule).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
RUNS="${1:-runs/apot}"
TRAIN="${TRAIN_CIFAR:-$ROOT/build/bin/train_cifar}"
[ -x "$TRAIN" ] || { echo "reproduce_apot.sh: no trainer at $TRAIN (build target train_cifar)" >&2; exit 2; }
export TRAIN_CIFAR="$TRAIN"

"$ROOT/benchmarks/progressive_apot.sh" "$RUNS"

SETS=()
for kv in ${APOT_SET:-}; do SETS+=(--set "$kv"); done
variant() {  # variant NAME INIT_STAGE key=value...
  local name="$1" out="$RUNS/$1" from="$2"
  shift 2
  [ -f "$out/summary.json" ] && { echo "== $name: done already" >&2; return; }
  if [ -f "$out/checkpoint.bin" ] && ! grep -q "error:" "$RUNS/$name.log" 2>/dev/null; then
    echo "== $name: resuming $out" >&2  # interrupted (not failed): continue bit-exactly
    "$TRAIN" --resume "$out" 2>&1 | tee -a "$RUNS/$name.log" >&2 || true
    return
  fi
  rm -rf "$out"  # a failed earlier attempt, or one stopped before its first checkpoint
  local extra=()
  for kv in "$@"; do extra+=(--set "$kv"); done
  echo "== $name: $* (from $from)" >&2
  mkdir -p "$RUNS"
  "$TRAIN" --config "$ROOT/examples/configs/apot_resnet20_3bit.json" "${SETS[@]}" "${extra[@]}" \
    --set "out=$out" --init-from "$RUNS/$from/checkpoint.bin" 2>&1 | tee "$RUNS/$name.log" >&2 || true
}
variant uniform_w3a3 w4a4 apot.levels=uniform
variant pot_w3a3 w4a4 apot.levels=pot
variant apot_w3a3_nown fp32 apot.wn=off
variant apot_w3a3_norcf w4a4 apot.rcf=off

python3 - "$RUNS" <<'PY'
import json, os, sys
runs = sys.argv[1]
rows = [("FP32", "fp32"), ("APoT 4/4 (from FP32)", "w4a4"), ("APoT 3/3 (from 4/4)", "w3a3"),
        ("APoT 2/2 (from 3/3)", "w2a2"), ("uniform 3/3", "uniform_w3a3"), ("PoT 3/3", "pot_w3a3"),
        ("APoT 3/3 without WN", "apot_w3a3_nown"), ("APoT 3/3 without RCF", "apot_w3a3_norcf")]
first = json.load(open(os.path.join(runs, "fp32", "summary.json")))
print(f"ResNet-20, {first['train_images']} training images, {first['test_images']} test images, "
      f"{first['epochs']} epochs per run ({runs})\n")
print("| run | W/A | levels | WN | RCF | best test acc | final test acc | model bytes | FixOPs/image | vs uniform | wall s |")
print("|---|---|---|---|---|---|---|---|---|---|---|")
for label, d in rows:
    path = os.path.join(runs, d, "summary.json")
    if not os.path.exists(path):
        log = os.path.join(runs, d + ".log")
        err = [l.strip() for l in open(log) if "error:" in l] if os.path.exists(log) else []
        print(f"| {label} | | | | | diverged / failed: {err[-1] if err else 'no summary.json'} | | | | | |")
        continue
    s = json.load(open(path))
    c = s["config"]
    q = c["method"] == "apot"
    fx, fu = s.get("fixops_per_image", 0), s.get("fixops_uniform_per_image", 0)
    a = c["apot"] if q else {}
    print(f"| {label} | {s['w_bits']}/{s['a_bits']} | {a.get('levels', '-')} | "
          f"{a.get('wn', '-')} | {a.get('rcf', '-')} | {100 * s['best_test_acc']:.2f}% | "
          f"{100 * s['final_test_acc']:.2f}% | {s['model_bytes']} | {fx:.0f} | "
          f"{(f'{fx / fu:.3f}') if fu else '-'} | {s['wall_s']:.0f} |")
PY
