// Starting a model from another run's weights (train_cifar --init-from; APoT's progressive
// initialization, each stage from the previous higher-precision one, loaded as PyTorch's
// strict=False does; docs/notes/apot.md §1.6).
//
// Every parameter and buffer of the source whose name and shape match the model's is copied.
// The FP32 <-> quantized name mapping: a quantized layer's latent weight "X.wq.latent" takes
// "X.weight" when the source has no "X.wq.latent" (an FP32 conv / linear of a
// higher-precision run), and an FP32 layer's "X.weight" takes "X.wq.latent" likewise. A
// quantizer whose state the source does not hold at all starts from the FP32 weight through
// WeightQuantizer::load_float_weight (ALQ sketches it into binary bases, ALQ Sec. 5.1).
// Everything else keeps its initialization: from an FP32 run the alphas keep their init
// values, from a quantized run they are carried over, as in the APoT authors' code.
#pragma once
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <set>
#include <string>
#include <vector>

#include "../nn/module.hpp"
#include "quantizer.hpp"

namespace lowbit {
namespace quant {

struct InitReport {
  size_t loaded = 0, total = 0;  // model tensors set from the source / in the model
  std::vector<std::string> renamed, started, missing, mismatch, extra;

  nlohmann::json to_json(const std::string& path) const {
    return {{"path", path},
            {"loaded", loaded},
            {"renamed", renamed.size() + started.size()},
            {"missing", missing.size()},
            {"mismatched", mismatch.size()},
            {"extra", extra.size()}};
  }
  std::string text(const std::string& path) const {
    std::string s = "--init-from " + path + ": loaded " + std::to_string(loaded) + " of " + std::to_string(total) +
                    " model tensors\n";
    auto list = [&s](const char* what, const std::vector<std::string>& v) {
      s += std::string("  ") + what + " (" + std::to_string(v.size()) + ")" + (v.empty() ? "" : ":") + "\n";
      for (auto& x : v) s += "    " + x + "\n";
    };
    list("renamed", renamed);
    list("quantizers started from the FP32 weight", started);
    list("missing from the checkpoint, kept at their initial values", missing);
    list("shape mismatches, kept at their initial values", mismatch);
    list("extra in the checkpoint, unused", extra);
    return s;
  }
};

namespace detail {
inline bool ends_with(const std::string& n, const std::string& suffix) {
  return n.size() > suffix.size() && n.compare(n.size() - suffix.size(), suffix.size(), suffix) == 0;
}
inline void find_quantizers(const std::shared_ptr<nn::Module>& m, const std::string& name,
                            std::vector<std::pair<std::string, WeightQuantizer*>>& out) {
  if (auto* q = dynamic_cast<WeightQuantizer*>(m.get())) out.emplace_back(name, q);
  for (auto& [n, c] : m->children()) find_quantizers(c, name.empty() ? n : name + "." + n, out);
}
}  // namespace detail

inline InitReport init_from(nn::Module& model, const nn::StateDict& src) {
  auto strip = [](const std::string& n, const std::string& suffix) {
    return detail::ends_with(n, suffix) ? n.substr(0, n.size() - suffix.size()) : std::string();
  };
  InitReport r;
  nn::StateDict take;
  std::set<std::string> used;
  std::vector<std::string> missing_names;
  const nn::StateDict mine = model.state_dict();
  r.total = mine.size();
  for (auto& [name, t] : mine) {
    std::vector<std::string> cands{name};
    if (auto p = strip(name, ".wq.latent"); !p.empty()) cands.push_back(p + ".weight");
    if (auto p = strip(name, ".weight"); !p.empty()) cands.push_back(p + ".wq.latent");
    bool done = false;
    for (auto& cname : cands) {
      auto it = src.find(cname);
      if (it == src.end()) continue;
      if (it->second.shape() != t.shape()) {
        r.mismatch.push_back(name + " " + shape_str(t.shape()) + " vs " + cname + " " + shape_str(it->second.shape()));
        continue;
      }
      take.emplace(name, it->second);
      used.insert(cname);
      if (cname != name) r.renamed.push_back(cname + " -> " + name);
      done = true;
      break;
    }
    if (!done) missing_names.push_back(name);
  }
  // Quantizers none of whose state the source holds start from the layer's FP32 weight.
  std::vector<std::pair<std::string, WeightQuantizer*>> qs;
  for (auto& [n, c] : model.children()) detail::find_quantizers(c, n, qs);
  std::set<std::string> started_prefixes;
  for (auto& [qname, q] : qs) {
    const std::string prefix = qname + ".";
    bool any = false;
    for (auto& kv : take) any = any || kv.first.rfind(prefix, 0) == 0;
    const std::string layer = strip(qname, ".wq");
    auto it = layer.empty() ? src.end() : src.find(layer + ".weight");
    if (any || it == src.end() || it->second.shape() != q->weight_shape() || used.count(it->first)) continue;
    if (!q->load_float_weight(it->second)) continue;
    used.insert(it->first);
    started_prefixes.insert(prefix);
    r.started.push_back(it->first + " -> " + qname + " (" + q->type_name() + ")");
  }
  for (auto& name : missing_names) {
    bool started = false;
    for (auto& p : started_prefixes) started = started || name.rfind(p, 0) == 0;
    if (started) ++r.loaded;
    else r.missing.push_back(name + " " + shape_str(mine.at(name).shape()));
  }
  // A mismatch that a started quantizer resolved is not a problem any more.
  std::vector<std::string> mm;
  for (auto& m : r.mismatch) {
    bool started = false;
    for (auto& p : started_prefixes) started = started || m.rfind(p, 0) == 0;
    if (!started) mm.push_back(m);
  }
  r.mismatch = mm;
  for (auto& [name, t] : src)
    if (!used.count(name)) r.extra.push_back(name + " " + shape_str(t.shape()));
  model.load_state_dict(take, /*strict=*/false);
  r.loaded += take.size();
  return r;
}

}  // namespace quant
}  // namespace lowbit
