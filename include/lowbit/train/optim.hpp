// The optimizer and learning-rate schedule of a run (train/config.hpp keys optimizer, lr,
// momentum, nesterov, weight_decay, schedule, warmup_epochs, milestones, gamma). Parameter
// groups come from quant/param_groups.hpp (weight decay on conv/linear weights only, the
// method's tagged groups); a method with its own optimizer (ALQ) supplies it through its
// hooks and the config's optimizer keys are then not used.
#pragma once
#include <memory>
#include <nlohmann/json.hpp>

#include "../optim/adam.hpp"
#include "../optim/schedule.hpp"
#include "../optim/sgd.hpp"
#include "../quant/method.hpp"
#include "../quant/param_groups.hpp"
#include "config.hpp"

namespace lowbit {
namespace train {

inline std::unique_ptr<optim::Optimizer> make_optimizer(nn::Module& model, const json& cfg, quant::MethodHooks& hooks) {
  auto groups = [&]() {
    return quant::param_groups(model, quant_spec(cfg), cfg.at("lr").get<double>(), cfg.at("weight_decay").get<double>());
  };
  if (auto own = hooks.make_optimizer(model, groups())) return own;  // e.g. ALQ's
  const std::string name = cfg.at("optimizer");
  if (name == "sgd")
    return std::make_unique<optim::SGD>(
        groups(), optim::SgdOptions{cfg.at("momentum").get<double>(), 0.0, cfg.at("nesterov").get<bool>()});
  optim::AdamOptions o;
  o.decoupled_weight_decay = name == "adamw";
  return std::make_unique<optim::Adam>(groups(), o);
}

inline optim::Schedule make_schedule(const json& cfg, int64_t steps_per_epoch) {
  optim::Schedule s;
  s.kind = optim::Schedule::parse_kind(cfg.at("schedule"));
  s.base_lr = cfg.at("lr").get<double>();
  s.warmup_steps = static_cast<int64_t>(cfg.at("warmup_epochs").get<double>() * static_cast<double>(steps_per_epoch));
  s.total_steps = cfg.at("epochs").get<int64_t>() * steps_per_epoch;
  s.final_lr = 0.0;
  s.gamma = cfg.at("gamma").get<double>();
  for (auto& m : cfg.at("milestones")) s.milestones.push_back(m.get<int64_t>() * steps_per_epoch);
  s.steps_per_decay = steps_per_epoch;
  return s;
}

}  // namespace train
}  // namespace lowbit
