// Quantized model export: packed integer codes + scales for every quantized weight, FP32
// for everything else (BN weights, biases and running statistics, unquantized layers,
// activation-quantizer parameters), in one versioned binary file, and the loader that turns
// it back into an inference model.
//
//   bytes 0-7    magic "LOWBITQM"
//   bytes 8-11   format version (uint32, little-endian) = 1
//   bytes 12-19  length L of the JSON header (uint64)
//   next L bytes JSON header:
//                {"meta": {...caller's, e.g. the trainer config and "spec"...},
//                 "data_bytes": D,
//                 "quantized": [{"name": "layer1.0.conv1.wq", "quantizer": "DoReFa",
//                                "shape": [16,16,3,3], "bits": 2, "rule": "scaled_codebook",
//                                "group_size": 2304, "levels": [-1, -0.333.., ...],
//                                "n_scales": 0, "offset": 0, "code_bytes": 576}, ...],
//                 "tensors": [{"name": "bn1.weight", "shape": [16], "offset": ...}, ...]}
//   next D bytes data: per quantized weight, its codes packed LSB-first at `bits` bits
//                (quant/codes.hpp; ceil(numel bits / 8) bytes) followed by n_scales
//                float32 scales; per FP32 tensor, its float32 values (little-endian)
//   last 8 bytes total file length (uint64), so a truncated file is detected
//
// D equals summary(model).model_bytes: the file is the model size plus 28 + L header bytes.
// Dequantization of entry e: w[i] = (n_scales ? scales[i / group_size] : 1) * levels[code[i]]
// (rule scaled_codebook; rule binary_bases in quant/codes.hpp), bit-exact with the trained
// model's fake-quantized forward weight. Levels are in the header: they follow from
// (quantizer, bits) and are not part of the papers' size accounting.
//
// The framing (magic, version, header length, trailer; written to "<path>.tmp" and renamed
// over <path>, so a crash never leaves a torn file) is io/framed_file.hpp's. load: read_quantized() parses and checks it; load_quantized_into() fills a
// model built with frozen_factory(spec) (FrozenWeight layers + FP32 tensors);
// load_quantized_model() does both from the "spec" stored in meta.
#pragma once
#include <cstdint>
#include <cstring>
#include <functional>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "../io/framed_file.hpp"
#include "factory.hpp"
#include "spec.hpp"
#include "summary.hpp"

