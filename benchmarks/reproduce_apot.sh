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
#
# BUDGET=paper: the authors' CIFAR protocol (issue 28; method notes §1.6) -- all 50,000
# training images, the full test set, E epochs per stage (APOT_EPOCHS, default 100; the
# authors' code uses 300) with lr x0.1 at 50% and 75% of E, SGD momentum 0.9 (not Nesterov),
# batch 128, crop + flip, and every stage initialized from the one before: FP32 from the zoo
# (APOT_FP32, default data/pretrained/resnet20_b_fp32/model.safetensors: the 1x1-conv
# shortcut the authors' code uses) -> 4/4 (lr 0.04, wd 1e-4) -> 3/3 (0.04, 1e-4) -> 2/2
# (0.04, 3e-5); uniform 3/3, PoT 3/3 and APoT 3/3 without RCF from the same 4/4; and the
# appendix's Table 4 rows: 3-bit weights, FP32 activations, from scratch, with and without
# WN at weight-alpha learning rates 0.02 (the code's) and 0.2 (APOT_APPENDIX_EPOCHS epochs,
# default E / 2; Table 4's own rates are in a figure our copy of the paper lacks).
#   BUDGET=paper benchmarks/reproduce_apot.sh [RUNS_DIR]   (default runs/apot_paper)
# Rows into docs/results/apot_paper.json (APOT_JSON; objects: row, init_from, levels, w_bits,
# a_bits, rcf, wn, epochs, final_test_acc, best_test_acc, model, command; a diverged run: row,
# diverged, command) and the table on stdout.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
if [ "${BUDGET:-small}" = paper ]; then
  RUNS="${1:-runs/apot_paper}"
  TRAIN="${TRAIN_CIFAR:-$ROOT/build/bin/train_cifar}"
  [ -x "$TRAIN" ] || { echo "reproduce_apot.sh: no trainer at $TRAIN (build target train_cifar)" >&2; exit 2; }
  E="${APOT_EPOCHS:-100}"
  [[ "$E" =~ ^[1-9][0-9]*$ ]] || { echo "reproduce_apot.sh: APOT_EPOCHS=$E: expected a whole number >= 1" >&2; exit 2; }
  EA="${APOT_APPENDIX_EPOCHS:-$(( E > 1 ? E / 2 : 1 ))}"
  [[ "$EA" =~ ^[1-9][0-9]*$ ]] ||
    { echo "reproduce_apot.sh: APOT_APPENDIX_EPOCHS=$EA: expected a whole number >= 1" >&2; exit 2; }
  FP32="${APOT_FP32:-$ROOT/data/pretrained/resnet20_b_fp32/model.safetensors}"
  JSON="${APOT_JSON:-$ROOT/docs/results/apot_paper.json}"
  [ -f "$FP32" ] || { echo "reproduce_apot.sh: no FP32 ResNet-20 (option B) at $FP32: train the zoo model first" \
                           "(data/pretrained/README.md) or set APOT_FP32" >&2; exit 2; }
  mkdir -p "$RUNS"
  SETS=()
  for kv in ${APOT_SET:-}; do SETS+=(--set "$kv"); done
  # paper_run NAME CONFIG INIT(stage name, a file, or "") EPOCHS key=value...
  paper_run() {
    local name="$1" cfg="$2" from="$3" ep="$4" out="$RUNS/$1"
    shift 4
    [ -f "$out/summary.json" ] && { echo "== $name: done already" >&2; return; }
    if [ -f "$out/checkpoint.bin" ] && ! grep -q "error:" "$RUNS/$name.log" 2>/dev/null; then
      echo "== $name: resuming $out" >&2
      "$TRAIN" --resume "$out" 2>&1 | tee -a "$RUNS/$name.log" >&2 || true
      return
    fi
    rm -rf "$out"
    local init=() extra=()
    if [ -n "$from" ]; then
      if [ -f "$from" ]; then init=(--init-from "$from"); else init=(--init-from "$RUNS/$from/checkpoint.bin"); fi
      [ -f "${init[1]}" ] || { echo "== $name: skipped, ${init[1]} does not exist (its stage failed)" >&2; return; }
    fi
    for kv in "$@"; do extra+=(--set "$kv"); done
    local cmd=("$TRAIN" --config "$ROOT/examples/configs/$cfg" --set train_per_class=0 --set train_images=0
               --set test_images=0 --set "epochs=$ep" --set schedule=multistep
               --set "milestones=[$((ep / 2)),$((ep * 3 / 4))]" --set nesterov=false "${extra[@]}" "${SETS[@]}"
               --set "out=$out" "${init[@]}")
    echo "== $name: ${cmd[*]}" >&2
    printf '%s\n' "${cmd[*]}" > "$RUNS/$name.command"
    "${cmd[@]}" 2>&1 | tee "$RUNS/$name.log" >&2 || true
  }
  paper_run w4a4 apot_resnet20_4bit.json "$FP32" "$E"
  paper_run w3a3 apot_resnet20_3bit.json w4a4 "$E"
  paper_run w2a2 apot_resnet20_2bit.json w3a3 "$E"
  paper_run uniform_w3a3 apot_resnet20_3bit.json w4a4 "$E" apot.levels=uniform
  paper_run pot_w3a3 apot_resnet20_3bit.json w4a4 "$E" apot.levels=pot
  paper_run apot_w3a3_norcf apot_resnet20_3bit.json w4a4 "$E" apot.rcf=off
  for wn in on off; do
    for lr in 0.02 0.2; do
      paper_run "w3a32_scratch_wn${wn}_alr${lr}" apot_resnet20_3bit.json "" "$EA" a_bits=32 last_layer=8bit \
        "apot.wn=$wn" "apot.w_alpha_lr=$lr"
    done
  done
  python3 - "$RUNS" "$FP32" "$JSON" "$ROOT" <<'PY'
