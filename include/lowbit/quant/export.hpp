// Quantized model export: packed integer codes + scales for every quantized weight, FP32
// for everything else (BN weights, biases and running statistics, unquantized layers,
// activation-quantizer parameters), in one safetensors file (io/safetensors.hpp), and the
// loader that turns it back into an inference model.
//
//   "<q>.codes"    U8 [code_bytes]: the weight quantizer q's codes packed LSB-first at `bits`
//                  bits (quant/codes.hpp; ceil(numel bits / 8) bytes)
//   "<q>.scales"   F32 [n_scales]: its scales (0 for a codebook without scales)
//   "<tensor>"     F32: every other parameter and buffer, under its name ("bn1.weight")
//   __metadata__   "lowbit.format": "lowbit.quantized_model"
//                  "lowbit.meta": the caller's meta object as JSON (the trainer's config and
//                                 "spec")
//                  "lowbit.quantized": JSON list, one entry per quantized weight:
//                      {"name": "layer1.0.conv1.wq", "quantizer": "DoReFa", "shape": [16,16,3,3],
//                       "bits": 2, "rule": "scaled_codebook", "group_size": 2304,
//                       "levels": [-1, -0.333.., ...]}   (+ "group_interleave" when > 1)
//                  "lowbit.crc32c", "lowbit.header_crc32c": checksums of data and header,
//                                 both required by the reader (a flipped byte is an error)
//
// The data section is summary(model).model_bytes: the file is the model size plus the header.
// Dequantization of entry e: w[i] = (n_scales ? scales[i / group_size] : 1) * levels[code[i]]
// (rule scaled_codebook; rule binary_bases in quant/codes.hpp), bit-exact with the trained
// model's fake-quantized forward weight. Levels are in the header: they follow from
// (quantizer, bits) and are not part of the papers' size accounting.
//
// Writing is atomic (io/atomic_write.hpp). Files of the earlier framed format (magic
// "LOWBITQM", version 1, io/framed_file.hpp, no checksum) are still read, never written.
// load: read_quantized() parses and checks a file; load_quantized_into() fills a model built
// with frozen_factory(spec) (FrozenWeight layers + FP32 tensors); load_quantized_model() does
// both from the "spec" stored in meta.
#pragma once
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <set>
#include <string>
#include <vector>

#include "../io/checkpoint.hpp"
#include "../io/framed_file.hpp"
#include "../io/json_int.hpp"
#include "../io/safetensors.hpp"
#include "factory.hpp"
#include "spec.hpp"
#include "summary.hpp"

namespace lowbit {
namespace quant {

constexpr const char* kQuantFormat = "lowbit.quantized_model";  // its "lowbit.format"
constexpr const char* kQuantTableKey = "lowbit.quantized";
// The earlier framed format, read only.
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
  std::vector<io::SafetensorsTensor> tensors;
  nlohmann::json qtable = nlohmann::json::array();
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
                      {"levels", c.levels}});
    if (c.group_interleave != 1) qtable.back()["group_interleave"] = c.group_interleave;  // ALQ pixel-wise
    tensors.push_back({name + ".codes", "U8", {static_cast<int64_t>(packed.size())},
                       std::string(reinterpret_cast<const char*>(packed.data()), packed.size())});
    tensors.push_back({name + ".scales", "F32", {static_cast<int64_t>(c.scales.size())},
                       std::string(reinterpret_cast<const char*>(c.scales.data()), c.scales.size() * sizeof(float))});
  }
  auto add_tensor = [&](const std::string& name, const Tensorf& t) {
    if (detail::under(name, qprefix)) return;  // latent state of a quantized weight
    tensors.push_back(io::SafetensorsTensor::from_float(name, t));
  };
  for (auto& [name, t] : model.named_parameters()) add_tensor(name, t);
  for (auto& [name, t] : model.named_buffers()) add_tensor(name, t);
  io::write_safetensors(path, tensors,
                        {{io::kFormatKey, kQuantFormat}, {io::kMetaKey, meta.dump()}, {kQuantTableKey, qtable.dump()}});
}

namespace detail {
// The fields of an entry of the quantized-weight table (either format). The stored shape is
// checked against `max_codes` (every code has at least one bit of the data) before anything
// of its size is allocated. JSON type errors propagate to the caller, which names the file.
inline QuantCodes codes_fields(const nlohmann::json& e, uint64_t max_codes, const std::string& what) {
  io::checked_numel(e.at("shape"), 1, max_codes, what);
  QuantCodes c;
  c.shape = e.at("shape").get<Shape>();
  c.bits = static_cast<int>(io::json_int(e.at("bits"), what + ": bits", 1, 32));
  c.rule = e.at("rule");
  c.group_size = io::json_int(e.at("group_size"), what + ": group_size", 1);
  c.group_interleave = e.contains("group_interleave") ? io::json_int(e.at("group_interleave"), what + ": group_interleave", 1) : 1;
  c.levels = e.at("levels").get<std::vector<float>>();
  return c;
}
// The framed export of lowbit before safetensors (read only).
inline QuantizedModelFile read_framed_quantized(const std::string& path);
// One entry of "lowbit.quantized" with its codes and scales tensors.
inline QuantCodes read_codes_entry(const nlohmann::json& e, const io::SafetensorsFile& file, const std::string& what);
}  // namespace detail

