// summary(model): a row per conv / linear layer — name, quantizer, weight bits, activation
// bits, parameters, storage bits, MACs — and the model's size with the papers' accounting:
//
//   model_bytes = sum over quantized weights of  ceil(numel * bits / 8) + 4 * #scales
//               + 4 * (every other parameter and buffer value inference needs: BN weight,
//                      bias, running mean and running variance, layer biases, FP32 conv/
//                      linear weights, activation-quantizer parameters such as PACT's alpha)
//   fp32_bytes  = the same model with every conv/linear weight in FP32 and no scales
//   compression_ratio = fp32_bytes / model_bytes
//   avg_weight_bits   = sum_l numel(W_l) bits_l / sum_l numel(W_l)   over conv/linear weights
//                       (32 for FP32 layers; scales are not included). For rule binary_bases
//                       (ALQ) bits_l is the layer's average number of active bases, i.e. the
//                       nonzero coordinates x group size / numel, not the stored code width.
//
// Latent parameters (the float W that DoReFa trains, SLB's logits) are training state, not
// model state: they are not counted. model_bytes is exactly the data section of the file
// export_quantized() writes (quant/export.hpp), which a test checks.
//
// MACs need each conv's output size, so summary() runs one forward of a [1, 3, 32, 32] (or the given input shape)
// zero input in eval mode and restores the previous mode of the root module afterwards
// (Module::train sets every child alike). Quantized layers remember their output shape;
// nn::Conv2d has no hook, so the forward runs with grad mode on and the output shape of
// each FP32 conv is read from the autograd node conv2d records (edge 1 is the weight leaf).
// No backward runs; the graph is dropped on return.
//
// FixOPs (APoT Sec. 2.2 "Computation" and Sec. 4.1, Table 1): one FixOP = one 8-bit x 8-bit
// uniform multiply = 64 binary operations. A layer with l-bit uniform weights and m-bit
// activations costs macs * l * m / 64; a weight of n additive powers-of-two terms costs n
// shift-adds of the m-bit activation, macs * n * m / 64 ("pot_terms" = n, WeightQuantizer::pot_terms).
// Counted only where both operands are fixed point (w_bits, a_bits < 32); the extra table is
// printed when some layer has PoT terms.
#pragma once
#include <cstdio>
#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "../nn/layers.hpp"
#include "layers.hpp"

namespace lowbit {
namespace quant {

struct LayerRow {
  std::string name, type, quantizer, act_quantizer;  // quantizer "-" for FP32 layers
  int w_bits = 32, a_bits = 32;
  double avg_w_bits = 32;     // = w_bits, except rule binary_bases (ALQ): active bases per weight
  int64_t weight_params = 0;  // elements of the weight
  int64_t params = 0;         // weight + bias + activation-quantizer parameters
  int64_t storage_bits = 0;   // 8 * packed code bytes + 32 * (scales + bias + aq params), or 32 * params
  int64_t macs = 0;           // multiply-accumulates for one image
  int pot_terms = 0;          // additive PoT terms per weight (APoT/PoT weights), 0 otherwise
  double fixops = 0, fixops_uniform = 0;  // see the file comment; 0 unless both operands are fixed point

  nlohmann::json to_json() const {
    return {{"name", name},     {"type", type},     {"quantizer", quantizer}, {"act_quantizer", act_quantizer},
            {"w_bits", w_bits}, {"a_bits", a_bits}, {"weight_params", weight_params}, {"params", params},
            {"storage_bits", storage_bits}, {"macs", macs}, {"pot_terms", pot_terms}, {"fixops", fixops},
            {"fixops_uniform", fixops_uniform}, {"avg_bits", avg_w_bits}};
  }
};

struct ModelSummary {
  std::vector<LayerRow> layers;
  int64_t params = 0;        // trainable values (named_parameters), latent included
  int64_t buffers = 0;       // buffer values (BN running statistics)
  int64_t weight_params = 0; // conv/linear weight elements
  int64_t model_bytes = 0, fp32_bytes = 0, macs = 0;
  double compression_ratio = 1, avg_weight_bits = 32;
  double fixops = 0, fixops_uniform = 0;  // sums over the layers

