#!/usr/bin/env bash
# lowbit vs PyTorch (CPU): images/s of a full training step at batch 128, 3x32x32, for FP32
# and for the quantization methods, each side running the same quantizers.
#
#   benchmarks/compare_pytorch.sh [--quick] [--rounds N] [--models resnet20,vgg_small]
#                                 [--methods fp32,dorefa,pact,apot,slb,alq] [--bits 1,2,4]
#                                 [--threads 1,2] [--layouts nchw,channels_last]
#
# Configurations: every method of --methods (default: fp32 only) at W/A = b/b for every b of
# --bits the method allows (dorefa and pact 1..8; apot 2..5; slb 1..8; alq 1..8 bases):
#   fp32    lowbit's FP32 step (bench_train --method fp32) against benchmarks/pytorch_train.py
#   dorefa  method ste: BWN (1 bit) or DoReFa weights, DoReFa activations
#   pact    method ste with ste.a_quant=pact
#   apot    method apot (its defaults: RCF, weight normalization, APoT levels)
#   slb     method slb (its defaults: exp temperature schedule, state batch-norm)
#   alq     method alq in its first basis epoch (--epoch 0); the run length its pipeline needs
# each against benchmarks/pytorch_quant_train.py with the config bench_train resolved
# (--print-config-json), so both sides build the same model, layer policy and optimizer; the
# first time a configuration runs, the script checks that both compute the same forward on the
# same weights (bench_train --dump-forward, pytorch_quant_train.py --check-forward) and stops
# when they do not. For model in --models, threads in --threads, each configuration runs lowbit
# and PyTorch in every layout of --layouts, one process per run (so peak RSS is per
# configuration), round by round with the order reversed every other round so machine noise
# hits both alike. Per run the figure is batch / median step time; per configuration the
# median over rounds. Prints one JSON object per line on stdout (progress goes to stderr):
#   {"model", "method", "w_bits", "a_bits", "threads", "lowbit_img_s", "pytorch_img_s",
#    "pytorch_layout", "ratio", "lowbit_rss_mb", "pytorch_rss_mb"[, "lowbit_vs_fp32",
#    "pytorch_vs_fp32"]}
# pytorch_img_s is the faster of PyTorch's layouts, named by pytorch_layout; ratio =
# lowbit_img_s / pytorch_img_s; *_rss_mb is the largest peak RSS over the rounds (for PyTorch:
# of the reported layout). With fp32 among the methods, *_vs_fp32 is each side's step time
# over its own FP32 step (lowbit's quantization overhead, issue 35's second target).
#
#   --quick   1 round, fewer steps (a few minutes at most for fp32; numbers are rougher)
#   default   3 rounds; resnet20: 2 warm-up + 10 timed steps, vgg_small: 1 + 4
#             (fp32 alone: roughly 10-15 minutes on a 2-core AVX2 machine)
#   --rounds N  N rounds instead (after --quick: N quick rounds). On a shared machine a
#             few-percent difference needs 5 or more; per-round ratios go to stderr.
#   --models  a comma-separated subset of resnet20,vgg_small (default: both)
#   --methods a comma-separated subset of fp32,dorefa,pact,apot,slb,alq (default: fp32)
#   --bits    the W/A bit widths of the quantized configurations (default: 1,2,4)
#   --threads the thread counts (default: 1,2)
#   --layouts PyTorch's memory layouts, nchw and/or channels_last (default: both)
#
# Environment:
#   LOWBIT_BUILD_DIR       build directory (default: <repo>/build, as tests/run.sh); the
#                          script configures it Release and builds target bench_train
#   LOWBIT_BENCH_TRAIN     use this bench_train binary instead (no configure/build)
#   LOWBIT_PYTORCH_PYTHON  python with torch (default /usr/bin/python3: Debian's python3-torch
#                          imports only there)
#   LOWBIT_JOBS            build jobs (default: nproc)
set -euo pipefail

log() { echo "compare_pytorch: $*" >&2; }
# shellcheck source=benchmarks/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

