// APoT's training-loop hooks (quant/method.hpp): alpha is an ordinary parameter trained by
// the loop's optimizer in its own parameter group (the trainer's param_groups), so nothing
// happens per step; after each epoch the hooks report every layer's clipping thresholds,
// which is how the paper's observation "the clipping threshold will become universally
// smaller when the bit-width is reduced" (Sec. 2.3) can be checked from metrics.jsonl.
#pragma once
#include <nlohmann/json.hpp>
#include <string>

#include "apot.hpp"
#include "../method.hpp"

namespace lowbit {
namespace quant {

// {"apot_w_alpha": {layer: alpha, ...}, "apot_a_alpha": {layer: alpha, ...}} for the epoch's log.
inline nlohmann::json apot_alphas(const nn::Module& model) {
  nlohmann::json w = nlohmann::json::object(), a = nlohmann::json::object();
  auto layer = [](const std::string& n) {  // "layer1.0.conv1.wq" -> "layer1.0.conv1"
    return n.size() > 3 && n[n.size() - 3] == '.' ? n.substr(0, n.size() - 3) : n;
  };
  for (auto& [name, m] : model.named_modules()) {
    if (auto* q = dynamic_cast<const ApotWeight*>(m); q && q->alpha.defined()) w[layer(name)] = q->alpha.item();
    if (auto* q = dynamic_cast<const ApotActivation*>(m)) a[layer(name)] = q->alpha.item();
  }
  return {{"apot_w_alpha", w}, {"apot_a_alpha", a}};
}

class ApotHooks : public MethodHooks {
 public:
  nlohmann::json end_epoch(nn::Module& model, const BatchSource& /*train*/, int64_t /*epoch*/) override {
    return apot_alphas(model);
  }
};

}  // namespace quant
}  // namespace lowbit
