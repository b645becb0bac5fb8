#!/usr/bin/env bash
# lowbit vs PyTorch (CPU): images/s of a full training step (zero_grad, forward,
# cross-entropy, backward, SGD momentum 0.9 + weight decay 5e-4) at batch 128, 3x32x32.
#
#   benchmarks/compare_pytorch.sh [--quick] [--rounds N] [--models resnet20,vgg_small]
#
# For model in resnet20 vgg_small, threads in 1 2: runs lowbit's bench_train and
# benchmarks/pytorch_train.py in both memory layouts (NCHW, channels_last), one process per
# run (so peak RSS is per configuration), alternating lowbit and PyTorch runs round by round
# (the order is reversed every other round) so machine noise hits both alike. Per run the
# figure is batch / median step time; per configuration the median over rounds.
# Prints one JSON object per line on stdout (progress goes to stderr):
#   {"model", "threads", "lowbit_img_s", "pytorch_img_s", "pytorch_layout", "ratio",
#    "lowbit_rss_mb", "pytorch_rss_mb"}
# pytorch_img_s is the faster of PyTorch's two layouts, named by pytorch_layout;
# ratio = lowbit_img_s / pytorch_img_s; *_rss_mb is the largest peak RSS over the rounds
# (for PyTorch: of the reported layout).
#
#   --quick   1 round, fewer steps (a few minutes at most; numbers are rougher)
#   default   3 rounds; resnet20: 2 warm-up + 10 timed steps, vgg_small: 1 + 4
#             (roughly 10-15 minutes on a 2-core AVX2 machine)
#   --rounds N  N rounds instead (after --quick: N quick rounds). On a shared machine a
#             few-percent difference needs 5 or more; per-round ratios go to stderr.
#   --models  a comma-separated subset of resnet20,vgg_small (default: both)
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

USAGE="usage: $0 [--quick] [--rounds N] [--models resnet20,vgg_small]"
QUICK=0
ROUNDS_ARG=""
MODELS=(resnet20 vgg_small)
while [ $# -gt 0 ]; do
  case "$1" in
    --quick) QUICK=1 ;;
    --rounds)
      if [ $# -lt 2 ] || ! [[ "$2" =~ ^[1-9][0-9]*$ ]]; then
        echo "compare_pytorch: --rounds '${2:-}': expected a positive integer ($USAGE)" >&2; exit 2
      fi
      ROUNDS_ARG="$2"; shift ;;
    --models)
      IFS=, read -r -a MODELS <<< "${2:-}"
      if [ $# -lt 2 ] || [ "${#MODELS[@]}" -eq 0 ]; then
        echo "compare_pytorch: --models '${2:-}': expected a comma-separated subset of resnet20,vgg_small ($USAGE)" >&2; exit 2
      fi
      for m in "${MODELS[@]}"; do
        if [ "$m" != resnet20 ] && [ "$m" != vgg_small ]; then
          echo "compare_pytorch: --models: unknown model '$m' (expected resnet20 or vgg_small)" >&2; exit 2
        fi
      done
      shift ;;
    -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) echo "compare_pytorch: unknown argument '$1' ($USAGE)" >&2; exit 2 ;;
  esac
  shift
done

THREADS=(1 2)
BATCH=128
if [ "$QUICK" -eq 1 ]; then
  ROUNDS=1
  declare -A STEPS=([resnet20]=3 [vgg_small]=1) WARMUP=([resnet20]=1 [vgg_small]=1)
else
  ROUNDS=3
  declare -A STEPS=([resnet20]=10 [vgg_small]=4) WARMUP=([resnet20]=2 [vgg_small]=1)
fi
ROUNDS="${ROUNDS_ARG:-$ROUNDS}"

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

# --- runs: lowbit and PyTorch alternate within each configuration -------------------
for ((round = 0; round < ROUNDS; round++)); do
  for model in "${MODELS[@]}"; do
    for threads in "${THREADS[@]}"; do
      steps="${STEPS[$model]}" warmup="${WARMUP[$model]}"
      runs=(lowbit nchw channels_last)
      if ((round % 2 == 1)); then runs=(channels_last nchw lowbit); fi
      log "round $((round + 1))/$ROUNDS  $model  threads $threads  (warm-up $warmup, steps $steps)"
      for r in "${runs[@]}"; do
        if [ "$r" = lowbit ]; then
          run_one "lowbit_${model}_${threads}" env OMP_NUM_THREADS="$threads" \
            "$BENCH" --model "$model" --threads "$threads" --batch "$BATCH" \
            --steps "$steps" --warmup "$warmup" --json
        else
          run_one "pytorch_${model}_${threads}_${r}" env OMP_NUM_THREADS="$threads" \
            "$PY" "$ROOT/benchmarks/pytorch_train.py" --model "$model" --threads "$threads" \
            --layout "$r" --batch "$BATCH" --steps "$steps" --warmup "$warmup"
        fi
      done
    done
  done
done

# --- merge: median img/s over rounds, one JSON line per (model, threads) --------------
"$PY" - "$RESULTS" "${MODELS[*]}" "${THREADS[*]}" <<'EOF'
import json, os, statistics, sys

results, models, threads = sys.argv[1], sys.argv[2].split(), [int(t) for t in sys.argv[3].split()]

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
        lb_img_s, lb_rss, lb_rounds = load(f"lowbit_{model}_{t}", model, t)
        layouts = {l: load(f"pytorch_{model}_{t}_{l}", model, t) for l in ("nchw", "channels_last")}
        layout = max(layouts, key=lambda l: layouts[l][0])
        pt_img_s, pt_rss, pt_rounds = layouts[layout]
        ratios = sorted(round(a / b, 3) for a, b in zip(lb_rounds, pt_rounds))
        print(f"compare_pytorch: {model} threads {t}: per-round ratios vs {layout}, sorted: {ratios}",
              file=sys.stderr)
        print(json.dumps({"model": model, "threads": t, "lowbit_img_s": round(lb_img_s, 2),
                          "pytorch_img_s": round(pt_img_s, 2), "pytorch_layout": layout,
                          "ratio": round(lb_img_s / pt_img_s, 3), "lowbit_rss_mb": round(lb_rss, 1),
                          "pytorch_rss_mb": round(pt_rss, 1)}))
EOF