USAGE="usage: $0 [--quick] [--rounds N] [--models resnet20,vgg_small] [--methods fp32,dorefa,pact,apot,slb,alq] [--bits 1,2,4] [--threads 1,2] [--layouts nchw,channels_last]"
QUICK=0
ROUNDS_ARG=""
MODELS=(resnet20 vgg_small)
METHODS=(fp32)
BITS=(1 2 4)
THREADS=(1 2)
LAYOUTS=(nchw channels_last)
# list_arg FLAG VALUE ALLOWED...: VALUE split at commas into LIST, each item one of ALLOWED
# (or, with ALLOWED = int, a positive integer); a bad item is one line and exit 2.
list_arg() {
  local flag="$1" value="$2"; shift 2
  IFS=, read -r -a LIST <<< "$value"
  if [ -z "$value" ] || [ "${#LIST[@]}" -eq 0 ]; then
    echo "compare_pytorch: $flag '$value': expected a comma-separated list ($USAGE)" >&2; exit 2
  fi
  local item ok
  for item in "${LIST[@]}"; do
    if [ "$1" = int ]; then
      [[ "$item" =~ ^[1-9][0-9]*$ ]] && continue
      echo "compare_pytorch: $flag: '$item' is not a positive integer ($USAGE)" >&2; exit 2
    fi
    ok=0
    for allowed in "$@"; do [ "$item" = "$allowed" ] && ok=1; done
    if [ "$ok" -eq 0 ]; then
      echo "compare_pytorch: $flag: unknown value '$item' (expected one of: $*)" >&2; exit 2
    fi
  done
}
while [ $# -gt 0 ]; do
  case "$1" in
    --quick) QUICK=1 ;;
    --rounds)
      if [ $# -lt 2 ] || ! [[ "$2" =~ ^[1-9][0-9]*$ ]]; then
        echo "compare_pytorch: --rounds '${2:-}': expected a positive integer ($USAGE)" >&2; exit 2
      fi
      ROUNDS_ARG="$2"; shift ;;
    --models) list_arg --models "${2:-}" resnet20 vgg_small; MODELS=("${LIST[@]}"); shift ;;
    --methods) list_arg --methods "${2:-}" fp32 dorefa pact apot slb alq; METHODS=("${LIST[@]}"); shift ;;
    --bits) list_arg --bits "${2:-}" int; BITS=("${LIST[@]}"); shift ;;
    --threads) list_arg --threads "${2:-}" int; THREADS=("${LIST[@]}"); shift ;;
    --layouts) list_arg --layouts "${2:-}" nchw channels_last; LAYOUTS=("${LIST[@]}"); shift ;;
    -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) echo "compare_pytorch: unknown argument '$1' ($USAGE)" >&2; exit 2 ;;
  esac
  shift
done

BATCH=128
if [ "$QUICK" -eq 1 ]; then
  ROUNDS=1
  declare -A STEPS=([resnet20]=3 [vgg_small]=1) WARMUP=([resnet20]=1 [vgg_small]=1)
else
  ROUNDS=3
  declare -A STEPS=([resnet20]=10 [vgg_small]=4) WARMUP=([resnet20]=2 [vgg_small]=1)
fi
ROUNDS="${ROUNDS_ARG:-$ROUNDS}"

# The configurations: "name|method|w|a|bench_train arguments" (name fp32 is the FP32 row).
CONFIGS=()
for m in "${METHODS[@]}"; do
  if [ "$m" = fp32 ]; then CONFIGS+=("fp32|fp32|32|32|--method fp32"); continue; fi
  for b in "${BITS[@]}"; do
    case "$m" in
      dorefa) ((b <= 8)) && CONFIGS+=("dorefa_$b|dorefa|$b|$b|--method ste --w-bits $b --a-bits $b") ;;
      pact) ((b <= 8)) && CONFIGS+=("pact_$b|pact|$b|$b|--method ste --w-bits $b --a-bits $b --set ste.a_quant=pact") ;;
      apot) ((b >= 2 && b <= 5)) && CONFIGS+=("apot_$b|apot|$b|$b|--method apot --w-bits $b --a-bits $b") ;;
      slb) ((b <= 8)) && CONFIGS+=("slb_$b|slb|$b|$b|--method slb --w-bits $b --a-bits $b") ;;
      alq) ((b <= 8)) && CONFIGS+=("alq_$b|alq|$b|$b|--method alq --w-bits $b --a-bits $b --set epochs=225 --epoch 0") ;;
    esac
  done
