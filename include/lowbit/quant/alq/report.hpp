// ALQ's bit and byte accounting (Sec. 5.3, Fig. 2; Sec. 5.4.1-5.4.2, Tables 2-3).
//
// Average bits of a layer: I = (1/G) sum_g I_g (Sec. 3.1), i.e. active coordinates / groups;
// of the network: sum_l I_l N_l / sum_l N_l = active bases x group size / weights, FP32
// conv/linear weights counted at 32 (docs/notes/alq.md §2.9).
//
// Storage of an ALQ layer with G groups of n weights and I_max slots (the paper counts the
// bases, the coordinates and "the look-up-table for the resulting I_g in each group",
// Sec. 5.4.1; the authors' code never computes it, docs/notes/alq.md §2.9 infers this formula):
//
//   bytes_l = ceil(n sum_g I_g / 8)                  binary bases, 1 bit per weight per basis
//           + 4 sum_g I_g                            coordinates, float32
//           + ceil(G ceil(log2(I_max + 1)) / 8)      per-group bit-width table
//
// weight_bytes = sum over ALQ layers of bytes_l + 4 numel for every FP32 conv/linear weight:
// the "Weights" column of Tables 2-3, compression_ratio = 4 N / weight_bytes against FP32.
// model_bytes adds 4 bytes for every other value inference needs (biases, BN parameters and
// running statistics), as quant/summary.hpp does. The export file (quant/export.hpp) is
// larger: it stores I_max bits per weight (quant/alq/basis.hpp, AlqWeight::codes()).
//
// A group with I_g = 0 is fully pruned; an output channel whose groups are all pruned is
// removed (Sec. 5.4.1: "the network gets narrower"); it is counted, not removed.
#pragma once
#include <cmath>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "../../nn/layers.hpp"
#include "basis.hpp"
#include "../layers.hpp"
#include "../summary.hpp"

namespace lowbit {
namespace quant {
namespace alq {

struct LayerReport {
  std::string name;
  int64_t weights = 0, groups = 0, group_size = 0, max_bits = 0, active = 0;
  double avg_bits = 0;
  std::vector<int64_t> histogram;  // groups with I_g = 0, 1, ..., I_max
  int64_t pruned_groups = 0, out_channels = 0, pruned_out_channels = 0;
  int64_t basis_bytes = 0, coordinate_bytes = 0, table_bytes = 0, bytes = 0;
};

inline LayerReport layer_report(const std::string& name, const AlqWeight& q) {
  LayerReport r;
  const Layout& L = q.layout();
  r.name = name;
  r.weights = q.w_hat.numel();
  r.groups = L.groups;
  r.group_size = L.n;
  r.max_bits = q.slots();
  r.histogram.assign(static_cast<size_t>(q.slots() + 1), 0);
  std::vector<int64_t> ig(static_cast<size_t>(L.groups));
  for (int64_t g = 0; g < L.groups; ++g) {
    ig[static_cast<size_t>(g)] = static_cast<int64_t>(q.active(g).size());
    r.active += ig[static_cast<size_t>(g)];
    ++r.histogram[static_cast<size_t>(ig[static_cast<size_t>(g)])];
  }
  r.pruned_groups = r.histogram[0];
  r.avg_bits = static_cast<double>(r.active) / static_cast<double>(L.groups);
  r.out_channels = q.weight_shape()[0];
  std::vector<bool> alive(static_cast<size_t>(r.out_channels), false);
  const int64_t per_channel = r.weights / r.out_channels;  // every grouping stays inside one output channel
  for (int64_t g = 0; g < L.groups; ++g)
    if (ig[static_cast<size_t>(g)] > 0) alive[static_cast<size_t>(L.elem(g, 0) / per_channel)] = true;
  for (bool a : alive) r.pruned_out_channels += !a;
  r.basis_bytes = (L.n * r.active + 7) / 8;
  r.coordinate_bytes = 4 * r.active;
  r.table_bytes = (L.groups * table_bits_per_group(r.max_bits) + 7) / 8;
  r.bytes = r.basis_bytes + r.coordinate_bytes + r.table_bytes;
  return r;
}

struct Report {
  std::vector<LayerReport> layers;
  double avg_weight_bits = 32;  // over every conv/linear weight, FP32 ones at 32
  int64_t weights = 0;          // conv/linear weight elements
  int64_t weight_bytes = 0, fp32_weight_bytes = 0, model_bytes = 0;
  double compression_ratio = 1;  // fp32_weight_bytes / weight_bytes
  std::vector<int64_t> histogram;  // over all ALQ groups
  int64_t pruned_groups = 0, pruned_out_channels = 0;

