// lowbit — header-only C++17 tensor + reverse-mode autograd engine for low-bit networks.
// Umbrella header: include this one file to get everything public.
#pragma once

// the engine: core, autograd, kernels, ops, nn, optim
#include "engine.hpp"

// data: CIFAR-10 readers, subsets, augmentation, loader, lookup
#include "data/augment.hpp"
#include "data/cifar100_binary.hpp"
#include "data/cifar10_binary.hpp"
#include "data/dataset.hpp"
#include "data/find.hpp"
#include "data/image_files.hpp"
#include "data/image_folder.hpp"
#include "data/loader.hpp"
#include "data/mnist_idx.hpp"
#include "data/sr/pairs.hpp"
#include "data/sr/psnr.hpp"

// quant: quantized layers, quantization spec -> layer factory, STE baselines (DoReFa, BWN,
// PACT), model summary and quantized export
#include "quant/quant.hpp"

#include "train/checkpoint.hpp"
#include "train/config.hpp"
#include "train/data.hpp"
#include "train/evaluate.hpp"
#include "train/finite.hpp"
#include "train/model.hpp"
#include "train/optim.hpp"
#include "train/summary.hpp"

// dist: data-parallel training (the MPI implementation, dist/mpi.hpp, is included by the
// programs that link MPI; docs/distributed.md)
#include "dist/communicator.hpp"
#include "dist/data_parallel.hpp"

// infer: an exported model run with low-bit kernels (binary, integer, float per layer)
#include "infer/binary_chain.hpp"
#include "infer/conv.hpp"
#include "infer/model.hpp"

// io: checkpoints, typed configs, progress bar
#include "io/atomic_write.hpp"
#include "io/checkpoint.hpp"
#include "io/checksum.hpp"
#include "io/csv.hpp"
#include "io/framed_file.hpp"
#include "io/json_int.hpp"
#include "io/options.hpp"
#include "io/progress.hpp"
#include "io/safetensors.hpp"
