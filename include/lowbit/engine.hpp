// lowbit's engine alone: tensors, autograd, kernels, differentiable ops, modules and the
// paper models, optimizers. No quantization methods, data readers, file formats or trainer:
// so none of nlohmann-json, stb_image or the methods' code, which lowbit.hpp's method registry
// compiles into every translation unit that includes it (each method registers itself when
// its header is included). A prototype of the engine itself compiles several times faster
// with this header (docs/performance.md, "Compile time"); lowbit.hpp includes it.
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
#include "ops/squared_error.hpp"
#include "ops/unary.hpp"

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
#include "nn/vdsr.hpp"
#include "nn/vgg.hpp"

// optim: optimizers
#include "optim/adam.hpp"
#include "optim/clip.hpp"
#include "optim/optimizer.hpp"
#include "optim/schedule.hpp"
#include "optim/sgd.hpp"
