#!/usr/bin/env bash
# Quick start: install deps, build (Release) only what the main job needs, run it.
#
#   examples/quickstart.sh [args passed to the program...]
#
# Environment: LOWBIT_BUILD_DIR (default <repo>/build), LOWBIT_JOBS (default nproc).
set -euo pipefail

# ============================================================================
# The quickstart job -- the ONE place that says what quickstart runs.
#   QUICKSTART_TARGET: CMake target (examples/<name>.cpp) to build and run
#   QUICKSTART_ARGS:   default arguments, given before the user's own arguments
# The main job: ResNet-20 (FP32) on 5,000 CIFAR-10 training images, 10 epochs, tested on
# the full 10,000-image test set; results land in runs/quickstart-<date>-<time>/ (summary.json, ...).
QUICKSTART_TARGET=train_cifar
# Each run gets its own folder, so running the quick start twice never clobbers a result.
QUICKSTART_ARGS=(--config examples/configs/quickstart.json --set "out=runs/quickstart-$(date +%Y%m%d-%H%M%S)")
# ============================================================================

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"   # the program runs from the repo root, so relative paths (configs, data/) work

BUILD_DIR="${LOWBIT_BUILD_DIR:-$ROOT/build}"
JOBS="${LOWBIT_JOBS:-$(nproc 2>/dev/null || echo 2)}"

# Only what building and running the trainer needs; tests/run.sh installs the test set.
scripts/install_deps.sh main

echo "== configure ($BUILD_DIR, Release) =="
cmake -S "$ROOT" -B "$BUILD_DIR" -DCMAKE_BUILD_TYPE=Release -DLOWBIT_BUILD_EXAMPLES=ON

echo "== build $QUICKSTART_TARGET =="
cmake --build "$BUILD_DIR" --target "$QUICKSTART_TARGET" -j "$JOBS"

CMD=("$BUILD_DIR/bin/$QUICKSTART_TARGET" "${QUICKSTART_ARGS[@]}" "$@")
echo "== run: ${CMD[*]} =="
exec "${CMD[@]}"
