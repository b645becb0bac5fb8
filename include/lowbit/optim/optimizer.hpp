// Optimizer base: parameter groups (each with its own learning rate and weight decay) of
// named parameters, and per-parameter state saved and restored by parameter name, so a
// checkpoint survives a change in parameter order.
#pragma once
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "../autograd/grad_mode.hpp"
#include "../nn/module.hpp"

namespace lowbit {
namespace optim {

using nn::Tensorf;

struct ParamGroup {
  std::vector<std::pair<std::string, Tensorf>> params;
  double lr = 0.01;
  double weight_decay = 0.0;
  // set_lr(lr) gives this group lr * lr_scale, so a group with its own learning rate (APoT's
  // alphas, docs/notes/apot.md §1.4) follows the same schedule.
  double lr_scale = 1.0;
};

class Optimizer {
 public:
  explicit Optimizer(std::vector<ParamGroup> groups) : groups_(std::move(groups)) {
    for (auto& g : groups_)
      for (auto& [name, p] : g.params)
        LOWBIT_CHECK(p.requires_grad(), "Optimizer: parameter '", name, "' ", shape_str(p.shape()),
                     " does not require grad");
  }
  virtual ~Optimizer() = default;
  virtual void step() = 0;
  void zero_grad(bool set_to_none = false) {
    for (auto& g : groups_)
      for (auto& kv : g.params) kv.second.zero_grad(set_to_none);
  }
  std::vector<ParamGroup>& groups() { return groups_; }
  // Sets every group's learning rate to lr * its lr_scale (schedules call this each step).
  void set_lr(double lr) {
    for (auto& g : groups_) g.lr = lr * g.lr_scale;
  }
  // Per-parameter state tensors named "<param name>.<slot>" (e.g. "fc.weight.momentum").
  const std::map<std::string, Tensorf>& state() const { return state_; }
  void load_state(const std::map<std::string, Tensorf>& s) {
    for (auto& [name, t] : s) {
      auto it = state_.find(name);
      if (it != state_.end())
        LOWBIT_CHECK(it->second.shape() == t.shape(), "Optimizer::load_state: '", name, "' is ",
                     shape_str(t.shape()), " in the checkpoint, ", shape_str(it->second.shape()), " here");
    }
    state_.clear();
    for (auto& [name, t] : s) state_.emplace(name, t.clone());
  }

 protected:
  // The state slot for a parameter, created as zeros on first use.
  Tensorf& slot(const std::string& param, const char* what, const Shape& shape) {
    auto key = param + "." + what;
    auto it = state_.find(key);
    if (it == state_.end()) it = state_.emplace(key, Tensorf::zeros(shape)).first;
    // State loaded from a file (load_state) must fit the parameter it belongs to: a wrong
    // shape here would be read and written past its end by the update loops.
    LOWBIT_CHECK(it->second.shape() == shape, "optimizer state '", key, "' has shape ", shape_str(it->second.shape()),
                 ", the parameter needs ", shape_str(shape), " (a damaged or mismatched checkpoint)");
    return it->second;
  }
  bool has_slot(const std::string& param, const char* what) const { return state_.count(param + "." + what) > 0; }

  std::vector<ParamGroup> groups_;
  std::map<std::string, Tensorf> state_;
};

}  // namespace optim
}  // namespace lowbit