// True when `path` is a quantized model (either format); false for anything else, including
// files that are not safetensors (the caller's reader then names the problem).
inline bool is_quantized_file(const std::string& path) {
  if (io::has_magic(path, kQuantMagic)) return true;
  try {
    return io::lowbit_format_of(path) == kQuantFormat;
  } catch (const Error&) {
    return false;
  }
}

inline QuantizedModelFile read_quantized(const std::string& path) {
  if (io::has_magic(path, kQuantMagic)) return detail::read_framed_quantized(path);
  QuantizedModelFile out;
  const io::SafetensorsFile file = io::read_lowbit_safetensors(path, kQuantFormat, "read_quantized", "quantized model",
                                                               out.meta);
  nlohmann::json table;
  const auto t = file.metadata.find(kQuantTableKey);
  LOWBIT_CHECK(t != file.metadata.end(), "read_quantized: '", path, "' has no ", kQuantTableKey, " metadata entry");
  try {
    table = nlohmann::json::parse(t->second);
  } catch (const nlohmann::json::exception& e) {
    lowbit::detail::fail("read_quantized: '", path, "': its ", kQuantTableKey, " entry is not JSON: ", e.what());
  }
  LOWBIT_CHECK(table.is_array(), "read_quantized: '", path, "': its ", kQuantTableKey, " entry is not a JSON list");
  std::set<std::string> used;  // the codes and scales tensors, which are not FP32 state
  for (auto& e : table) {
    LOWBIT_CHECK(e.is_object() && e.contains("name") && e.at("name").is_string() && e.contains("quantizer") &&
                     e.at("quantizer").is_string(),
                 "read_quantized: '", path, "': an entry of ", kQuantTableKey, " has no \"name\" or \"quantizer\"");
    const std::string name = e.at("name");
    const std::string what = "read_quantized: '" + path + "': weight '" + name + "'";
    LOWBIT_CHECK(!out.weights.count(name), what, " is listed twice in ", kQuantTableKey);
    out.weights.emplace(name, detail::read_codes_entry(e, file, what));
    out.quantizer_of.emplace(name, e.at("quantizer").get<std::string>());
    used.insert({name + ".codes", name + ".scales"});
  }
  uint64_t data_bytes = 0;
  for (const io::SafetensorsTensor& s : file.tensors) {
    data_bytes += s.bytes.size();
    if (used.count(s.name)) continue;
    LOWBIT_CHECK(s.dtype == "F32", "read_quantized: '", path, "': tensor '", s.name, "' is ", s.dtype,
                 "; expected F32 (codes belong to a weight listed in ", kQuantTableKey, ")");
    out.tensors.emplace(s.name, s.to_float());
  }
  out.data_bytes = data_bytes;
  std::error_code ec;
  out.header_bytes = static_cast<uint64_t>(std::filesystem::file_size(path, ec)) - data_bytes;
  return out;
}

namespace detail {
inline QuantCodes read_codes_entry(const nlohmann::json& e, const io::SafetensorsFile& file, const std::string& what) {
  const std::string name = e.at("name");
  const io::SafetensorsTensor* codes = file.find(name + ".codes");
  const io::SafetensorsTensor* scales = file.find(name + ".scales");
  LOWBIT_CHECK(codes && codes->dtype == "U8" && codes->shape.size() == 1, what, ": needs a tensor '", name,
               ".codes' of dtype U8 and one dimension");
  LOWBIT_CHECK(scales && scales->dtype == "F32" && scales->shape.size() == 1, what, ": needs a tensor '", name,
               ".scales' of dtype F32 and one dimension");
  QuantCodes c;
  try {
    c = codes_fields(e, 8 * codes->bytes.size() + 8, what);
  } catch (const nlohmann::json::exception& ex) {
    lowbit::detail::fail(what, ": its entry in ", kQuantTableKey, " is damaged: ", ex.what());
  }
  LOWBIT_CHECK(c.bits >= 1 && c.bits <= 32, what, ": bits = ", c.bits, ", expected 1..32");
  LOWBIT_CHECK(static_cast<int64_t>(codes->bytes.size()) == c.code_bytes(), what, ": ", c.numel(), " codes of ", c.bits,
               " bits need ", c.code_bytes(), " bytes, its codes tensor has ", codes->bytes.size());
  c.codes = unpack_codes(reinterpret_cast<const uint8_t*>(codes->bytes.data()), codes->bytes.size(), c.numel(), c.bits);
  const Tensorf s = scales->to_float();
  c.scales.assign(s.data(), s.data() + s.numel());
  c.validate(what);
  return c;
}
}  // namespace detail

namespace detail {
inline QuantizedModelFile read_framed_quantized(const std::string& path) {
  io::FramedFile file = io::read_framed(path, kQuantMagic, kQuantVersion, "quantized model", "read_quantized");
  const nlohmann::json& j = file.header;
  const std::string& data = file.data;
  QuantizedModelFile out;
  try {
    out.meta = j.at("meta");
    out.data_bytes = io::json_uint64(j.at("data_bytes"), "read_quantized: '" + path + "': data_bytes");
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
      const std::string what = "read_quantized: '" + path + "': weight '" + name + "'";
      QuantCodes c = codes_fields(e, 8 * data.size() + 8, what);
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
}  // namespace detail

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
