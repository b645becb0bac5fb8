// Module: the base of every layer and model. It owns named parameters (trained), named
// buffers (state that is saved but not trained, e.g. batch-norm running statistics) and
// named child modules, and gives them hierarchical names such as "layer2.0.conv1.weight"
// — the names that state dicts, checkpoints, optimizers and summaries use.
//
// Tensors are handles: a module keeps each registered tensor for its whole life and only
// ever changes its *data* in place (loading a state dict copies into it), so the handle in
// the registry and the member a layer uses are always the same tensor.
#pragma once
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "../autograd/profiler.hpp"
#include "../core/tensor.hpp"
#include "finite_watch.hpp"

namespace lowbit {
namespace nn {

using Tensorf = Tensor<float>;
using StateDict = std::map<std::string, Tensorf>;

class Module {
 public:
  virtual ~Module() = default;
  virtual Tensorf forward(const Tensorf& x) = 0;
  // Runs forward; leaf modules (no children) are timed when a ProfileScope is active, and
  // every output is checked for NaN/inf when a FiniteWatch is active (nn/finite_watch.hpp).
  Tensorf operator()(const Tensorf& x) {
    Tensorf y;
    if (active_profile() == nullptr || !children_.empty()) {
      y = forward(x);
    } else {
      ProfileTimer timer(false, type_name());
      y = forward(x);
    }
    if (FiniteWatch* w = FiniteWatch::active()) w->see(this, type_name(), y);
    return y;
  }
  // Short type name for summaries ("Conv2d", "BatchNorm2d", ...).
  virtual std::string type_name() const = 0;

  // ---- registration (used by constructors of derived classes) --------------------------
  Tensorf register_parameter(const std::string& name, Tensorf t, bool requires_grad = true) {
    check_new_name(name);
    t.set_requires_grad(requires_grad);
    params_.emplace_back(name, t);
    return t;
  }
  Tensorf register_buffer(const std::string& name, Tensorf t) {
    check_new_name(name);
    buffers_.emplace_back(name, t);
    return t;
  }
  // Tags a parameter of this module (registered before) with a group name, e.g. PACT's
  // alpha "pact_alpha": a training program gives tagged parameters their own learning rate
  // and weight decay (quant/param_groups.hpp) without knowing which module owns them.
  void tag_parameter(const std::string& name, std::string tag) {
    bool found = false;
    for (auto& p : params_) found = found || p.first == name;
    LOWBIT_CHECK(found, type_name(), ": tag_parameter('", name, "'): no such parameter");
    tags_.emplace_back(name, std::move(tag));
  }
  // Full parameter name -> tag, for every tagged parameter of this module and its children.
  std::map<std::string, std::string> parameter_tags(const std::string& prefix = "") const {
    std::map<std::string, std::string> out;
    for (auto& [n, t] : tags_) out.emplace(join(prefix, n), t);
    for (auto& [n, m] : children_) {
      auto sub = m->parameter_tags(join(prefix, n));
      out.insert(sub.begin(), sub.end());
    }
    return out;
  }
  template <class M>
  std::shared_ptr<M> register_module(const std::string& name, std::shared_ptr<M> m) {
    check_new_name(name);
    LOWBIT_CHECK(m != nullptr, type_name(), ": register_module('", name, "') got a null module");
    children_.emplace_back(name, m);
    return m;
  }

  // ---- traversal ------------------------------------------------------------------------
  std::vector<std::pair<std::string, Tensorf>> named_parameters(const std::string& prefix = "") const {
    std::vector<std::pair<std::string, Tensorf>> out;
    collect(prefix, out, true);
    return out;
  }
  std::vector<std::pair<std::string, Tensorf>> named_buffers(const std::string& prefix = "") const {
    std::vector<std::pair<std::string, Tensorf>> out;
    collect(prefix, out, false);
    return out;
  }
  std::vector<Tensorf> parameters() const {
    std::vector<Tensorf> out;
    for (auto& kv : named_parameters()) out.push_back(kv.second);
    return out;
  }
  // This module (name "") and every descendant, depth first, with hierarchical names.
  std::vector<std::pair<std::string, const Module*>> named_modules(const std::string& prefix = "") const {
    std::vector<std::pair<std::string, const Module*>> out{{prefix, this}};
    for (auto& [n, m] : children_) {
      auto sub = m->named_modules(join(prefix, n));
      out.insert(out.end(), sub.begin(), sub.end());
    }
    return out;
  }
  const std::vector<std::pair<std::string, std::shared_ptr<Module>>>& children() const { return children_; }
  const std::vector<std::pair<std::string, Tensorf>>& own_parameters() const { return params_; }

