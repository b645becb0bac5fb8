// The optimizer's parameter groups of a (quantized) model:
//   0  conv and linear weights (rank >= 2, the latent weights of quantized layers included):
//      the config's weight decay;
//   1  everything else (BN, biases): no weight decay;
//   then one group per rule of the method (Method::param_groups) for the parameters a
//   quantizer tagged (nn::Module::tag_parameter), e.g. PACT's alpha with its own decay or
//   APoT's alphas with their own learning rates (lr_scale = rule lr / base lr, so the
//   schedule scales them alike). Empty tagged groups are left out.
// A tag no rule claims falls back to groups 0/1 by rank.
#pragma once
#include <map>
#include <string>
#include <vector>

#include "../nn/module.hpp"
#include "../optim/optimizer.hpp"
#include "registry.hpp"
#include "spec.hpp"

namespace lowbit {
namespace quant {

inline std::vector<optim::ParamGroup> param_groups(const nn::Module& model, const QuantSpec& spec, double lr,
                                                   double weight_decay) {
  const QuantSpec s = resolve(spec);
  const std::vector<ParamGroupRule> rules = find_method(s.method).param_groups(s);
  std::vector<optim::ParamGroup> groups(2 + rules.size());
  for (auto& g : groups) g.lr = lr;
  groups[0].weight_decay = weight_decay;
  std::map<std::string, size_t> by_tag;
  for (size_t k = 0; k < rules.size(); ++k) {
    optim::ParamGroup& g = groups[2 + k];
    g.weight_decay = rules[k].weight_decay;
    if (rules[k].lr >= 0) g.lr_scale = rules[k].lr / lr;
    by_tag.emplace(rules[k].tag, 2 + k);
  }
  const std::map<std::string, std::string> tags = model.parameter_tags();
  for (auto& kv : model.named_parameters()) {
    size_t g = kv.second.dim() >= 2 ? 0 : 1;
    if (auto t = tags.find(kv.first); t != tags.end())
      if (auto r = by_tag.find(t->second); r != by_tag.end()) g = r->second;
    groups[g].params.push_back(kv);
  }
  std::vector<optim::ParamGroup> out{groups[0], groups[1]};
  for (size_t k = 2; k < groups.size(); ++k)
    if (!groups[k].params.empty()) out.push_back(groups[k]);
  return out;
}

}  // namespace quant
}  // namespace lowbit
