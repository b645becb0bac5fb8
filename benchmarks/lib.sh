# Shared by the scripts that build a lowbit binary and run PyTorch beside it
# (compare_pytorch.sh, fp32_side_by_side.sh). Source it after `set -euo pipefail` and after
# defining log() (one line to stderr, with the script's name). It sets
#   ROOT       the repository root
#   BUILD_DIR  $LOWBIT_BUILD_DIR, default <repo>/build (as tests/run.sh)
#   PY         $LOWBIT_PYTORCH_PYTHON, default /usr/bin/python3 (Debian's python3-torch
#              imports only there)
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BUILD_DIR="${LOWBIT_BUILD_DIR:-$ROOT/build}"
PY="${LOWBIT_PYTORCH_PYTHON:-/usr/bin/python3}"

# require_python MODULE...: each module imports with $PY, or one line saying how to get it
# and exit 1.
require_python() {
  local imports
  imports="$(IFS=,; echo "$*")"
  if ! "$PY" -c "import $imports" 2>/dev/null; then
    log "cannot import $* with $PY (python -c 'import $imports' failed); run scripts/install_deps.sh bench (python3-torch, python3-pil) or set LOWBIT_PYTORCH_PYTHON"
    exit 1
  fi
}

# build_release TARGET [CMAKE_ARG...]: configures $BUILD_DIR as a Release build and builds
# TARGET ($LOWBIT_JOBS jobs, default nproc); prints the binary's path. A sanitizer build
# directory is refused: its timings would be meaningless.
build_release() {
  local target="$1"
  shift
  if [ -f "$BUILD_DIR/CMakeCache.txt" ] && grep -q '^LOWBIT_SANITIZE:BOOL=ON' "$BUILD_DIR/CMakeCache.txt"; then
    log "$BUILD_DIR is a sanitizer build; set LOWBIT_BUILD_DIR to a normal (Release) build directory"
    exit 1
  fi
  log "configure + build $target (Release) in $BUILD_DIR"
  cmake -S "$ROOT" -B "$BUILD_DIR" -DCMAKE_BUILD_TYPE=Release "$@" >&2
  cmake --build "$BUILD_DIR" --target "$target" -j "${LOWBIT_JOBS:-$(nproc 2>/dev/null || echo 2)}" >&2
  echo "$BUILD_DIR/bin/$target"
}
