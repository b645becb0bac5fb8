#!/usr/bin/env bash
# Install lowbit's build/test dependencies (Debian/Ubuntu). Idempotent: a fast
# no-op when everything is already installed.
set -euo pipefail

# jq: the benchmarks/reproduce_*.sh scripts read summary.json files with it. python3-pil:
# benchmarks/pytorch_quickstart.py decodes the JPEG folders with it.
PACKAGES=(cmake g++ make libeigen3-dev catch2 nlohmann-json3-dev libstb-dev python3-torch python3-pil jq)

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
  echo "install_deps: all dependencies present (${PACKAGES[*]})"
  exit 0
fi

echo "install_deps: missing: ${missing[*]}"

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