  std::string table() const {
    std::ostringstream os;
    char line[256];
    std::snprintf(line, sizeof line, "%-24s %-8s %-14s %5s %5s %10s %12s %12s\n", "layer", "type", "quantizer",
                  "Wbit", "Abit", "params", "storage bits", "MACs");
    os << line << std::string(96, '-') << '\n';
    for (auto& r : layers) {
      std::snprintf(line, sizeof line, "%-24s %-8s %-14s %5d %5d %10lld %12lld %12lld\n", r.name.c_str(), r.type.c_str(),
                    (r.quantizer + (r.act_quantizer.empty() ? "" : "/" + r.act_quantizer)).c_str(), r.w_bits, r.a_bits,
                    static_cast<long long>(r.params), static_cast<long long>(r.storage_bits),
                    static_cast<long long>(r.macs));
      os << line;
    }
    os << std::string(96, '-') << '\n';
    std::snprintf(line, sizeof line,
                  "parameters %lld (+ %lld buffer values), MACs %lld per image\n"
                  "model size %lld bytes (FP32 %lld bytes), compression %.2fx, average weight bits %.4f\n",
                  static_cast<long long>(params), static_cast<long long>(buffers), static_cast<long long>(macs),
                  static_cast<long long>(model_bytes), static_cast<long long>(fp32_bytes), compression_ratio,
                  avg_weight_bits);
    os << line;
    bool pot = false;
    for (auto& r : layers) pot = pot || r.pot_terms > 0;
    if (pot) {  // APoT Table 1's cost next to uniform quantization at the same bits
      std::snprintf(line, sizeof line, "\n%-24s %9s %14s %16s\n", "layer", "PoT terms", "FixOPs", "FixOPs uniform");
      os << line;
      for (auto& r : layers)
        if (r.fixops_uniform > 0) {
          std::snprintf(line, sizeof line, "%-24s %9d %14.0f %16.0f\n", r.name.c_str(), r.pot_terms, r.fixops,
                        r.fixops_uniform);
          os << line;
        }
      std::snprintf(line, sizeof line, "FixOPs %.0f per image (uniform at the same bits %.0f, ratio %.3f)\n", fixops,
                    fixops_uniform, fixops_uniform > 0 ? fixops / fixops_uniform : 1.0);
      os << line;
    }
    return os.str();
  }
  nlohmann::json to_json() const {
    return {{"params", params},         {"buffers", buffers},
            {"model_bytes", model_bytes}, {"fp32_bytes", fp32_bytes},
            {"compression_ratio", compression_ratio}, {"avg_weight_bits", avg_weight_bits},
            {"macs", macs}, {"fixops", fixops}, {"fixops_uniform", fixops_uniform}, {"layers", layers_json()}};
  }
  nlohmann::json layers_json() const {
    nlohmann::json a = nlohmann::json::array();
    for (auto& r : layers) a.push_back(r.to_json());
    return a;
  }
};

namespace detail {
// Names of the quantized weight quantizers ("layer1.0.conv1.wq"): their parameters and
// buffers are replaced by codes in the model's size and in the export file.
inline std::vector<std::string> quantized_prefixes(const nn::Module& model) {
  std::vector<std::string> out;
  for (auto& [name, m] : model.named_modules())
    if (auto* q = dynamic_cast<const WeightQuantizer*>(m); q && q->quantized()) out.push_back(name);
  return out;
}
inline bool under(const std::string& name, const std::vector<std::string>& prefixes) {
  for (auto& p : prefixes)
    if (name.size() > p.size() && name.compare(0, p.size(), p) == 0 && name[p.size()] == '.') return true;
  return false;
}
inline int64_t count_values(const nn::Module& m) {
  int64_t n = 0;
  for (auto& kv : m.named_parameters()) n += kv.second.numel();
  for (auto& kv : m.named_buffers()) n += kv.second.numel();
  return n;
}
}  // namespace detail

inline ModelSummary summary(nn::Module& model, const Shape& input_shape = {1, 3, 32, 32}) {
  LOWBIT_CHECK(input_shape.size() == 4 && input_shape[0] == 1, "summary: input_shape ", shape_str(input_shape),
               ", expected [1, C, H, W]");
  // One forward to learn the conv output sizes (see the file comment).
  std::map<const void*, Shape> fp32_conv_out;
  {
    const bool was_training = model.is_training();
    model.eval();
    try {
      EnableGradGuard grad_on;
      Tensorf y = model(Tensorf::zeros(input_shape));
      std::vector<std::shared_ptr<autograd::Node<float>>> stack;
      std::set<const void*> seen;
      if (y.grad_fn()) stack.push_back(y.grad_fn());
      while (!stack.empty()) {
        auto n = stack.back();
        stack.pop_back();
        if (!seen.insert(n.get()).second) continue;
        if (n->op == "conv2d" && n->edges.size() >= 2 && n->edges[1].leaf)
          fp32_conv_out[n->edges[1].leaf.get()] = n->out_shape;
        for (auto& e : n->edges)
          if (e.node) stack.push_back(e.node);
      }
    } catch (...) {
      model.train(was_training);
      throw;
    }
    model.train(was_training);
  }

  ModelSummary s;
  const std::vector<std::string> qprefix = detail::quantized_prefixes(model);
  for (auto& kv : model.named_parameters()) s.params += kv.second.numel();
  for (auto& kv : model.named_buffers()) s.buffers += kv.second.numel();
  int64_t other_values = 0;  // FP32 values outside quantized weights
  for (auto& kv : model.named_parameters())
    if (!detail::under(kv.first, qprefix)) other_values += kv.second.numel();
  for (auto& kv : model.named_buffers())
    if (!detail::under(kv.first, qprefix)) other_values += kv.second.numel();
  int64_t code_bytes = 0, scale_values = 0, quantized_weight_elems = 0;
  double weight_bits_sum = 0;

  auto per_image = [](const Shape& out) { return out.empty() || out[0] == 0 ? 0 : numel_of(out) / out[0]; };
  for (auto& [name, m] : model.named_modules()) {
    LayerRow r;
    r.name = name;
    r.type = m->type_name();
    if (auto* c = dynamic_cast<const nn::Conv2d*>(m)) {
      auto it = fp32_conv_out.find(c->weight.impl_ptr().get());
      LOWBIT_CHECK(it != fp32_conv_out.end(), "summary: conv layer '", name,
                   "' was not reached by the forward pass, or its weight does not require grad");
      r.quantizer = "-";
      r.weight_params = c->weight.numel();
      r.params = r.weight_params + (c->bias.defined() ? c->bias.numel() : 0);
      r.storage_bits = 32 * r.params;
      r.macs = per_image(it->second) * c->in_channels() * c->kernel_size() * c->kernel_size();
    } else if (auto* l = dynamic_cast<const nn::Linear*>(m)) {
      r.quantizer = "-";
      r.weight_params = l->weight.numel();
      r.params = r.weight_params + (l->bias.defined() ? l->bias.numel() : 0);
      r.storage_bits = 32 * r.params;
      r.macs = l->in_features() * l->out_features();
    } else if (auto* q = dynamic_cast<const QuantLayer*>(m)) {
      const Shape& ws = q->wq->weight_shape();
      r.quantizer = q->wq->type_name();
      r.act_quantizer = q->aq ? q->aq->type_name() : "";
      r.w_bits = q->weight_bits();
      r.a_bits = q->activation_bits();
      r.weight_params = numel_of(ws);
      const int64_t bias = q->bias.defined() ? q->bias.numel() : 0;
      const int64_t aqp = q->aq ? detail::count_values(*q->aq) : 0;
      r.params = r.weight_params + bias + aqp;
      if (q->wq->quantized()) {
        const QuantCodes codes = q->codes();
        r.storage_bits = 8 * codes.code_bytes() + 32 * (static_cast<int64_t>(codes.scales.size()) + bias + aqp);
        code_bytes += codes.code_bytes();
        r.avg_w_bits = r.w_bits;
        if (codes.rule == "binary_bases") {  // ALQ: a zero coordinate is a pruned basis
          int64_t active = 0;
          for (float a : codes.scales) active += a != 0.f;
          r.avg_w_bits = static_cast<double>(active * codes.group_size) / static_cast<double>(r.weight_params);
        }
        scale_values += static_cast<int64_t>(codes.scales.size());
        quantized_weight_elems += r.weight_params;
      } else {
        r.storage_bits = 32 * r.params;
        r.avg_w_bits = r.w_bits;
      }
      LOWBIT_CHECK(!q->last_output_shape().empty(), "summary: quantized layer '", name,
                   "' was not reached by the forward pass");
      if (dynamic_cast<const QConv2d*>(m))
        r.macs = per_image(q->last_output_shape()) * ws[1] * ws[2] * ws[3];
      else
        r.macs = ws[0] * ws[1];
      r.pot_terms = q->wq->pot_terms();  // APoT / PoT levels: shift-adds per weight
      if (r.w_bits < 32 && r.a_bits < 32) {
        r.fixops_uniform = static_cast<double>(r.macs) * r.w_bits * r.a_bits / 64.0;
        r.fixops = r.pot_terms > 0 ? static_cast<double>(r.macs) * r.pot_terms * r.a_bits / 64.0 : r.fixops_uniform;
      }
    } else {
      continue;
    }
    s.weight_params += r.weight_params;
    weight_bits_sum += static_cast<double>(r.weight_params) * r.avg_w_bits;
    s.macs += r.macs;
    s.fixops += r.fixops;
    s.fixops_uniform += r.fixops_uniform;
    s.layers.push_back(r);
  }
  s.model_bytes = code_bytes + 4 * scale_values + 4 * other_values;
  s.fp32_bytes = 4 * (quantized_weight_elems + other_values);
  s.compression_ratio = s.model_bytes > 0 ? static_cast<double>(s.fp32_bytes) / static_cast<double>(s.model_bytes) : 1.0;
  s.avg_weight_bits = s.weight_params > 0 ? weight_bits_sum / static_cast<double>(s.weight_params) : 32.0;
  return s;
}

// Weights-only storage, the papers' "Weights (CR)" column: FP32 conv/linear weights at 4
// bytes, quantized ones at WeightQuantizer::storage_bytes() (codes at their bits + scales;
// ALQ: active bases + coordinates + its bit-width table), average bits per weight from
// WeightQuantizer::mean_bits(). model_bytes adds 4 bytes for every other value inference
// needs (biases, BN parameters and running statistics, activation-quantizer parameters).
struct WeightStorage {
  double avg_weight_bits = 32;
  int64_t weights = 0, weight_bytes = 0, fp32_weight_bytes = 0, model_bytes = 0;
  double compression_ratio = 1;  // fp32_weight_bytes / weight_bytes

