#!/usr/bin/env bash
# Lines of include/lowbit per folder against a budget (comments and blank lines included:
# they are read too). .ci/run prints this table before the builds.
#
#   scripts/line_budget.sh
#
# One row per folder under include/lowbit/, and one more per subfolder of a folder that has
# them (quant/alq/, quant/apot/, ...: a new folder gets its row without editing this script,
# with budget "-" until one is added below). Files directly in include/lowbit/ (lowbit.hpp)
# are the "(top level)" row. Folder budgets are a guide: a folder over its budget is marked
# but does not fail. The script exits non-zero only when the TOTAL is over TOTAL_BUDGET.
#
# Why the total budget is 15,000 and not 12,000: the tree was already above 12,000 when the
# budget was introduced -- 13,609 lines at commit 469d840, and 14,570 in the working tree of
# the quant/ refactor (train/ came in from examples/train_cifar.cpp, +659; io/report.hpp and
# io/svg_plot.hpp left for tools/report/, -687; quant/ gained the per-method folders and
# method/registry headers). A 12,000 budget would have failed from day one, so it is set at
# about 3% above that working tree: growth past it has to be argued for, by raising the
# figure here in the same change (or by deleting something).
# The folder budgets are that working tree's counts rounded up with similar headroom; they
# add up to the total.
# Raised to 16,150 with issue 25 (data beyond 32x32 CIFAR-10): data/ +850 for the MNIST IDX
# and CIFAR-100 readers, image folders of any size and channel count, the lookup of every
# data set, run-time image shapes in the loader and augmentation, and a private copy of
# stb_image_resize (164 lines, like stb_image_private.hpp's 500); train/ +200 for the
# validation split and the data record a run keeps; nn/ +50 for LeNet5; io/ +50 for
# metrics.csv (io/config.hpp, dead since the option schemas, was deleted: -71).
# Raised to 16,750 with issues 26 and 29: io/ +550 for safetensors.hpp (checked reader, writer) and
# checksum.hpp; quant/alq/ +50 for the authors' alpha moments and first basis step (options).
# Raised to 16,880 with issue 34 item 2 (a diverged run names where it broke): nn/ +70 for
# finite_watch.hpp (the first module whose output is NaN/inf); train/ +60 for finite.hpp (the
# per-step gradient and weight checks). kernels/omp_wait.hpp fit in kernels/' headroom.
# Raised to 17,200 with issue 34 items 3 and 7 (images, fuzzing): data/ +300 for image_check.hpp
# (the JPEG and PNG structure checks run before stb_image 2.27, the decode budget;
# docs/fuzzing.md) and the special-file handling of image folders; io/ +20 for safetensors and
# framed files refusing special files.
# Raised to 17,660 with issue 26 (checkpoints and exports on safetensors, PyTorch names):
# io/ +140 for the header checksum and metadata reader of safetensors.hpp and checkpoint.hpp on
# safetensors (keeping the framed reader, so earlier files still load); quant/ +100 for
# export.hpp on safetensors (likewise); nn/ +80 for pytorch_names.hpp; train/ +140 for
# state_file.hpp and state files in model.hpp (--eval and --init-from of PyTorch's files).
# Raised to 18,050 with issue 34 (a fuzz finding in stb_image 2.27's JPEG decoder): data/ +380
# for jpeg_entropy_check.hpp, a replay of stb's entropy decoding that refuses the coefficient
# overflows 2.28 refuses (docs/fuzzing.md); train/ +10 for the input checks of issue 34 item 6.
# Raised to 18,430 with issue 31 (low-bit inference): kernels/ +300 for binary_conv.hpp, the
# bit-packed 1-bit x 1-bit convolution (AVX2 and portable tiles) with its reference twin;
# quant/ +80 for binary_weights.hpp (an exported 1-bit weight packed from its codes).
# kernels/ +80 (total unchanged) for binary_conv.hpp's AVX-512 VPOPCNTQ tile and the choice of
# tile by name. Raised to 18,590 with issue 31: kernels/ +170 for binary_threshold.hpp
# (batch-norm and a 1-bit activation folded into integer thresholds, the packing epilogue)
# and the register epilogue the vector tiles share. (top level) +10 (total unchanged) for
# engine.hpp, the umbrella of the engine without the methods (issue 33: compile time).
# Raised to 19,380 with issue 31 (the inference path of exported models): infer/ 650 for the
# layer that runs an exported convolution with the binary, integer or float kernel, the loader
# of a model for inference and the fused runs of binary layers; data/ +60 for image_files.hpp
# (the images predict classifies); io/ +30 for json_int.hpp (integers read from a file's JSON,
# checked: issue 34's fuzz finding); nn/ +20 for Sequential::fuse; train/ +20 for
# read_exported; (top level) +10 for the infer/ includes.
# Raised to 19,850 with issue 32 (data-parallel training over MPI): dist/ 340 for the
# communicator interface, its MPI implementation and DataParallel (gradient sums, rank 0's
# state, the replica check); ops/ +40 and kernels/ +30 for synchronized batch-norm (the
# statistics merged over processes, the backward split into sums and gradients); data/ +10 for
# the loader's shards; train/ +20 for the split evaluation and statistics batches.
# Raised to 19,990 with issue 35 (quantized training speed): quant/ +140, of which quant/alq/
# +60, for activation quantizers as single vectorized passes where they were scalar loops
# (ALQ's activation: its level search, output and Eq. 25 statistics in one blocked pass, with
# SortedPatterns shared with the basis search; APoT's projection and its fused dx/dalpha
# backward; PACT's alpha sum across threads) and QConv2d's rows in the profiler. They made
# ALQ 2/2 and APoT 4/4 steps about 2x faster (docs/performance.md).
# Raised to 21,080 with issue 30 (super-resolution, the SLB paper's Sec. 4.3): data/ +830 for
# data/sr/ (images of any size, MATLAB's rgb2ycbcr and bicubic imresize written out because
# stb's resizer mirrors the edges differently, PSNR, the Set5/Set14 test images and VDSR's
# training pairs and patches: 652 lines) and a private stb_image_write (178, like the other
# stb copies) for the pictures; nn/ +60 for vdsr.hpp; ops/ +60 for squared_error.hpp (the
# regression loss); optim/ +30 for clip.hpp (gradient clipping); train/ +10 and io/ +10 for a
# second trainer's config keys, checkpoint format and progress figure; quant/slb/ +20 for
# the value set scaled by the He factor (SLB without batch-norm); (top level) +5.
# Raised to 21,130 with issue 33 (headers that need no POSIX): core/platform.hpp (20 lines)
# and the standard-library branches of the five headers that call POSIX (image reading,
# terminal test, rename that replaces on every platform: about 30).
# Raised to 21,160 with issue 30: SLB's he_rms weight scale (quant/slb/, +50: the rescaled
# soft and discrete weights and the codes' scale, for networks without batch-norm).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
INC="$ROOT/include/lowbit"

