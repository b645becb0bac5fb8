#!/usr/bin/env bash
# Install one set of lowbit's dependencies (Debian/Ubuntu). Idempotent: a fast no-op when
# everything in the set is already installed.
#
#   scripts/install_deps.sh main    build and run the trainer (examples/quickstart.sh)
#   scripts/install_deps.sh tests   main + the test suite (tests/run.sh, .ci/run)
#   scripts/install_deps.sh bench   tests + the benchmark scripts (benchmarks/*.sh, *.py)
#   scripts/install_deps.sh         the same as bench: everything, as before the sets existed
#   scripts/install_deps.sh --list SET   print SET's packages, one a line; installs nothing
#
# Each set contains the one before it. What each adds on a fresh Debian system:
# scripts/measure_deps.sh (README.md, "Quick start").
set -euo pipefail

# main: what examples/quickstart.sh needs to configure, build and run train_cifar.
#   g++, make, cmake: the build (CMakeLists.txt needs CMake >= 3.16). g++ brings libgomp
#     (OpenMP) and the ASan/UBSan runtimes that .ci/run's sanitizer build links.
#   libeigen3-dev, nlohmann-json3-dev, libstb-dev: CMakeLists.txt's find_package(Eigen3),
#     find_package(nlohmann_json) and cmake/lowbitFindStb.cmake; include/lowbit uses all three.
#   catch2: the trainer does not use it, but the quick start configures the project as the
#     top level, where LOWBIT_BUILD_TESTS defaults to ON, and tests/CMakeLists.txt's
#     find_package(Catch2 2 REQUIRED) then fails the configure step without it. Turning the
#     tests off in quickstart.sh instead would leave that OFF in build/'s cache for the next
#     tests/run.sh or ctest (no tests found); catch2 is one header-only package.
MAIN=(g++ make cmake libeigen3-dev nlohmann-json3-dev libstb-dev catch2)
# tests adds what ctest runs besides the C++ binaries:
#   python3: tests/trainer/test_train_cifar.cpp runs /usr/bin/python3 (standard library only)
#     to parse report.html (xml.etree) and to run benchmarks/metrics_table.py.
#   python3-torch: the pytorch_fixtures test runs tests/pytorch/make_fixtures.py (import
#     torch) with /usr/bin/python3; without it pytorch_parity is "Not Run", i.e. failed.
#   clang: .ci/run builds and runs the libFuzzer harnesses of tests/fuzz/ (benchmarks/fuzz.sh);
#     Debian's clang brings libFuzzer and clang's ASan/UBSan runtimes (libclang-common-*-dev).
#   pkgconf: the consumer_find_package test builds a consumer from the installed lowbit.pc with
#     `pkg-config --cflags --libs lowbit`; named because the test needs it, though the set's
#     other packages already bring it (scripts/measure_deps.sh: the same figures with or without).
#   libopenmpi-dev, openmpi-bin: MPI for data-parallel training (CMake's LOWBIT_MPI turns on
#     when it is found): ctest's dist_data_parallel and the mpirun case of the trainer tests
#     run 2 processes under Open MPI's mpirun (docs/distributed.md). tests/run.sh configures
#     with -DLOWBIT_MPI=ON, so a build without it fails instead of silently skipping them.
# Nothing in ctest uses jq or PIL.
TESTS=("${MAIN[@]}" python3 python3-torch clang pkgconf libopenmpi-dev openmpi-bin)
# bench adds what only the benchmark scripts use:
#   python3-pil: benchmarks/pytorch_quickstart.py (from PIL import Image; fp32_side_by_side.sh).
#   python3-numpy: pytorch_quickstart.py imports numpy itself (python3-torch depends on it too).
#   jq: benchmarks/reproduce_slb.sh reads the runs' summary.json files with it.
BENCH=("${TESTS[@]}" python3-pil python3-numpy jq)

SETS="main, tests or bench"

# set_packages SET: SET's packages into PACKAGES, or one line naming the bad set and exit 2.
set_packages() {
  case "$1" in
    main) PACKAGES=("${MAIN[@]}") ;;
    tests) PACKAGES=("${TESTS[@]}") ;;
    bench) PACKAGES=("${BENCH[@]}") ;;
    *)
      echo "install_deps: unknown set '$1'; expected $SETS (see the top of scripts/install_deps.sh)" >&2
      exit 2
      ;;
  esac
}

if [ "${1:-}" = "-h" ] || [ "${1:-}" = "--help" ]; then
  sed -n '2,12p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'
  exit 0
fi

if [ "${1:-}" = "--list" ]; then
  if [ "$#" -ne 2 ]; then
    echo "install_deps: --list takes exactly one set ($SETS), got $(($# - 1)) argument(s)" >&2
    exit 2
  fi
  set_packages "$2"
  printf '%s\n' "${PACKAGES[@]}"
  exit 0
fi

if [ "$#" -gt 1 ]; then
  echo "install_deps: expected one set ($SETS), got $# arguments: $*" >&2
  exit 2
fi
if [ "$#" -eq 0 ]; then
  # A bare call keeps meaning what it did when there was one list (and what the hints in
  # CMakeLists.txt and tests/pytorch/parity.cpp assume): everything.
  SET=bench
  echo "install_deps: no set given, using 'bench' (everything); 'main' is enough for the trainer"
else
  SET="$1"
fi
set_packages "$SET"

is_installed() {
  dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q "install ok installed"
}

if ! command -v dpkg-query >/dev/null 2>&1; then
  echo "install_deps: dpkg not found (not Debian/Ubuntu?); install manually: ${PACKAGES[*]}" >&2
  exit 1
fi

missing=()
for pkg in "${PACKAGES[@]}"; do
  is_installed "$pkg" || missing+=("$pkg")
done

if [ "${#missing[@]}" -eq 0 ]; then
  echo "install_deps: all dependencies of '$SET' present (${PACKAGES[*]})"
  exit 0
fi

echo "install_deps: missing for '$SET': ${missing[*]}"

SUDO=()
if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null 2>&1; then
    SUDO=(sudo)
  else
    echo "install_deps: not root and sudo is not available; please install: ${missing[*]}" >&2
    exit 1
  fi
fi

export DEBIAN_FRONTEND=noninteractive
echo "install_deps: running apt-get update"
"${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update
echo "install_deps: running apt-get install -y --no-install-recommends ${missing[*]}"
"${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${missing[@]}"
echo "install_deps: installed ${missing[*]}"