namespace lowbit {
namespace quant {

constexpr char kQuantMagic[8] = {'L', 'O', 'W', 'B', 'I', 'T', 'Q', 'M'};
constexpr uint32_t kQuantVersion = 1;

struct QuantizedModelFile {
  nlohmann::json meta;
  std::map<std::string, QuantCodes> weights;        // by weight-quantizer name
  std::map<std::string, std::string> quantizer_of;  // its quantizer type at export
  nn::StateDict tensors;                            // FP32 parameters and buffers
  uint64_t header_bytes = 0, data_bytes = 0;        // file size = header_bytes + data_bytes
};

inline void export_quantized(const nn::Module& model, const std::string& path,
                             const nlohmann::json& meta = nlohmann::json::object()) {
  const std::vector<std::string> qprefix = detail::quantized_prefixes(model);
  std::string data;
  nlohmann::json qtable = nlohmann::json::array(), ttable = nlohmann::json::array();
  for (auto& [name, m] : model.named_modules()) {
    auto* q = dynamic_cast<const WeightQuantizer*>(m);
    if (!q || !q->quantized()) continue;
    const QuantCodes c = q->codes();
    c.validate("export_quantized: '" + name + "'");
    const std::vector<uint8_t> packed = pack_codes(c.codes, c.bits);
    qtable.push_back({{"name", name},
                      {"quantizer", q->type_name()},
                      {"shape", c.shape},
                      {"bits", c.bits},
                      {"rule", c.rule},
                      {"group_size", c.group_size},
                      {"levels", c.levels},
                      {"n_scales", c.scales.size()},
                      {"offset", data.size()},
                      {"code_bytes", packed.size()}});
    if (c.group_interleave != 1) qtable.back()["group_interleave"] = c.group_interleave;  // ALQ pixel-wise
    data.append(reinterpret_cast<const char*>(packed.data()), packed.size());
    data.append(reinterpret_cast<const char*>(c.scales.data()), c.scales.size() * sizeof(float));
  }
  auto add_tensor = [&](const std::string& name, const Tensorf& t) {
    if (detail::under(name, qprefix)) return;  // latent state of a quantized weight
    ttable.push_back({{"name", name}, {"shape", t.shape()}, {"offset", data.size()}});
    data.append(reinterpret_cast<const char*>(t.data()), static_cast<size_t>(t.numel()) * sizeof(float));
  };
  for (auto& [name, t] : model.named_parameters()) add_tensor(name, t);
  for (auto& [name, t] : model.named_buffers()) add_tensor(name, t);
  io::write_framed(path, kQuantMagic, kQuantVersion,
                   {{"meta", meta}, {"data_bytes", data.size()}, {"quantized", qtable}, {"tensors", ttable}}, data,
                   "export_quantized");
}

// True when the file starts with the quantized-model magic (the trainer's --eval uses it).
inline bool is_quantized_file(const std::string& path) { return io::has_magic(path, kQuantMagic); }

inline QuantizedModelFile read_quantized(const std::string& path) {
  io::FramedFile file = io::read_framed(path, kQuantMagic, kQuantVersion, "quantized model", "read_quantized");
  const nlohmann::json& j = file.header;
  const std::string& data = file.data;
  QuantizedModelFile out;
  try {
    out.meta = j.at("meta");
    out.data_bytes = j.at("data_bytes").get<uint64_t>();
  } catch (const std::exception& e) {
    lowbit::detail::fail("read_quantized: '", path, "' has a corrupt header: ", e.what());
  }
  out.header_bytes = file.header_bytes;
  LOWBIT_CHECK(out.data_bytes == data.size(), "read_quantized: '", path, "' is truncated or corrupt: ",
               data.size(), " data bytes, expected ", out.data_bytes, " from its header");
  auto span = [&](const nlohmann::json& off, uint64_t n, const std::string& what) {
    return data.data() + io::checked_offset(off, n, data.size(), "read_quantized: '" + path + "': " + what);
  };
  try {
    for (auto& e : j.at("quantized")) {
      const std::string name = e.at("name");
      QuantCodes c;
      c.shape = e.at("shape").get<Shape>();
      c.bits = e.at("bits");
      c.rule = e.at("rule");
      c.group_size = e.at("group_size");
      c.group_interleave = e.value("group_interleave", int64_t(1));
      c.levels = e.at("levels").get<std::vector<float>>();
      const std::string what = "read_quantized: '" + path + "': weight '" + name + "'";
      io::checked_numel(e.at("shape"), 1, 8 * data.size() + 8, what);  // at least one bit per code
      const uint64_t nbytes = io::checked_offset(e.at("code_bytes"), 0, data.size(), what + " code_bytes");
      const uint64_t ns = io::checked_offset(e.at("n_scales"), 0, data.size() / 4, what + " n_scales");
      const char* p = span(e.at("offset"), nbytes + 4 * ns, "weight '" + name + "'");
      c.codes = unpack_codes(reinterpret_cast<const uint8_t*>(p), nbytes, c.numel(), c.bits);
      c.scales.resize(ns);
      if (ns) std::memcpy(c.scales.data(), p + nbytes, ns * sizeof(float));
      c.validate("read_quantized: '" + path + "' weight '" + name + "'");
      out.weights.emplace(name, std::move(c));
      out.quantizer_of.emplace(name, e.at("quantizer").get<std::string>());
    }
    for (auto& e : j.at("tensors")) {
      const std::string name = e.at("name");
      const uint64_t n = io::checked_numel(e.at("shape"), sizeof(float), data.size(),
                                           "read_quantized: '" + path + "': tensor '" + name + "'") * sizeof(float);
      Tensorf t = Tensorf::empty(e.at("shape").get<Shape>());
      if (n) std::memcpy(t.data(), span(e.at("offset"), n, "tensor '" + name + "'"), n);
      out.tensors.emplace(name, t);
    }
  } catch (const nlohmann::json::exception& e) {
    lowbit::detail::fail("read_quantized: '", path, "' has a corrupt header: ", e.what());
  }
  return out;
}

namespace detail {
inline void frozen_weights(const std::shared_ptr<nn::Module>& m, const std::string& prefix,
                           std::vector<std::pair<std::string, std::shared_ptr<FrozenWeight>>>& out) {
  if (auto fw = std::dynamic_pointer_cast<FrozenWeight>(m)) out.emplace_back(prefix, fw);
  for (auto& [n, c] : m->children()) frozen_weights(c, prefix.empty() ? n : prefix + "." + n, out);
}
}  // namespace detail

namespace detail {
// The spec an export stored, in today's form: files written before the method registry kept
// some of a method's options at the top level (e.g. the activation quantizer) and options
// the method no longer has; the method's schema decides what moves into options and what is
// dropped.
inline QuantSpec stored_spec(const nlohmann::json& j) {
  QuantSpec s = QuantSpec::from_json(j);
  if (!has_method(s.method)) return s;  // resolve() names the unknown method
  const io::OptionSchema schema = find_method(s.method).options();
  nlohmann::json opts = nlohmann::json::object();
  for (auto it = j.begin(); it != j.end(); ++it)
    if (schema.find(it.key())) opts[it.key()] = it.value();
  if (s.options.is_object())
    for (auto it = s.options.begin(); it != s.options.end(); ++it)
      if (schema.find(it.key())) opts[it.key()] = it.value();
  s.options = opts;
  return s;
}
}  // namespace detail

// Fills a model built with frozen_factory(spec): every FrozenWeight gets its codes, every
// FP32 parameter and buffer its values. Names must match one to one (errors list them).
inline void load_quantized_into(const std::shared_ptr<nn::Module>& model, const QuantizedModelFile& f) {
  std::vector<std::pair<std::string, std::shared_ptr<FrozenWeight>>> fws;
  detail::frozen_weights(model, "", fws);
  std::string problems;
  for (auto& [name, fw] : fws)
    if (!f.weights.count(name)) problems += "\n  missing quantized weight: " + name + " " + shape_str(fw->weight_shape());
  for (auto& [name, c] : f.weights) {
    bool found = false;
    for (auto& kv : fws) found = found || kv.first == name;
    if (!found) problems += "\n  unexpected quantized weight: " + name + " " + shape_str(c.shape);
  }
  LOWBIT_CHECK(problems.empty(), "load_quantized_into: ", model->type_name(),
               " does not match the quantized model file (build it with frozen_factory of the stored spec):", problems);
  for (auto& [name, fw] : fws) fw->set_codes(f.weights.at(name), "load_quantized_into: '" + name + "'");
  model->load_state_dict(f.tensors, /*strict=*/true);
}

// Reads `path`, builds the architecture with build(frozen_factory(spec from meta["spec"]))
// and loads it. The result is an inference model: eval() it before use.
inline std::shared_ptr<nn::Module> load_quantized_model(
    const std::string& path, const std::function<std::shared_ptr<nn::Module>(const nn::LayerFactory&)>& build) {
  const QuantizedModelFile f = read_quantized(path);
  LOWBIT_CHECK(f.meta.contains("spec"), "load_quantized_model: '", path,
               "' has no \"spec\" in its meta; export with meta {\"spec\": spec.to_json()}");
  const QuantSpec spec = detail::stored_spec(f.meta.at("spec"));
  std::shared_ptr<nn::Module> model = build(frozen_factory(spec));
  load_quantized_into(model, f);
  return model;
}

}  // namespace quant
}  // namespace lowbit
