// lowbit — header-only C++17 tensor + reverse-mode autograd engine for low-bit networks.
// Umbrella header: include this one file to get everything public.
#pragma once

// core: tensor, shapes, storage, random numbers, errors, the version
#include "core/compare.hpp"
#include "core/error.hpp"
#include "core/random.hpp"
#include "core/shape.hpp"
#include "core/storage.hpp"
#include "core/tensor.hpp"
#include "core/version.hpp"

// autograd: graph nodes, backward(), no-grad guard, gradient checker
#include "autograd/backward.hpp"
#include "autograd/grad_mode.hpp"
#include "autograd/gradcheck.hpp"
#include "autograd/node.hpp"
#include "autograd/profiler.hpp"

// kernels: raw loops (each fast kernel with its reference twin)
#include "kernels/batch_norm.hpp"
#include "kernels/binary_conv.hpp"
#include "kernels/binary_threshold.hpp"
#include "kernels/broadcast.hpp"
#include "kernels/conv.hpp"
#include "kernels/conv_int8.hpp"
#include "kernels/gemm.hpp"
#include "kernels/omp_wait.hpp"
#include "kernels/parallel.hpp"
#include "kernels/pool.hpp"

// ops: differentiable functions, forward and backward side by side
#include "ops/activation.hpp"
#include "ops/batch_norm.hpp"
#include "ops/binary.hpp"
#include "ops/conv.hpp"
#include "ops/linear.hpp"
#include "ops/matmul.hpp"
#include "ops/pool.hpp"
#include "ops/reduce.hpp"
#include "ops/shape.hpp"
#include "ops/shortcut.hpp"
#include "ops/softmax.hpp"
#include "ops/unary.hpp"

// data: CIFAR-10 readers, subsets, augmentation, loader, lookup
#include "data/augment.hpp"
#include "data/cifar100_binary.hpp"
#include "data/cifar10_binary.hpp"
#include "data/dataset.hpp"
#include "data/find.hpp"
#include "data/image_folder.hpp"
#include "data/loader.hpp"
#include "data/mnist_idx.hpp"

// nn: modules, layers, the paper models
#include "nn/bn_recalibrate.hpp"
#include "nn/factory.hpp"
#include "nn/finite_watch.hpp"
#include "nn/init.hpp"
#include "nn/layers.hpp"
#include "nn/lenet.hpp"
#include "nn/module.hpp"
#include "nn/resnet.hpp"
#include "nn/tta.hpp"
#include "nn/vgg.hpp"

// optim: optimizers
#include "optim/adam.hpp"
#include "optim/optimizer.hpp"
#include "optim/schedule.hpp"
#include "optim/sgd.hpp"

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

// io: checkpoints, typed configs, progress bar
#include "io/atomic_write.hpp"
#include "io/checkpoint.hpp"
#include "io/checksum.hpp"
#include "io/csv.hpp"
#include "io/framed_file.hpp"
#include "io/options.hpp"
#include "io/progress.hpp"
#include "io/safetensors.hpp"
