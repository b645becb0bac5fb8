// Re-estimating every BatchNorm's running statistics from the current weights.
//
// Why: evaluation normalizes with running statistics, a momentum-0.1 average over past
// training steps. When the weights change abruptly (ALQ's pruning removes a layer's bases
// within a few steps, docs/alq.md), that average still remembers the old network for tens of
// steps, and a network that trains well in training mode evaluates badly. Re-estimating the
// statistics over some training batches with the weights as they are now removes that lag
// (the "BN re-estimation" used after quantization, e.g. the SLB rebuttal's BN calibration).
//
// How: up to `batches` no-grad training-mode forwards update every BatchNorm's running mean
// and variance with momentum 1/k at the k-th batch (k = 1 replaces the old values outright),
// so afterwards they are the plain averages of the batch means and of the unbiased batch
// variances (PyTorch's momentum=None). Gamma and beta are not touched; the model's mode and every layer's
// momentum are restored afterwards, also when a forward throws.
#pragma once
#include <functional>
#include <vector>

#include "../autograd/grad_mode.hpp"
#include "layers.hpp"
#include "module.hpp"

namespace lowbit {
namespace nn {

inline void collect_batch_norms(Module& m, std::vector<BatchNorm*>& out) {
  if (auto* b = dynamic_cast<BatchNorm*>(&m)) out.push_back(b);
  for (auto& c : m.children()) collect_batch_norms(*c.second, out);
}

// Returns the number of batches used (fewer than `batches` when `next` runs out first; 0
// leaves the statistics as they were).
inline int64_t recalibrate_batch_norm(Module& model, const std::function<bool(Tensorf&)>& next, int64_t batches) {
  LOWBIT_CHECK(batches > 0, "recalibrate_batch_norm: batches = ", batches, ", expected > 0");
  std::vector<BatchNorm*> bns;
  collect_batch_norms(model, bns);
  Tensorf images;
  if (bns.empty() || !next(images)) return 0;
  struct Restore {
    Module& model;
    std::vector<BatchNorm*>& bns;
    std::vector<double> momenta;
    bool was_training;
    ~Restore() {
      for (size_t k = 0; k < bns.size(); ++k) bns[k]->set_momentum(momenta[k]);
      model.train(was_training);
    }
  } restore{model, bns, {}, model.is_training()};
  for (auto* b : bns) restore.momenta.push_back(b->momentum());
  NoGradGuard no_grad;
  model.train();
  int64_t done = 0;
  do {
    ++done;
    for (auto* b : bns) b->set_momentum(1.0 / static_cast<double>(done));
    model(images);
  } while (done < batches && next(images));
  return done;
}

}  // namespace nn
}  // namespace lowbit
