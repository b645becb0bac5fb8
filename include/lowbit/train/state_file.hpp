// State files: a model's parameters and buffers as a safetensors file with PyTorch's names
// (nn/pytorch_names.hpp), the file a PyTorch user loads with load_state_dict(strict=True) and
// the file lowbit reads from PyTorch. docs/pytorch.md describes the exchange.
//
//   tensors        every parameter and buffer, F32, under its PyTorch name, plus PyTorch's
//                  num_batches_tracked (I64 scalar) for every BatchNorm
//   __metadata__   "format": "pt" (what PyTorch's save_file writes)
//                  lowbit's writer adds "lowbit.format": "lowbit.state_dict" and
//                  "lowbit.meta": {"format": "lowbit.train_cifar", "config", "data_info"}, so
//                  `train_cifar --eval` needs no --set, and its two checksums
//
// A file without lowbit's metadata (PyTorch's) is read with the model named by the caller's
// config, any float dtype converted to float (F16, BF16 exactly; F64 rounded), its
// num_batches_tracked checked to be an integer and dropped.
#pragma once
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "../io/checkpoint.hpp"
#include "../io/safetensors.hpp"
#include "../nn/layers.hpp"
#include "../nn/module.hpp"
#include "../nn/pytorch_names.hpp"

namespace lowbit {
namespace train {

inline constexpr const char* kStateFormat = "lowbit.state_dict";  // its "lowbit.format"

// The state of `model` (an architecture named `model_name`, a config's "model") under PyTorch's
// names; `batches_tracked` is what every BatchNorm's num_batches_tracked says (lowbit does not
// count per layer: train_cifar passes the run's optimizer steps, as PyTorch would count them).
inline std::vector<io::SafetensorsTensor> pytorch_state(const std::string& model_name, const nn::Module& model,
                                                        int64_t batches_tracked = 0) {
  std::vector<io::SafetensorsTensor> out;
  for (auto& [name, t] : model.state_dict())
    out.push_back(io::SafetensorsTensor::from_float(nn::to_pytorch_name(model_name, name), t));
  for (auto& [name, m] : model.named_modules())
    if (dynamic_cast<const nn::BatchNorm*>(m))
      out.push_back(io::SafetensorsTensor::from_int64(nn::to_pytorch_name(model_name, name + ".num_batches_tracked"),
                                                      {}, {batches_tracked}));
  return out;
}

// Writes a state file of `model`; `meta` is lowbit's record (config, data_info), kept in
// "lowbit.meta". Atomic, with lowbit's checksums (io/safetensors.hpp).
inline void save_state_file(const std::string& path, const std::string& model_name, const nn::Module& model,
                            const nlohmann::json& meta, int64_t batches_tracked = 0) {
  io::write_safetensors(path, pytorch_state(model_name, model, batches_tracked),
                        {{"format", "pt"}, {io::kFormatKey, kStateFormat}, {io::kMetaKey, meta.dump()}});
}

// The state dict, under lowbit's names, of a state file read for the architecture
// `model_name`. Names are mapped back (accepted aliases too, nn/pytorch_names.hpp); two file
// names that map to one lowbit name, an integer tensor other than num_batches_tracked, or a
// num_batches_tracked that is not one integer are errors naming the file.
inline nn::StateDict state_from_pytorch(const std::string& model_name, const io::SafetensorsFile& file) {
  nn::StateDict sd;
  std::map<std::string, std::string> source;  // lowbit name -> the file's name
  const std::string suffix = ".num_batches_tracked";
  for (const io::SafetensorsTensor& t : file.tensors) {
    const bool counter = t.name.size() > suffix.size() &&
                         t.name.compare(t.name.size() - suffix.size(), suffix.size(), suffix) == 0;
    if (counter) {
      LOWBIT_CHECK(!t.is_float() && t.numel() == 1, "'", file.path, "': tensor '", t.name, "' is ", t.dtype, " ",
                   shape_str(t.shape), "; PyTorch's num_batches_tracked is one integer");
      continue;  // lowbit's batch norm uses a fixed momentum and keeps no counter
    }
    LOWBIT_CHECK(t.is_float(), "'", file.path, "': tensor '", t.name, "' is ", t.dtype,
                 "; a model's parameters and buffers are floating point (F32, F16, BF16 or F64)");
    const std::string name = nn::from_pytorch_name(model_name, t.name);
    const auto [it, fresh] = source.emplace(name, t.name);
    LOWBIT_CHECK(fresh, "'", file.path, "': tensors '", it->second, "' and '", t.name, "' are the same tensor '", name,
                 "' of ", model_name, " (two spellings of one name, docs/pytorch.md)");
    sd.emplace(name, t.to_float());
  }
  return sd;
}

// Reads a state file: lowbit's (its checksums and "lowbit.meta" required; `meta` gets the
// record) or any other safetensors file, e.g. PyTorch's (`meta` = {}).
inline io::SafetensorsFile read_state_file(const std::string& path, nlohmann::json& meta) {
  if (io::lowbit_format_of(path) == kStateFormat)
    return io::read_lowbit_safetensors(path, kStateFormat, "read_state_file", "state file", meta);
  meta = nlohmann::json::object();
  return io::read_safetensors(path);
}

}  // namespace train
}  // namespace lowbit