TOTAL_BUDGET=21160
declare -A BUDGET=(
  ["(top level)"]=125
  [autograd/]=500
  [core/]=900
  [data/]=4130
  [dist/]=340
  [io/]=1450
  [infer/]=650
  [kernels/]=3530
  [nn/]=1030
  [ops/]=1300
  [optim/]=330
  [quant/]=5640
  [quant/alq/]=1610
  [quant/apot/]=850
  [quant/fp32/]=50
  [quant/slb/]=870
  [data/sr/]=660
  [quant/ste/]=450
  [train/]=1210
)

# Lines of every file under $1 (recursively), or of the files directly in $1 with -maxdepth 1.
count_lines() {
  find "$@" -type f -print0 | sort -z | xargs -0r cat | wc -l | tr -d ' '
}

row() {  # name, lines, indent
  local name="$1" lines="$2" indent="$3" budget mark=""
  budget="${BUDGET[$name]:--}"
  if [[ "$budget" != "-" && "$lines" -gt "$budget" ]]; then mark="  over its budget"; fi
  printf '%-22s %7s %7s%s\n' "$indent$name" "$lines" "$budget" "$mark"
}

echo "line_budget: lines in include/lowbit/ per folder (comments and blank lines included)"
printf '%-22s %7s %7s\n' "folder" "lines" "budget"
shopt -s nullglob
for dir in "$INC"/*/; do
  name="${dir#"$INC"/}"
  row "$name" "$(count_lines "$dir")" ""
  for sub in "$dir"*/; do
    row "${sub#"$INC"/}" "$(count_lines "$sub")" "  "
  done
done
row "(top level)" "$(count_lines "$INC" -maxdepth 1)" ""

total="$(count_lines "$INC")"
if [[ "$total" -gt "$TOTAL_BUDGET" ]]; then
  printf '%-22s %7s %7s  OVER BUDGET\n' "total" "$total" "$TOTAL_BUDGET"
  echo "line_budget: include/lowbit/ has $total lines, over the budget of $TOTAL_BUDGET" \
       "(scripts/line_budget.sh says how it was set)." >&2
  exit 1
fi
printf '%-22s %7s %7s  ok\n' "total" "$total" "$TOTAL_BUDGET"
