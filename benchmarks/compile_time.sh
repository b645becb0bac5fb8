#!/usr/bin/env bash
# Compile time of a lowbit consumer (issue 33 item 2): wall seconds to compile one
# translation unit, for three programs at -O0 and -O2, each without and with a precompiled
# lowbit.hpp (GCC's PCH: built once per flag set, its own cost shown on its own line; the
# engine row uses it too, so its pch_s column is not meaningful):
#   hello      a program that includes <lowbit/lowbit.hpp> and adds two tensors
#   engine     the same program including <lowbit/engine.hpp> (no methods, data, io, trainer)
#   prototype  examples/tutorial.cpp: a 2-bit CNN built, trained and exported (a model, a
#              quantizer, a training loop: what a researcher iterates on)
#   trainer    examples/train_cifar.cpp
# Flags as a consumer of the installed package would use them: -std=c++17 -fopenmp
# -march=native, lowbit's include directory and the dependencies' (no -Wall).
#
#   benchmarks/compile_time.sh [ROUNDS]      (default 1: one compile per cell)
#
# Environment: CXX (default g++), NICE (default empty: a timing wants its core; pause
# training runs first, or say that they ran). Writes nothing in the tree (a temp folder).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
ROUNDS="${1:-1}"
[[ "$ROUNDS" =~ ^[1-9][0-9]*$ ]] || { echo "compile_time.sh: ROUNDS is '$ROUNDS', expected a positive whole number" >&2; exit 2; }
CXX="${CXX:-g++}"
NICE="${NICE:-}"
WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT

INC=(-I"$ROOT/include" -I"$ROOT/tools" -isystem /usr/include/eigen3 -isystem /usr/include/stb)
cat > "$WORK/hello.cpp" <<'EOF'
#include <lowbit/lowbit.hpp>
#include <cstdio>
int main() {
  auto a = lowbit::Tensor<float>::ones({2, 3});
  auto b = a + a;
  std::printf("%g\n", static_cast<double>(b.data()[0]));
  return b.data()[0] == 2.0f ? 0 : 1;
}
EOF
sed 's|<lowbit/lowbit.hpp>|<lowbit/engine.hpp>|' "$WORK/hello.cpp" > "$WORK/engine.cpp"
declare -A SRC=([hello]="$WORK/hello.cpp" [engine]="$WORK/engine.cpp" [prototype]="$ROOT/examples/tutorial.cpp"
                [trainer]="$ROOT/examples/train_cifar.cpp")

seconds() {  # command...: wall seconds of the fastest of ROUNDS runs
  local best="" t0 t1 s
  for ((r = 0; r < ROUNDS; ++r)); do
    t0=$(date +%s.%N)
    $NICE "$@" >/dev/null
    t1=$(date +%s.%N)
    s=$(echo "$t1 - $t0" | bc)
    if [[ -z "$best" ]] || (( $(echo "$s < $best" | bc) )); then best=$s; fi
  done
  printf '%.1f' "$best"
}

echo "compiler: $($CXX --version | head -1); $(nproc) cores; rounds: $ROUNDS"
printf '%-10s %-4s %10s %10s\n' program opt plain_s pch_s
for opt in -O0 -O2; do
  FLAGS=(-std=c++17 "$opt" -fopenmp -march=native -DLOWBIT_SOURCE_DIR="\"$ROOT\"")
  # The PCH: a header next to which GCC finds lowbit.hpp.gch, with exactly these flags.
  mkdir -p "$WORK/pch$opt/lowbit"
  echo '#include <lowbit/lowbit.hpp>' > "$WORK/pch$opt/lowbit_pch.hpp"
  pch_s=$(seconds "$CXX" "${FLAGS[@]}" "${INC[@]}" -x c++-header "$WORK/pch$opt/lowbit_pch.hpp" -o "$WORK/pch$opt/lowbit_pch.hpp.gch")
  printf '%-10s %-4s %10s %10s\n' "(pch)" "$opt" - "$pch_s"
  for prog in engine hello prototype trainer; do
    plain=$(seconds "$CXX" "${FLAGS[@]}" "${INC[@]}" -c "${SRC[$prog]}" -o "$WORK/$prog.o")
    with=$(seconds "$CXX" "${FLAGS[@]}" "${INC[@]}" -include "$WORK/pch$opt/lowbit_pch.hpp" -Winvalid-pch \
      -c "${SRC[$prog]}" -o "$WORK/$prog.pch.o")
    printf '%-10s %-4s %10s %10s\n' "$prog" "$opt" "$plain" "$with"
  done
done