done
if [ "${#CONFIGS[@]}" -eq 0 ]; then
  echo "compare_pytorch: no configuration: none of --bits ${BITS[*]} is allowed for --methods ${METHODS[*]}" >&2; exit 2
fi

# --- prerequisites ---------------------------------------------------------------
require_python torch
BENCH="${LOWBIT_BENCH_TRAIN:-}"
[ -n "$BENCH" ] || BENCH="$(build_release bench_train -DLOWBIT_BUILD_BENCHMARKS=ON)"
if [ ! -x "$BENCH" ]; then
  log "bench_train not found or not executable: $BENCH"
  exit 1
fi

RESULTS="$(mktemp -d "${TMPDIR:-/tmp}/compare_pytorch.XXXXXX")"
trap 'rm -rf "$RESULTS"' EXIT

# run_one NAME CMD...: runs CMD with its stdout's last line appended to $RESULTS/NAME.jsonl;
# on failure shows CMD's output and stops.
run_one() {
  local name="$1"; shift
  local out
  if ! out="$("$@" 2>"$RESULTS/stderr")"; then
    log "FAILED: $*"
    cat "$RESULTS/stderr" >&2
    printf '%s\n' "$out" >&2
    exit 1
  fi
  local line
  line="$(printf '%s\n' "$out" | tail -n 1)"
  log "  $name: $line"
  printf '%s\n' "$line" >> "$RESULTS/$name.jsonl"
}

# check_forward NAME MODEL ARGS: once per configuration and model, both sides' forward on the
# same weights and input (bench_train --dump-forward, pytorch_quant_train.py --check-forward),
# to float rounding (or see below): at batch 2, because at batch 128 a value within rounding of a code
# boundary can take the neighbouring code on one side and batch-norm spreads the flip over
# the batch (pytorch_quant_train.py's docstring); the timed runs use batch 128.
check_forward() {
  local name="$1" model="$2" args="$3"
  local dump="$RESULTS/forward_${model}_${name}.safetensors"
  # shellcheck disable=SC2086
  "$BENCH" --model "$model" $args --batch 2 --threads 1 --dump-forward "$dump" > /dev/null
  # Exact to float rounding, except SLB and ALQ with quantized activations, checked within the
  # code-flip tolerance: tests/pytorch/quant_forward.sh says why.
  local exact=(--require-exact)
  case "$name" in slb_*|alq_*) exact=() ;; esac
  # shellcheck disable=SC2046
  if ! "$PY" "$ROOT/benchmarks/pytorch_quant_train.py" \
      --threads 1 --check-forward "$dump" "${exact[@]}" $(epoch_arg "$args") >&2; then
    log "the two sides compute different forwards for $model $name: the comparison would not be of equal work"
    exit 1
  fi
  rm -f "$dump"
}
# epoch_arg ARGS: the --epoch E of bench_train's arguments, for the PyTorch side.
epoch_arg() {
  [[ "$1" =~ --epoch\ ([0-9]+) ]] && echo "--epoch ${BASH_REMATCH[1]}"
  true
}