  nlohmann::json to_json() const {
    nlohmann::json ls = nlohmann::json::array();
    for (auto& l : layers)
      ls.push_back({{"name", l.name}, {"weights", l.weights}, {"groups", l.groups}, {"group_size", l.group_size},
                    {"avg_bits", l.avg_bits}, {"bits_histogram", l.histogram}, {"pruned_groups", l.pruned_groups},
                    {"out_channels", l.out_channels}, {"pruned_out_channels", l.pruned_out_channels},
                    {"bytes", l.bytes}});
    return {{"avg_weight_bits", avg_weight_bits}, {"weight_bytes", weight_bytes},
            {"fp32_weight_bytes", fp32_weight_bytes}, {"compression_ratio", compression_ratio},
            {"model_bytes", model_bytes}, {"bits_histogram", histogram}, {"pruned_groups", pruned_groups},
            {"pruned_out_channels", pruned_out_channels}, {"layers", ls}};
  }
};

inline Report report(const nn::Module& model) {
  Report rep;
  double bit_sum = 0;
  int64_t fp_weight_values = 0;
  for (auto& [name, m] : model.named_modules()) {
    if (auto* c = dynamic_cast<const nn::Conv2d*>(m)) {
      rep.weights += c->weight.numel(), fp_weight_values += c->weight.numel();
      bit_sum += 32.0 * static_cast<double>(c->weight.numel());
    } else if (auto* l = dynamic_cast<const nn::Linear*>(m)) {
      rep.weights += l->weight.numel(), fp_weight_values += l->weight.numel();
      bit_sum += 32.0 * static_cast<double>(l->weight.numel());
    } else if (auto* q = dynamic_cast<const QuantLayer*>(m)) {
      const int64_t n = numel_of(q->wq->weight_shape());
      rep.weights += n;
      if (auto* a = dynamic_cast<const AlqWeight*>(q->wq.get())) {
        LayerReport lr = layer_report(name, *a);
        bit_sum += lr.avg_bits * static_cast<double>(n);
        rep.weight_bytes += lr.bytes;
        if (rep.histogram.size() < lr.histogram.size()) rep.histogram.resize(lr.histogram.size(), 0);
        for (size_t i = 0; i < lr.histogram.size(); ++i) rep.histogram[i] += lr.histogram[i];
        rep.pruned_groups += lr.pruned_groups;
        rep.pruned_out_channels += lr.pruned_out_channels;
        rep.layers.push_back(std::move(lr));
      } else if (q->wq->quantized()) {  // another quantizer: its codes at their bits + scales
        const QuantCodes codes = q->codes();
        bit_sum += static_cast<double>(codes.bits) * static_cast<double>(n);
        rep.weight_bytes += codes.storage_bytes();
      } else {
        fp_weight_values += n;
        bit_sum += 32.0 * static_cast<double>(n);
      }
    }
  }
  rep.weight_bytes += 4 * fp_weight_values;
  rep.fp32_weight_bytes = 4 * rep.weights;
  rep.avg_weight_bits = rep.weights > 0 ? bit_sum / static_cast<double>(rep.weights) : 32.0;
  rep.compression_ratio =
      rep.weight_bytes > 0 ? static_cast<double>(rep.fp32_weight_bytes) / static_cast<double>(rep.weight_bytes) : 1.0;
  // Every other value inference needs, at 4 bytes (quant/summary.hpp's accounting).
  const std::vector<std::string> qprefix = quant::detail::quantized_prefixes(model);
  int64_t other = 0;
  for (auto& kv : model.named_parameters())
    if (!quant::detail::under(kv.first, qprefix)) other += kv.second.numel();
  for (auto& kv : model.named_buffers())
    if (!quant::detail::under(kv.first, qprefix)) other += kv.second.numel();
  rep.model_bytes = rep.weight_bytes + 4 * (other - fp_weight_values);
  return rep;
}

}  // namespace alq
}  // namespace quant
}  // namespace lowbit
