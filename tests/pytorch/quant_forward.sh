#!/usr/bin/env bash
# ctest pytorch_quant_forward (issue 35): lowbit's quantized training forward and
# benchmarks/pytorch_quant_train.py's (the PyTorch side of benchmarks/compare_pytorch.sh) agree
# to float rounding on the same weights and input, for every method: bench_train
# --dump-forward writes the state dict, the input and the logits of the first training-mode
# forward; pytorch_quant_train.py --check-forward --require-exact recomputes them. Batch 2:
# at batch 128 a value within rounding of a code boundary may take the neighbouring code on one
# side and batch-norm spreads it (pytorch_quant_train.py's docstring). Also bench_train's bad
# inputs: one line, exit status 2.
#
#   tests/pytorch/quant_forward.sh BENCH_TRAIN PYTHON
# Exit 77 (ctest: Skipped) when PYTHON cannot import torch.
set -euo pipefail
BENCH="$1" PY="$2"
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
if ! "$PY" -c 'import torch' 2>/dev/null; then
  echo "SKIPPED: $PY cannot import torch (scripts/install_deps.sh tests installs python3-torch)"
  exit 77
fi
TMP="$(mktemp -d "${TMPDIR:-/tmp}/quant_forward.XXXXXX")"
trap 'rm -rf "$TMP"' EXIT
export OMP_NUM_THREADS=1

# Bad inputs: exit status 2 and one line naming the flag or key.
expect_refusal() {  # WHAT_THE_LINE_NAMES ARGS...
  local want="$1"; shift
  local rc=0
  "$BENCH" "$@" > "$TMP/out" 2> "$TMP/err" || rc=$?
  if [ "$rc" -ne 2 ] || ! grep -q -- "$want" "$TMP/err"; then
    echo "FAIL: bench_train $* exited $rc (expected 2, a line naming '$want'):"; cat "$TMP/err"; exit 1
  fi
}
expect_refusal "no_such_key" --set no_such_key=1
expect_refusal "w_bits" --method apot --w-bits 1 --a-bits 4
expect_refusal "--epoch" --method fp32 --epoch 10
expect_refusal "epochs" --method alq --w-bits 2

n=0
while read -r model args; do
  [ -n "$model" ] || continue
  epoch="$(sed -n 's/.*--epoch \([0-9]*\).*/\1/p' <<< "$args")"
  # shellcheck disable=SC2086
  "$BENCH" --model "$model" $args --batch 2 --threads 1 --dump-forward "$TMP/d.safetensors" > /dev/null
  if ! "$PY" "$ROOT/benchmarks/pytorch_quant_train.py" --threads 1 \
      --check-forward "$TMP/d.safetensors" --require-exact ${epoch:+--epoch "$epoch"} > "$TMP/check" 2>&1; then
    echo "FAIL: $model $args:"; cat "$TMP/check"; exit 1
  fi
  echo "ok  $model $args: $(tail -n 1 "$TMP/check")"
  n=$((n + 1))
done <<'CONFIGS'
resnet20 --method fp32
resnet20 --method ste --w-bits 1 --a-bits 1
resnet20 --method ste --w-bits 2 --a-bits 2
resnet20 --method ste --w-bits 4 --a-bits 4 --set ste.a_quant=pact
resnet20 --method apot --w-bits 2 --a-bits 2
resnet20 --method apot --w-bits 4 --a-bits 4
resnet20 --method slb --w-bits 1 --a-bits 1
resnet20 --method slb --w-bits 4 --a-bits 4
resnet20 --method alq --w-bits 2 --a-bits 2 --set epochs=225 --epoch 0
resnet20 --method alq --w-bits 2 --a-bits 32 --set epochs=225 --epoch 20
resnet20 --method alq --w-bits 2 --a-bits 2 --set epochs=225 --epoch 155
vgg_small --method ste --w-bits 2 --a-bits 2
vgg_small --method apot --w-bits 3 --a-bits 3
vgg_small --method slb --w-bits 2 --a-bits 2
vgg_small --method alq --w-bits 2 --a-bits 2 --set epochs=225 --epoch 0
CONFIGS
echo "all $n forwards agree"