  nlohmann::json to_json() const {
    return {{"avg_weight_bits", avg_weight_bits}, {"weight_bytes", weight_bytes},
            {"fp32_weight_bytes", fp32_weight_bytes}, {"compression_ratio", compression_ratio},
            {"model_bytes", model_bytes}};
  }
};

inline WeightStorage weight_storage(const nn::Module& model) {
  WeightStorage w;
  double bit_sum = 0;
  int64_t fp_weight_values = 0;
  for (auto& [name, m] : model.named_modules()) {
    int64_t fp = 0;
    if (auto* c = dynamic_cast<const nn::Conv2d*>(m)) fp = c->weight.numel();
    else if (auto* l = dynamic_cast<const nn::Linear*>(m)) fp = l->weight.numel();
    else if (auto* q = dynamic_cast<const QuantLayer*>(m)) {
      const int64_t n = numel_of(q->wq->weight_shape());
      if (q->wq->quantized()) {
        w.weights += n;
        bit_sum += q->wq->mean_bits() * static_cast<double>(n);
        w.weight_bytes += q->wq->storage_bytes();
      } else {
        fp = n;
      }
    }
    w.weights += fp, fp_weight_values += fp;
    bit_sum += 32.0 * static_cast<double>(fp);
  }
  w.weight_bytes += 4 * fp_weight_values;
  w.fp32_weight_bytes = 4 * w.weights;
  w.avg_weight_bits = w.weights > 0 ? bit_sum / static_cast<double>(w.weights) : 32.0;
  w.compression_ratio =
      w.weight_bytes > 0 ? static_cast<double>(w.fp32_weight_bytes) / static_cast<double>(w.weight_bytes) : 1.0;
  const std::vector<std::string> qprefix = detail::quantized_prefixes(model);
  int64_t other = 0;
  for (auto& kv : model.named_parameters())
    if (!detail::under(kv.first, qprefix)) other += kv.second.numel();
  for (auto& kv : model.named_buffers())
    if (!detail::under(kv.first, qprefix)) other += kv.second.numel();
  w.model_bytes = w.weight_bytes + 4 * (other - fp_weight_values);
  return w;
}

}  // namespace quant
}  // namespace lowbit
