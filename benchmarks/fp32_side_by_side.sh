#!/usr/bin/env bash
# Same recipe, same data, two frameworks: ResNet-20 FP32 on all 50,000 training images of
# the image-folder data, the recipe of examples/configs/resnet20_fp32_full.json shortened to
# EPOCHS epochs (cosine to 0 over those epochs), in lowbit (train_cifar) and in PyTorch 1.13
# (benchmarks/pytorch_quickstart.py --per-class 0). It separates "lowbit trains worse" from
# "this recipe on this data reaches this much" (docs/results.md, the full FP32 run).
#
#   benchmarks/fp32_side_by_side.sh [EPOCHS] [OUT]      (defaults: 15, runs/fp32_side_by_side)
#
# Both run at the same time, 1 thread each, so machine noise hits both alike (about 45 min
# for 15 epochs on 2 cores). Initialization differs by design (each framework's own:
# lowbit Kaiming-normal convs, PyTorch's default), as do the crop/flip/shuffle draws.
# Writes OUT/lowbit/ (train_cifar's metrics.jsonl, summary.json), OUT/pytorch.jsonl, and
# prints one JSON object per framework on stdout:
#   {"framework", "epochs", "train_images", "final_test_acc", "best_test_acc", "images_per_s"}
#
# Environment: LOWBIT_BUILD_DIR (default <repo>/build; configured Release, target
# train_cifar built), LOWBIT_TRAIN_CIFAR (use this binary instead), LOWBIT_PYTORCH_PYTHON
# (default /usr/bin/python3), LOWBIT_DATA (image folders; default ../shared/data/cifar10-jpg),
# LOWBIT_JOBS (build jobs, default nproc).
set -euo pipefail

log() { echo "fp32_side_by_side: $*" >&2; }
# shellcheck source=benchmarks/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
DATA="${LOWBIT_DATA:-$ROOT/../shared/data/cifar10-jpg}"
EPOCHS="${1:-15}"
OUT="${2:-runs/fp32_side_by_side}"

case "$EPOCHS" in
  ''|*[!0-9]*|0) log "EPOCHS = '$EPOCHS', expected a positive integer"; exit 2 ;;
esac
if [ ! -d "$DATA/train" ] || [ ! -d "$DATA/test" ]; then
  log "no train/ and test/ image folders under '$DATA' (set LOWBIT_DATA)"
  exit 2
fi
if [ -e "$OUT" ]; then
  log "'$OUT' exists; pass another OUT or remove it (nothing is overwritten)"
  exit 2
fi
require_python torch PIL
TRAIN="${LOWBIT_TRAIN_CIFAR:-}"
[ -n "$TRAIN" ] || TRAIN="$(build_release train_cifar)"

mkdir -p "$OUT"
log "lowbit and PyTorch, $EPOCHS epochs each, 1 thread each, concurrently; logs in $OUT"
"$TRAIN" --config "$ROOT/examples/configs/resnet20_fp32_full.json" --set "epochs=$EPOCHS" --set threads=1 \
  --set "out=$OUT/lowbit" --set "data=$DATA" > "$OUT/lowbit.log" 2>&1 &
LB=$!
OMP_NUM_THREADS=1 "$PY" "$ROOT/benchmarks/pytorch_quickstart.py" --data "$DATA" --threads 1 \
  --epochs "$EPOCHS" --per-class 0 > "$OUT/pytorch.jsonl" 2> "$OUT/pytorch.log" &
PT=$!
STATUS=0
wait "$LB" || { log "train_cifar failed, see $OUT/lowbit.log"; STATUS=1; }
wait "$PT" || { log "pytorch_quickstart.py failed, see $OUT/pytorch.log"; STATUS=1; }
[ "$STATUS" -eq 0 ] || exit "$STATUS"

"$PY" - "$OUT" <<'EOF'
import json, sys
out = sys.argv[1]
s = json.load(open(f"{out}/lowbit/summary.json"))
print(json.dumps({"framework": "lowbit", "epochs": s["epochs"], "train_images": s["train_images"],
                  "final_test_acc": s["final_test_acc"], "best_test_acc": s["best_test_acc"],
                  "images_per_s": s["images_per_s"]}))
p = [json.loads(l) for l in open(f"{out}/pytorch.jsonl")][-1]
print(json.dumps({"framework": "pytorch", "epochs": p["epochs"], "train_images": p["train_images"],
                  "final_test_acc": p["final_test_acc"], "best_test_acc": p["best_test_acc"],
                  "images_per_s": p["images_per_s"]}))
EOF
