#!/usr/bin/env bash
# Reproduces the SLB paper's super-resolution experiment (Sec. 4.3, Fig. 2; issue 30) at a
# budget that fits this machine: VDSR (20 convs of 64 channels) trained on the 291 images
# with x2/x3/x4 pairs, in FP32, with 1-bit weights by DoReFa (method ste: sign(w) mean|w|,
# DoReFa's 1-bit rule) and by SLB (1-bit, each layer scaled to the He spread: docs/slb.md, "Without
# BN"); first and last convs FP32, activations FP32 (the paper quantizes weights only).
# Every row: examples/configs/sr/vdsr_<row>.json -- SGD lr 0.1 x0.1 at 25/50/75% of the run (VDSR's
# schedule, scaled), momentum 0.9, weight decay 1e-4, batch 64 patches of 41x41, VDSR's adjustable
# gradient clipping with theta 1e-4 (docs/super_resolution.md says how it was chosen), 20 epochs of 100 steps = 128,000 patches, seed 0.
#
#   benchmarks/reproduce_sr.sh            # the three rows (about 2 hours each on 2 cores), then
#                                         # the evaluation, the table and the pictures
#   SR_TINY=1 benchmarks/reproduce_sr.sh  # 2 epochs of 2 steps of a 4-layer model: proves the
#                                         # script end to end in a few minutes
#
# A row whose summary.json exists is not rerun; one with only a checkpoint is resumed
# (bit-exactly). Extra arguments go to every training call (e.g. --set threads=1).
# Writes (full budget): docs/results/sr_paper.json (the rows: model, w_bits, set, scale,
# psnr_y, budget), docs/results/sr/*.png + index.html (HR | bicubic | FP32 | DoReFa | SLB crops,
# Fig. 2's images), and prints the markdown table of docs/results.md.
# Environment: LOWBIT_BUILD_DIR (default <repo>/build), SR_TINY, SR_RUNS (default runs/).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BUILD_DIR="${LOWBIT_BUILD_DIR:-$ROOT/build}"
EXE="$BUILD_DIR/bin/train_sr"
if [[ ! -x "$EXE" ]]; then
  cmake -S "$ROOT" -B "$BUILD_DIR" -DCMAKE_BUILD_TYPE=Release >&2
  cmake --build "$BUILD_DIR" --target train_sr -j "$(nproc 2>/dev/null || echo 2)" >&2
fi
BUDGET=()
RUNS="${SR_RUNS:-$ROOT/runs}"
OUT_JSON="$ROOT/docs/results/sr_paper.json"
OUT_PICS="$ROOT/docs/results/sr"
PREFIX="vdsr_"
if [[ "${SR_TINY:-0}" == 1 ]]; then
  BUDGET=(--set epochs=2 --set steps_per_epoch=2 --set milestones=[1] --set depth=4 --set width=16 --set batch=8
          --set eval_every=1 --set eval_scales=[2,3] --set test_sets=Set5)
  PREFIX="vdsr_tiny_"
  OUT_JSON="$RUNS/${PREFIX}sr_paper.json"
  OUT_PICS="$RUNS/${PREFIX}pictures"
fi
mkdir -p "$RUNS"

for row in fp32 dorefa slb; do
  out="$RUNS/$PREFIX$row"
  if [[ -f "$out/summary.json" ]]; then
    echo "[$row] done already ($out/summary.json)" >&2
  elif [[ -f "$out/checkpoint.bin" ]]; then
    echo "[$row] resuming $out" >&2
    "$EXE" --resume "$out" "$@" >>"$out/log.txt" 2>&1
  else
    mkdir -p "$out"
    echo "[$row] train_sr --config examples/configs/sr/vdsr_$row.json ${BUDGET[*]} --out $out $*" >&2
    "$EXE" --config "$ROOT/examples/configs/sr/vdsr_$row.json" "${BUDGET[@]}" --out "$out" "$@" >"$out/log.txt" 2>&1
  fi
done

"$EXE" --eval "$RUNS/${PREFIX}fp32" --eval "$RUNS/${PREFIX}dorefa" --eval "$RUNS/${PREFIX}slb" \
  --pictures "$OUT_PICS" --json "$OUT_JSON"
python3 - "$OUT_JSON" <<'PY'
import json, sys
rows = json.load(open(sys.argv[1]))
paper = {"fp32": "VDSR 37.53 / 33.66 (Set5 x2 / x3, Kim et al.)", "bicubic": "33.66 / 30.39 (Set5)"}
cells = {}
for r in rows:
    cells.setdefault((r["set"], r["scale"]), {})[r["model"]] = r["psnr_y"]
models = [m for m in ["bicubic", "fp32", "dorefa", "slb"] if any(m in c for c in cells.values())]
print("| set | scale | " + " | ".join(models) + " |")
print("|---|---|" + "---|" * len(models))
for (s, k), c in sorted(cells.items()):
    print(f"| {s} | x{k} | " + " | ".join(f"{c[m]:.2f}" if m in c else "" for m in models) + " |")
PY
