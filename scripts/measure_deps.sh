#!/usr/bin/env bash
# How many Debian packages, and how many MB, each set of scripts/install_deps.sh adds to a
# fresh Debian system of this machine's release. Downloads and installs nothing: apt only
# simulates, against the package lists already on this machine.
#
#   scripts/measure_deps.sh [SET...]            (default: main tests bench)
#   scripts/measure_deps.sh --packages PKG...   one list of your own (e.g. an older list)
#
# Environment: LOWBIT_MEASURE_TOP (how many of the biggest packages to name, default 8);
# LOWBIT_MEASURE_BASE_EXTRA (packages to count as already on the system besides the fresh
# base, e.g. "build-essential cmake python3" for a machine that has a toolchain; default none);
# LOWBIT_MEASURE_ALL=1 also names every package added.
#
# Method:
#   1. The fresh system: every package of Priority "required" in the lists, plus
#      usr-is-merged, resolved by apt without recommends against an empty dpkg status -- what
#      debootstrap's minbase variant (used for Debian's container images) installs.
#      usr-is-merged is named because init-system-helpers depends on "usrmerge |
#      usr-is-merged": apt alone would take usrmerge and full perl, debootstrap does not.
#   2. A dpkg status file holding exactly those packages (their stanzas from the lists, at
#      the versions apt chose, marked "install ok installed").
#   3. For each set: apt-get install -s --no-install-recommends (as install_deps.sh installs)
#      against that status file; the "Inst" lines are the packages the set adds.
#   4. Installed-Size (KiB) and Size (bytes, the .deb download) of each added package from
#      apt-cache show, summed. MB = 10^6 bytes, as apt's own "N MB of additional disk space".
# The sets come from scripts/install_deps.sh --list, so the two cannot drift. The figures
# depend on the lists' date (apt-get update refreshes them; this script never does).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
TOP="${LOWBIT_MEASURE_TOP:-8}"

die() { echo "measure_deps: $*" >&2; exit 1; }
usage_error() { echo "measure_deps: $*" >&2; exit 2; }

case "$TOP" in
  '' | *[!0-9]*) usage_error "LOWBIT_MEASURE_TOP must be a whole number, got '$TOP'" ;;
esac
for tool in apt-get apt-cache dpkg; do
  command -v "$tool" >/dev/null 2>&1 || die "$tool not found: this needs a Debian/Ubuntu system"
done

# What to measure: "label<TAB>package package ..." lines.
LISTS=()
if [ "${1:-}" = "--packages" ]; then
  shift
  [ "$#" -gt 0 ] || usage_error "--packages needs at least one package name"
  LISTS+=("$(printf 'given list\t%s' "$*")")
else
  [ "$#" -gt 0 ] || set -- main tests bench
  for set in "$@"; do
    # install_deps.sh prints its own one-line error for an unknown set.
    pkgs="$("$ROOT/scripts/install_deps.sh" --list "$set")" || exit 2
    LISTS+=("$(printf '%s\t%s' "$set" "$(printf '%s' "$pkgs" | tr '\n' ' ')")")
  done
fi

WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT

# No locking: apt only simulates, and another apt may be running. Without recommends, as
# install_deps.sh installs.
APT_SIM=(apt-get install -s --no-install-recommends -o Debug::NoLocking=true)

apt-cache dumpavail > "$WORK/avail"
[ -s "$WORK/avail" ] || die "apt has no package lists (apt-cache dumpavail is empty); run apt-get update first"

# inst_lines FILE: "package version" for every package an apt-get -s transcript installs.
# An upgrade line ("Inst p [old] (new ...)") cannot occur against the fresh status file
# (its versions are the lists' own), but is parsed the same way.
inst_lines() {
  sed -nE 's/^Inst ([^ ]+) (\[[^]]*\] )?\(([^ ]+) .*/\1 \3/p' "$1"
}

# 1. The fresh system.
awk '/^Package:/ { p = $2 } /^Priority: required$/ { print p }' "$WORK/avail" | sort -u > "$WORK/required"
[ -s "$WORK/required" ] || die "no package of Priority 'required' in apt's lists; are they Debian's?"
mapfile -t base < "$WORK/required"
if grep -qx 'Package: usr-is-merged' "$WORK/avail"; then
  base+=(usr-is-merged)
fi
read -r -a base_extra <<< "${LOWBIT_MEASURE_BASE_EXTRA:-}"
base+=("${base_extra[@]}")
: > "$WORK/empty_status"
if ! "${APT_SIM[@]}" -o Dir::State::status="$WORK/empty_status" "${base[@]}" > "$WORK/base.sim" 2>&1; then
  die "apt could not resolve the fresh system (Priority required + usr-is-merged ${base_extra[*]}): $(grep '^E:' "$WORK/base.sim" | head -1)"
fi
inst_lines "$WORK/base.sim" > "$WORK/base"

