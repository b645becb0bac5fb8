#!/usr/bin/env bash
# Install deps, configure, build and run the whole lowbit test suite.
#
#   tests/run.sh [extra cmake configure args...]
#
# Environment:
#   LOWBIT_BUILD_DIR   build directory (default: <repo>/build)
#   LOWBIT_CMAKE_ARGS  extra cmake configure args (word-split), in addition to "$@"
#   LOWBIT_JOBS        parallel build/test jobs (default: nproc)
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

BUILD_DIR="${LOWBIT_BUILD_DIR:-$ROOT/build}"
JOBS="${LOWBIT_JOBS:-$(nproc 2>/dev/null || echo 2)}"
# shellcheck disable=SC2206
EXTRA_ARGS=(${LOWBIT_CMAKE_ARGS:-} "$@")

# main + what ctest runs besides the C++ binaries (python3, python3-torch); no benchmark extras.
scripts/install_deps.sh tests

echo "== configure ($BUILD_DIR) =="
# LOWBIT_MPI=ON: the tests set installs Open MPI; a configure that does not find it fails
# here, where it would otherwise skip the MPI tests without a word (docs/distributed.md).
cmake -S "$ROOT" -B "$BUILD_DIR" -DLOWBIT_MPI=ON "${EXTRA_ARGS[@]}"

echo "== build (-j $JOBS) =="
cmake --build "$BUILD_DIR" -j "$JOBS"

echo "== test (-j $JOBS) =="
status=0
(cd "$BUILD_DIR" && ctest --output-on-failure -j "$JOBS") || status=$?

if [ "$status" -eq 0 ]; then
  echo "tests/run.sh: ALL TESTS PASSED"
else
  echo "tests/run.sh: TESTS FAILED (ctest exit code $status)" >&2
fi
exit "$status"
