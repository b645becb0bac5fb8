#!/usr/bin/env bash
# Downloads the official CIFAR-10 binary version and extracts it to data/cifar-10-batches-bin
# (data_batch_1..5.bin, test_batch.bin, batches.meta.txt), where the trainer looks for it.
#
#   data/download_cifar10.sh [DEST_DIR]      (default: the folder holding this script)
#
# Idempotent: exits at once if the six .bin files are already there with the right sizes,
# and re-uses an already downloaded archive whose MD5 matches. Needs curl or wget, tar, and
# md5sum (or macOS's md5). Never run by the build or the tests.
#
# The MD5 is the one published on https://www.cs.toronto.edu/~kriz/cifar.html for
# "CIFAR-10 binary version (suitable for C programs)" (162 MB, 170052171 bytes).
set -euo pipefail

URL="https://www.cs.toronto.edu/~kriz/cifar-10-binary.tar.gz"
MD5="c32a1d4ab5d03f1284b67883e8d87530"
RECORD_FILE_BYTES=30730000   # 10000 records x 3073 bytes

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
dest="${1:-$here}"
mkdir -p "$dest"
dest="$(cd "$dest" && pwd)"
archive="$dest/cifar-10-binary.tar.gz"
out="$dest/cifar-10-batches-bin"
files=(data_batch_1.bin data_batch_2.bin data_batch_3.bin data_batch_4.bin data_batch_5.bin test_batch.bin)

complete() {
  local f size
  for f in "${files[@]}"; do
    [[ -f "$out/$f" ]] || return 1
    size=$(wc -c < "$out/$f" | tr -d ' ')
    [[ "$size" == "$RECORD_FILE_BYTES" ]] || return 1
  done
}

md5_of() {
  if command -v md5sum > /dev/null; then md5sum "$1" | cut -d' ' -f1
  elif command -v md5 > /dev/null; then md5 -q "$1"
  else echo "download_cifar10.sh: need md5sum or md5 to verify the archive" >&2; exit 1
  fi
}

if complete; then
  echo "CIFAR-10 binary data already complete in $out"
  exit 0
fi

if [[ -f "$archive" && "$(md5_of "$archive")" == "$MD5" ]]; then
  echo "Re-using verified archive $archive"
else
  echo "Downloading $URL"
  tmp="$archive.part"
  rm -f "$tmp"
  trap 'rm -f "$tmp"' EXIT   # no half-downloaded file left behind on failure
  if command -v curl > /dev/null; then
    curl -fL --retry 3 -o "$tmp" "$URL"
  elif command -v wget > /dev/null; then
    wget -O "$tmp" "$URL"
  else
    echo "download_cifar10.sh: need curl or wget" >&2
    exit 1
  fi
  got="$(md5_of "$tmp")"
  if [[ "$got" != "$MD5" ]]; then
    echo "download_cifar10.sh: MD5 mismatch for $URL: got $got, expected $MD5 (incomplete or altered download; $tmp removed)" >&2
    rm -f "$tmp"
    exit 1
  fi
  mv "$tmp" "$archive"
  trap - EXIT
fi

echo "Extracting to $out"
# The archive holds a single top-level folder, cifar-10-batches-bin/.
tar -xzf "$archive" -C "$dest" cifar-10-batches-bin
if ! complete; then
  echo "download_cifar10.sh: after extraction $out does not hold the six ${RECORD_FILE_BYTES}-byte .bin files" >&2
  exit 1
fi
echo "CIFAR-10 binary data ready in $out (the archive $archive can be deleted)"