  // ---- mode and gradients -------------------------------------------------------------
  void train(bool on = true) {
    training_ = on;
    for (auto& c : children_) c.second->train(on);
  }
  void eval() { train(false); }
  bool is_training() const { return training_; }
  void zero_grad(bool set_to_none = false) {
    for (auto& p : parameters()) p.zero_grad(set_to_none);
  }

  // ---- state dict -------------------------------------------------------------------------
  // Parameters and buffers by hierarchical name; the tensors share data with the module.
  StateDict state_dict() const {
    StateDict sd;
    for (auto& kv : named_parameters()) sd.emplace(kv.first, kv.second);
    for (auto& kv : named_buffers()) sd.emplace(kv.first, kv.second);
    return sd;
  }
  // Copies every entry into the module's tensors. Missing or extra names and shape
  // mismatches are all reported in one error (nothing is copied then). strict = false
  // ignores missing and extra names but still refuses shape mismatches.
  void load_state_dict(const StateDict& sd, bool strict = true) {
    const StateDict mine = state_dict();
    std::string problems;
    for (auto& [name, t] : mine) {
      auto it = sd.find(name);
      if (it == sd.end()) {
        if (strict) problems += "\n  missing: " + name + " " + shape_str(t.shape());
      } else if (it->second.shape() != t.shape()) {
        problems += "\n  shape mismatch: " + name + " is " + shape_str(t.shape()) + " in the model, " +
                    shape_str(it->second.shape()) + " in the state dict";
      }
    }
    if (strict)
      for (auto& [name, t] : sd)
        if (!mine.count(name)) problems += "\n  unexpected: " + name + " " + shape_str(t.shape());
    LOWBIT_CHECK(problems.empty(), "load_state_dict: ", type_name(), " does not match the state dict:", problems);
    NoGradGuard no_grad;
    for (auto& [name, t] : mine) {
      auto it = sd.find(name);
      if (it != sd.end()) Tensorf(t).copy_(it->second);
    }
  }

 protected:
  static std::string join(const std::string& prefix, const std::string& name) {
    return prefix.empty() ? name : prefix + "." + name;
  }
  // Replaces children [first, last) by `m`, registered under the first one's name: the
  // inference-time fusion of a Sequential's layers (nn::Sequential::fuse, infer/binary_chain.hpp).
  // `m` usually holds the replaced modules itself, under their old names.
  void replace_children(size_t first, size_t last, std::shared_ptr<Module> m) {
    LOWBIT_CHECK(first < last && last <= children_.size() && m != nullptr, type_name(), ": replace_children(", first,
                 ", ", last, ") of ", children_.size(), " children");
    const std::string name = children_[first].first;
    children_.erase(children_.begin() + static_cast<std::ptrdiff_t>(first), children_.begin() + static_cast<std::ptrdiff_t>(last));
    children_.insert(children_.begin() + static_cast<std::ptrdiff_t>(first), {name, std::move(m)});
  }

 private:
  void check_new_name(const std::string& name) const {
    LOWBIT_CHECK(!name.empty() && name.find('.') == std::string::npos, type_name(), ": name '", name,
                 "' must be non-empty and contain no '.'");
    auto taken = [&](const auto& v) {
      for (auto& kv : v)
        if (kv.first == name) return true;
      return false;
    };
    LOWBIT_CHECK(!taken(params_) && !taken(buffers_) && !taken(children_), type_name(), ": name '", name,
                 "' is registered twice");
  }
  void collect(const std::string& prefix, std::vector<std::pair<std::string, Tensorf>>& out, bool params) const {
    for (auto& kv : params ? params_ : buffers_) out.emplace_back(join(prefix, kv.first), kv.second);
    for (auto& [n, m] : children_) m->collect(join(prefix, n), out, params);
  }

  std::vector<std::pair<std::string, Tensorf>> params_, buffers_;
  std::vector<std::pair<std::string, std::string>> tags_;  // parameter name -> group tag
  std::vector<std::pair<std::string, std::shared_ptr<Module>>> children_;
  bool training_ = true;
};

}  // namespace nn
}  // namespace lowbit
