// What a finished run writes about its model: summary.json's model entries (bits, bytes,
// MACs and FixOPs per layer, quant/summary.hpp; weights-only storage; the method's own
// extras, Method::summary) and weight_hist.json, the report's weight histograms (the first,
// a middle and the last quantized layer whose quantizer draws one,
// WeightQuantizer::histogram).
#pragma once
#include <algorithm>
#include <nlohmann/json.hpp>
#include <string>
#include <utility>
#include <vector>

#include "../kernels/parallel.hpp"
#include "../quant/layers.hpp"
#include "../quant/registry.hpp"
#include "../quant/summary.hpp"
#include "config.hpp"

namespace lowbit {
namespace train {

// summary.json's run entries: what was trained on what, the result, the time. `run` is the
// training loop's record (the one the checkpoint holds).
inline json run_summary(const json& cfg, const json& run, int64_t train_images, int64_t test_images,
                        const std::string& data_description) {
  const double seen = run.at("train_images_seen").get<double>(), train_s = run.at("train_s").get<double>();
  return {{"model", cfg.at("model")},
          {"method", cfg.at("method")},
          {"w_bits", cfg.at("w_bits")},
          {"a_bits", cfg.at("a_bits")},
          {"train_images", train_images},
          {"test_images", test_images},
          {"epochs", cfg.at("epochs")},
          {"final_test_acc", run.value("final_test_acc", 0.0)},
          {"best_test_acc", run.at("best_test_acc")},
          {"best_test_acc_note", "max over epochs of the test accuracy: chosen on the test set (optimistic); with "
                                 "val_images, test_acc_at_best_val is the epoch chosen on held-out training images"},
          {"val_images", cfg.value("val_images", 0)},
          {"best_val_acc", run.value("best_val_acc", json(nullptr))},
          {"best_val_epoch", run.value("best_val_epoch", json(nullptr))},
          {"test_acc_at_best_val", run.value("test_acc_at_best_val", json(nullptr))},
          {"data_info", run.value("data_info", json(nullptr))},
          {"wall_s", run.at("wall_s")},
          {"images_per_s", seen / std::max(1e-9, train_s)},
          {"init_from", run.value("init_from", json(nullptr))},  // --init-from: path and counts
          {"threads", max_threads()},
          {"seed", cfg.at("seed")},
          {"data", data_description},
          {"config", cfg}};
}

// summary.json's model entries, measured on the final model; `input` is one image's batch
// shape [1, C, H, W] (the MACs depend on it).
inline json model_summary(nn::Module& model, const json& cfg, const Shape& input = {1, 3, 32, 32}) {
  // Bits can change during training (ALQ prunes), so this is measured on the final model.
  const quant::ModelSummary s = quant::summary(model, input);
  json j = {// The papers' accounting (docs/quantization.md): quantized weights at their bit width
            // + their scales, 4 bytes for every other value.
            {"model_bytes", s.model_bytes},
            {"fp32_bytes", s.fp32_bytes},
            {"compression_ratio", s.compression_ratio},
            {"avg_weight_bits", s.avg_weight_bits},
            {"macs_per_image", s.macs},
            {"layers", s.layers_json()},
            {"fixops_per_image", s.fixops},  // APoT Table 1's cost (quant/summary.hpp)
            {"fixops_uniform_per_image", s.fixops_uniform},
            {"weight_storage", quant::weight_storage(model).to_json()}};
  int64_t params = 0;
  for (auto& p : model.parameters()) params += p.numel();
  j["params"] = params;
  const quant::QuantSpec spec = quant::resolve(quant_spec(cfg));
  j.update(quant::find_method(spec.method).summary(model, spec));
  return j;
}

// {"layers": [{"name", "values", "levels", "xlabel", ...}]}; empty when no quantizer draws.
inline json weight_histograms(const nn::Module& model) {
  std::vector<std::pair<std::string, json>> hs;
  for (auto& [name, m] : model.named_modules())
    if (auto* q = dynamic_cast<const quant::QuantLayer*>(m))
      if (json h = q->wq->histogram(); !h.is_null()) hs.emplace_back(name, std::move(h));
  json layers = json::array();
  if (hs.empty()) return json{{"layers", layers}};
  std::vector<size_t> pick{0, hs.size() / 2, hs.size() - 1};
  pick.erase(std::unique(pick.begin(), pick.end()), pick.end());
  for (size_t k : pick) {
    json h = hs[k].second;
    h["name"] = hs[k].first;
    layers.push_back(h);
  }
  return json{{"layers", layers}};
}

}  // namespace train
}  // namespace lowbit