# 2. Its status file: each package's stanza at the chosen version, marked installed.
# (Word splitting wanted here and below: one "package=version" argument per line.)
# shellcheck disable=SC2046
apt-cache show $(awk '{ print $1 "=" $2 }' "$WORK/base") 2>/dev/null |
  awk -v RS= -v ORS='\n\n' '{
    split($0, line, "\n"); sub(/^Package: /, "", line[1])
    if (seen[line[1]]++) next            # one stanza per package (a version can be in two suites)
    sub(/\n/, "\nStatus: install ok installed\n"); print
  }' > "$WORK/status"
[ "$(grep -c '^Package:' "$WORK/status")" -eq "$(wc -l < "$WORK/base")" ] ||
  die "could not find every fresh-system package's stanza with apt-cache show"

# shellcheck disable=SC1091
. /etc/os-release 2>/dev/null || true
lists_date="$(find /var/lib/apt/lists -maxdepth 1 -name '*Release' -printf '%TY-%Tm-%Td\n' 2>/dev/null | sort | tail -n 1)"
echo "Fresh system: ${PRETTY_NAME:-this release}, $(wc -l < "$WORK/base") packages (Priority required + usr-is-merged${base_extra[*]:+ + ${base_extra[*]}}); apt lists of ${lists_date:-unknown date}."
echo "MB = 10^6 bytes. Installed = sum of Installed-Size; download = sum of the .deb sizes."
echo

# sizes FILE: "package installed_KiB download_bytes" for each "package version" line of FILE.
sizes() {
  [ -s "$1" ] || return 0
  # shellcheck disable=SC2046
  apt-cache show $(awk '{ print $1 "=" $2 }' "$1") 2>/dev/null |
    awk '/^Package:/ { p = $2 } /^Installed-Size:/ { i[p] = $2 } /^Size:/ { s[p] = $2 }
         END { for (p in i) print p, i[p], s[p] }'
}
mb() { awk -v b="$1" 'BEGIN { printf "%.1f", b / 1e6 }'; }

# 3. and 4. for each list.
prev_label=""
printf '| %s | %s | %s | %s |\n' "set" "packages added" "installed MB" "download MB"
printf '|---|---:|---:|---:|\n'
details=""
for entry in "${LISTS[@]}"; do
  label="${entry%%$'\t'*}"
  read -r -a pkgs <<< "${entry#*$'\t'}"
  sim="$WORK/$label.sim"
  if ! "${APT_SIM[@]}" -o Dir::State::status="$WORK/status" "${pkgs[@]}" > "$sim" 2>&1; then
    die "apt could not resolve '$label' (${pkgs[*]}) on the fresh system: $(grep '^E:' "$sim" | head -1)"
  fi
  if grep -q '^Remv' "$sim"; then
    die "apt would remove fresh-system packages to install '$label'; figures would be wrong"
  fi
  inst_lines "$sim" > "$WORK/$label.added"
  sizes "$WORK/$label.added" | sort -k2,2nr > "$WORK/$label.sizes"
  n="$(wc -l < "$WORK/$label.added")"
  [ "$(wc -l < "$WORK/$label.sizes")" -eq "$n" ] || die "apt-cache show lacks the sizes of some packages of '$label'"
  inst=$(awk '{ s += $2 * 1024 } END { print s + 0 }' "$WORK/$label.sizes")
  dl=$(awk '{ s += $3 } END { print s + 0 }' "$WORK/$label.sizes")
  printf '| %s | %d | %s | %s |\n' "$label" "$n" "$(mb "$inst")" "$(mb "$dl")"

  # The biggest packages: of the whole list for the first one, of what it adds beyond the
  # list before it otherwise (the sets nest, so that is what the step costs).
  if [ -n "$prev_label" ]; then
    awk 'NR == FNR { had[$1] = 1; next } !($1 in had)' "$WORK/$prev_label.sizes" "$WORK/$label.sizes" > "$WORK/$label.step"
    step_n=$(wc -l < "$WORK/$label.step")
    step_i=$(awk '{ s += $2 * 1024 } END { print s + 0 }' "$WORK/$label.step")
    step_d=$(awk '{ s += $3 } END { print s + 0 }' "$WORK/$label.step")
    details+="$label beyond $prev_label: $step_n packages, $(mb "$step_i") MB installed, $(mb "$step_d") MB download"$'\n'
  else
    cp "$WORK/$label.sizes" "$WORK/$label.step"
    details+="$label:"$'\n'
  fi
  if [ "$TOP" -gt 0 ]; then
    details+="$(head -n "$TOP" "$WORK/$label.step" | awk '{ printf "  %-28s %7.1f MB installed %6.1f MB download\n", $1, $2 * 1024 / 1e6, $3 / 1e6 }')"$'\n'
  fi
  if [ "${LOWBIT_MEASURE_ALL:-0}" = 1 ]; then
    details+="  all: $(awk '{ printf "%s%s", sep, $1; sep = " " }' "$WORK/$label.step")"$'\n'
  fi
  details+=$'\n'
  prev_label="$label"
done
echo
printf '%s' "$details"