# --- runs: lowbit and PyTorch alternate within each configuration -------------------
for ((round = 0; round < ROUNDS; round++)); do
  for model in "${MODELS[@]}"; do
    for threads in "${THREADS[@]}"; do
      steps="${STEPS[$model]}" warmup="${WARMUP[$model]}"
      for config in "${CONFIGS[@]}"; do
        IFS='|' read -r name _ _ _ args <<< "$config"
        if [ "$round" -eq 0 ] && [ "$threads" = "${THREADS[0]}" ]; then
          # shellcheck disable=SC2086
          "$BENCH" --model "$model" $args --print-config-json > "$RESULTS/config_${model}_${name}.json"
          [ "$name" = fp32 ] || check_forward "$name" "$model" "$args"
        fi
        runs=(lowbit "${LAYOUTS[@]}")
        if ((round % 2 == 1)); then
          runs=()
          for r in "${LAYOUTS[@]}"; do runs=("$r" "${runs[@]}"); done
          runs+=(lowbit)
        fi
        log "round $((round + 1))/$ROUNDS  $model  threads $threads  $name  (warm-up $warmup, steps $steps)"
        for r in "${runs[@]}"; do
          if [ "$r" = lowbit ]; then
            # shellcheck disable=SC2086
            run_one "lowbit_${model}_${threads}_${name}" env OMP_NUM_THREADS="$threads" \
              "$BENCH" --model "$model" $args --threads "$threads" --batch "$BATCH" \
              --steps "$steps" --warmup "$warmup" --json
          elif [ "$name" = fp32 ]; then
            run_one "pytorch_${model}_${threads}_${name}_${r}" env OMP_NUM_THREADS="$threads" \
              "$PY" "$ROOT/benchmarks/pytorch_train.py" --model "$model" --threads "$threads" \
              --layout "$r" --batch "$BATCH" --steps "$steps" --warmup "$warmup"
          else
            # shellcheck disable=SC2046
            run_one "pytorch_${model}_${threads}_${name}_${r}" env OMP_NUM_THREADS="$threads" \
              "$PY" "$ROOT/benchmarks/pytorch_quant_train.py" --config-json "$RESULTS/config_${model}_${name}.json" \
              --threads "$threads" --layout "$r" --steps "$steps" --warmup "$warmup" $(epoch_arg "$args")
          fi
        done
      done
    done
  done
done

# --- merge: median img/s over rounds, one JSON line per (model, threads, configuration) --
"$PY" - "$RESULTS" "${MODELS[*]}" "${THREADS[*]}" "${LAYOUTS[*]}" "${CONFIGS[@]}" <<'EOF'
import json, os, statistics, sys

results, models = sys.argv[1], sys.argv[2].split()
threads, layouts = [int(t) for t in sys.argv[3].split()], sys.argv[4].split()
configs = [c.split("|")[:4] for c in sys.argv[5:]]

def load(name, model, nthreads):
    rows = []
    with open(os.path.join(results, name + ".jsonl")) as f:
        for line in f:
            try:
                row = json.loads(line)
            except ValueError:
                sys.exit(f"compare_pytorch: {name}: not a JSON line: {line!r}")
            if row.get("model") != model or int(row.get("threads", -1)) != nthreads:
                sys.exit(f"compare_pytorch: {name}: expected model {model}, threads {nthreads}, got {line!r}")
            rows.append(row)
    per_round = [r["img_s"] for r in rows]
    return statistics.median(per_round), max(r["peak_rss_mb"] for r in rows), per_round

for model in models:
    for t in threads:
        fp32 = None
        for name, method, wb, ab in configs:
            lb_img_s, lb_rss, lb_rounds = load(f"lowbit_{model}_{t}_{name}", model, t)
            per_layout = {l: load(f"pytorch_{model}_{t}_{name}_{l}", model, t) for l in layouts}
            layout = max(per_layout, key=lambda l: per_layout[l][0])
            pt_img_s, pt_rss, pt_rounds = per_layout[layout]
            ratios = sorted(round(a / b, 3) for a, b in zip(lb_rounds, pt_rounds))
            print(f"compare_pytorch: {model} threads {t} {name}: per-round ratios vs {layout}, sorted: {ratios}",
                  file=sys.stderr)
            row = {"model": model, "method": method, "w_bits": int(wb), "a_bits": int(ab), "threads": t,
                   "lowbit_img_s": round(lb_img_s, 2), "pytorch_img_s": round(pt_img_s, 2), "pytorch_layout": layout,
                   "ratio": round(lb_img_s / pt_img_s, 3), "lowbit_rss_mb": round(lb_rss, 1),
                   "pytorch_rss_mb": round(pt_rss, 1)}
            if name == "fp32":
                fp32 = (lb_img_s, pt_img_s)
            elif fp32:  # step time over the same side's FP32 step
                row["lowbit_vs_fp32"] = round(fp32[0] / lb_img_s, 3)
                row["pytorch_vs_fp32"] = round(fp32[1] / pt_img_s, 3)
            print(json.dumps(row))
EOF
