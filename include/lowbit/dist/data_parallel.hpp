// Data-parallel training (docs/distributed.md): N processes hold identical replicas of the
// model; each trains on its shard of every batch (data/loader.hpp's shard option: the same
// batches and augmentation draws as one process, split by position), and every process
// takes the same optimizer step on the whole batch's gradient, so the replicas stay
// identical, bit for bit, without ever sending weights. This is PyTorch DDP's and Horovod's
// scheme; the transport is a dist::Communicator (dist/mpi.hpp).
//
// Why the result is one process's with batch B (up to float rounding): the batch's loss is
// the mean over its B images, L = sum_r (n_r / B) L_r where L_r is the mean over the n_r
// images of process r. Each process scales its loss by n_r / B (loss_weight) before
// backward, so its gradients are its part of dL/dtheta, and sum_gradients adds the parts.
// Batch-norm: by default each process normalizes with its shard's statistics (as DDP does,
// a batch of B/N per BN); with sync_bn every BatchNorm uses the whole batch's statistics
// (ops/batch_norm.hpp), which makes training the one-process computation.
//
// What is not a gradient is made identical by copying rank 0's: the buffers (BN running
// statistics, which differ between processes without sync_bn) and the method's state
// (MethodHooks::state(), e.g. SLB's continuous BN statistics), after every epoch's training
// and before its evaluation and checkpoint (broadcast_state). Every method decision that
// depends only on weights, gradients and optimizer state (ALQ's basis search, coordinate
// steps and pruning, SLB's temperature by global step, APoT's alphas) is then computed from
// identical inputs on every process; check_replicas verifies the weights really agree.
//
// Gradients are summed in buckets of at most bucket_values floats after backward, not
// overlapped with it: docs/distributed.md measures why overlap does not pay on CPUs here.
#pragma once
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <utility>
#include <vector>

#include "../core/error.hpp"
#include "../nn/layers.hpp"
#include "../nn/module.hpp"
#include "../quant/method.hpp"
#include "communicator.hpp"

namespace lowbit {
namespace dist {

using nn::Tensorf;

class DataParallel {
 public:
  DataParallel(std::shared_ptr<const Communicator> comm, nn::Module& model, bool sync_bn,
               size_t bucket_values = size_t(1) << 20)
      : comm_(std::move(comm)), bucket_(bucket_values) {
    LOWBIT_CHECK(comm_ != nullptr && bucket_ > 0, "DataParallel: a communicator and a bucket size > 0 are needed");
    if (sync_bn) set_sync_bn(model, comm_);
  }

  const Communicator& comm() const { return *comm_; }
  int rank() const { return comm_->rank(); }
  int size() const { return comm_->size(); }

  // The factor of this process's loss: its images over the whole batch's.
  static double loss_weight(int64_t local_images, int64_t batch_images) {
    return static_cast<double>(local_images) / static_cast<double>(batch_images);
  }
  // Per-process values (loss sum, images, correct predictions) summed over the processes.
  void sum(std::vector<double>& v) const { comm_->sum(v.data(), v.size()); }

  // After backward: every parameter's gradient becomes the sum of every process's. A
  // parameter that no process has a gradient for keeps none (the optimizer skips it).
  void sum_gradients(const nn::Module& model) const {
    std::vector<Tensorf> params = model.parameters();
    std::vector<double> has(params.size(), 0.0);
    size_t total = 0;
    for (size_t i = 0; i < params.size(); ++i) {
      has[i] = params[i].grad().defined() ? 1.0 : 0.0;
      total += static_cast<size_t>(params[i].numel());
    }
    std::vector<float> flat(total, 0.0f);
    size_t at = 0;
    for (auto& p : params) {
      if (const Tensorf g = p.grad(); g.defined()) std::copy(g.data(), g.data() + g.numel(), flat.begin() + static_cast<std::ptrdiff_t>(at));
      at += static_cast<size_t>(p.numel());
    }
    comm_->sum(has.data(), has.size());
    for (size_t b = 0; b < total; b += bucket_) comm_->sum(flat.data() + b, std::min(bucket_, total - b));
    at = 0;
    for (size_t i = 0; i < params.size(); ++i) {
      const size_t n = static_cast<size_t>(params[i].numel());
      if (has[i] > 0) {
        Tensorf g = params[i].grad();
        if (!g.defined()) g = Tensorf::zeros(params[i].shape());
        std::copy(flat.begin() + static_cast<std::ptrdiff_t>(at), flat.begin() + static_cast<std::ptrdiff_t>(at + n), g.data());
        params[i].set_grad(g);
      }
      at += n;
    }
  }

  // Rank 0's buffers and method state replace every other process's.
  void broadcast_state(const nn::Module& model, quant::MethodHooks& hooks) const {
    const auto buffers = model.named_buffers();
    size_t total = 0;
    for (auto& b : buffers) total += static_cast<size_t>(b.second.numel());
    std::vector<float> flat(total);
    size_t at = 0;
    for (auto& b : buffers) {
      std::copy(b.second.data(), b.second.data() + b.second.numel(), flat.begin() + static_cast<std::ptrdiff_t>(at));
      at += static_cast<size_t>(b.second.numel());
    }
    comm_->broadcast(flat.data(), flat.size());
    at = 0;
    for (auto& b : buffers) {
      Tensorf t = b.second;
      std::copy(flat.begin() + static_cast<std::ptrdiff_t>(at), flat.begin() + static_cast<std::ptrdiff_t>(at + static_cast<size_t>(t.numel())), t.data());
      at += static_cast<size_t>(t.numel());
    }
    std::string state = comm_->rank() == 0 ? hooks.state().dump() : std::string();
    comm_->broadcast(state);
    if (comm_->rank() != 0) hooks.load_state(nlohmann::json::parse(state));
  }

  // Fails, naming the first parameter whose values differ from rank 0's (a 32-bit FNV-1a
  // hash of its bytes per parameter, gathered from every process).
  void check_replicas(const nn::Module& model) const {
    const auto params = model.named_parameters();
    std::vector<double> mine(params.size()), all(params.size() * static_cast<size_t>(comm_->size()));
    for (size_t i = 0; i < params.size(); ++i) mine[i] = static_cast<double>(hash(params[i].second));
    comm_->gather_all(mine.data(), mine.size(), all.data());
    for (int r = 1; r < comm_->size(); ++r)
      for (size_t i = 0; i < params.size(); ++i)
        LOWBIT_CHECK(all[static_cast<size_t>(r) * params.size() + i] == all[i], "data-parallel training: parameter '",
                     params[i].first, "' of process ", r, " differs from process 0's (the replicas diverged; a bug: ",
                     "every process should take the same step)");
  }

  // Every BatchNorm of `model` synchronized over `comm` (null: each process's own batch).
  static void set_sync_bn(nn::Module& model, const std::shared_ptr<const Communicator>& comm) {
    if (auto* bn = dynamic_cast<nn::BatchNorm*>(&model)) bn->set_sync(comm);
    for (auto& c : model.children()) set_sync_bn(*c.second, comm);
  }

 private:
  static uint32_t hash(const Tensorf& t) {
    uint32_t h = 2166136261u;
    const auto* p = reinterpret_cast<const unsigned char*>(t.data());
    for (size_t i = 0; i < static_cast<size_t>(t.numel()) * sizeof(float); ++i) h = (h ^ p[i]) * 16777619u;
    return h;
  }

  std::shared_ptr<const Communicator> comm_;
  size_t bucket_;
};

}  // namespace dist
}  // namespace lowbit