import json, os, sys
runs, fp32, out, root = sys.argv[1:5]
rows = [("APoT 4/4 (from FP32)", "w4a4"), ("APoT 3/3 (from 4/4)", "w3a3"), ("APoT 2/2 (from 3/3)", "w2a2"),
        ("uniform 3/3 (from 4/4)", "uniform_w3a3"), ("PoT 3/3 (from 4/4)", "pot_w3a3"),
        ("APoT 3/3 without RCF (from 4/4)", "apot_w3a3_norcf")]
rows += [(f"3/32 from scratch, WN {wn}, alpha lr {lr}", f"w3a32_scratch_wn{wn}_alr{lr}")
         for wn in ("on", "off") for lr in ("0.02", "0.2")]
paper = {"w4a4": 92.3, "w3a3": 92.2, "w2a2": 91.0}
objs = []
print("| row | levels | W/A | RCF | WN | epochs | final test acc | best test acc | paper |")
print("|---|---|---|---|---|---|---|---|---|")
for label, d in rows:
    path = os.path.join(runs, d, "summary.json")
    cmd_file = os.path.join(runs, d + ".command")
    cmd = open(cmd_file).read().strip() if os.path.exists(cmd_file) else ""
    if not os.path.exists(path):
        log = os.path.join(runs, d + ".log")
        err = [l.strip() for l in open(log) if "error:" in l] if os.path.exists(log) else []
        print(f"| {label} | | | | | | {'diverged: ' + err[-1] if err else 'not run yet'} | | |")
        if err:
            objs.append({"row": d, "diverged": err[-1], "command": cmd})
        continue
    s = json.load(open(path))
    c = s["config"]
    a = c.get("apot", {})
    o = {"row": d, "init_from": c.get("init_from", ""), "levels": a.get("levels"), "w_bits": s["w_bits"], "a_bits": s["a_bits"],
         "rcf": a.get("rcf"), "wn": a.get("wn"), "epochs": c["epochs"],
         "final_test_acc": s["final_test_acc"], "best_test_acc": s["best_test_acc"],
         "model": os.path.relpath(os.path.join(runs, d, "checkpoint.bin"), root), "command": cmd}
    objs.append(o)
    print(f"| {label} | {o['levels']} | {o['w_bits']}/{o['a_bits']} | {o['rcf']} | {o['wn']} | {o['epochs']} | "
          f"{100 * o['final_test_acc']:.2f}% | {100 * o['best_test_acc']:.2f}% | {paper.get(d, '')} |")
os.makedirs(os.path.dirname(out), exist_ok=True)
with open(out + ".tmp", "w") as f:
    json.dump(objs, f, indent=2)
    f.write("\n")
os.replace(out + ".tmp", out)
print(f"\nrows: {out}")
PY
  exit 0
fi
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
