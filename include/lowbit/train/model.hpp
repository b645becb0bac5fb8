// Models of a run: the architecture a resolved config names (train/config.hpp), built with
// the layers its quantization spec asks for, and trained models read back from a run's files
// (a checkpoint.bin, train/checkpoint.hpp; an exported model.lbq, quant/export.hpp; a state
// file with PyTorch's names, train/state_file.hpp, lowbit's model.safetensors or one PyTorch
// wrote) for evaluation, as a distillation teacher or to start another run from.
#pragma once
#include <cmath>
#include <filesystem>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "../core/random.hpp"
#include "../io/checkpoint.hpp"
#include "../nn/factory.hpp"
#include "../nn/finite_watch.hpp"
#include "../nn/lenet.hpp"
#include "../nn/resnet.hpp"
#include "../nn/vgg.hpp"
#include "../quant/export.hpp"
#include "../quant/factory.hpp"
#include "checkpoint.hpp"
#include "config.hpp"
#include "data.hpp"
#include "state_file.hpp"

namespace lowbit {
namespace train {

// The config's architecture for `data`'s images and classes, with its conv / linear layers
// from `f`. A model that cannot take the images says so, naming the key.
inline std::shared_ptr<nn::Module> build_arch(const json& cfg, const nn::LayerFactory& f, Generator& gen,
                                              const DataInfo& data) {
  const std::string model = cfg.at("model");
  const int64_t C = data.channels, H = data.height, W = data.width, K = data.classes;
  try {
    if (model.rfind("resnet", 0) == 0)
      return nn::resnet_cifar(std::stoi(model.substr(6)), gen, cfg.at("shortcut") == "A" ? nn::Shortcut::A : nn::Shortcut::B,
                              f, K, C);
    if (model == "lenet5") return nn::lenet5(gen, f, C, H, W, K);
    if (model == "vgg_bc") return std::make_shared<nn::VggBinaryConnect>(K, f, gen, C, H, W);
    return std::make_shared<nn::VggSmall>(K, f, gen, C, H, W);
  } catch (const Error& e) {
    lowbit::detail::fail("config key 'model' = \"", model, "\" on ", data.text(), ": ", e.what());
  }
}

// The training model of a config for `data`, initialized from its seed.
inline std::shared_ptr<nn::Module> build_model(const json& cfg, const DataInfo& data) {
  Generator gen(cfg.at("seed").get<uint64_t>());
  return build_arch(cfg, quant::make_factory(quant_spec(cfg)), gen, data);
}
// The same for a named data set (cifar10, cifar100, mnist), whose shape is known.
inline std::shared_ptr<nn::Module> build_model(const json& cfg) { return build_model(cfg, named_data_info(cfg)); }

// A trained model and the config it was trained with (`sets`, --set overrides such as
// data=DIR, applied to the stored config).
struct TrainedModel {
  std::shared_ptr<nn::Module> model;
  json cfg;
  DataInfo data;  // what the model was trained on (shape, classes, normalization)
};

// The data record of a run's file (`record`: the checkpoint's run or model.lbq's meta);
// files of lowbit before run-time shapes hold none and are of a named data set.
inline DataInfo data_info_of(const json& record, const json& cfg, const std::string& path) {
  if (record.contains("data_info")) return DataInfo::from_json(record.at("data_info"), "'" + path + "'");
  return named_data_info(cfg);
}

// What a trained-model file is, from its first bytes or its safetensors metadata.
enum class ModelFileKind { checkpoint, quantized, state };
inline ModelFileKind model_file_kind(const std::string& path) {
  if (io::has_magic(path, io::kCheckpointMagic)) return ModelFileKind::checkpoint;  // the earlier framed formats
  if (io::has_magic(path, quant::kQuantMagic)) return ModelFileKind::quantized;
  std::error_code ec;
  LOWBIT_CHECK(std::filesystem::exists(path, ec), "'", path, "': no such file (expected a checkpoint.bin, model.lbq or ",
               ".safetensors file)");
  std::string format;
  try {
    format = io::lowbit_format_of(path);
  } catch (const Error& e) {  // the safetensors reader's reason, after what was expected
    lowbit::detail::fail("'", path, "' is not a lowbit checkpoint, model.lbq or .safetensors state file: ", e.what());
  }
  if (format == io::kCheckpointFormat) return ModelFileKind::checkpoint;
  if (format == quant::kQuantFormat) return ModelFileKind::quantized;
  LOWBIT_CHECK(format.empty() || format == kStateFormat, "'", path, "' has lowbit.format '", format,
               "', which this build does not read (expected ", io::kCheckpointFormat, ", ", quant::kQuantFormat, " or ",
               kStateFormat, ")");
  return ModelFileKind::state;
}

namespace detail {
// The resolved config of a file's stored config (files of earlier lowbit migrated) with `sets`
// (--set overrides) applied; a bad one is an error naming the file.
inline json stored_config(const std::string& path, const json& stored, const std::vector<std::string>& sets) {
  json given = migrate_flat_config(stored);
  for (auto& s : sets) apply_override(given, s);
  try {
    json cfg = resolve_config(given);
    check_config(cfg);
    return cfg;
  } catch (const std::exception& e) {
    lowbit::detail::fail("'", path, "': its config: ", e.what());
  }
}

// A state file as a trained FP32 model: its config is lowbit's record (when the file has one)
// with `sets` applied, or the defaults with `sets` for a file from PyTorch.
inline TrainedModel load_state_model(const std::string& path, const std::vector<std::string>& sets) {
  json meta;
  const io::SafetensorsFile file = read_state_file(path, meta);
  const json cfg = stored_config(path, meta.contains("config") ? meta.at("config") : json::object(), sets);
  LOWBIT_CHECK(cfg.at("method") == quant::kFullPrecision, "'", path, "' is a state dict, which builds an FP32 model; ",
               "config key 'method' = \"", cfg.at("method").get<std::string>(), "\" does not apply (use --init-from to ",
               "start a quantized run from it)");
  const DataInfo info = data_info_of(meta, cfg, path);
  std::shared_ptr<nn::Module> model = build_model(cfg, info);
  const nn::StateDict sd = state_from_pytorch(cfg.at("model"), file);
  for (auto& [name, t] : sd) {
    const int64_t i = nn::first_nonfinite(t);
    LOWBIT_CHECK(i < 0, "'", path, "': tensor '", name, "' holds ", t.data()[i], " at element ", i);
  }
  try {
    model->load_state_dict(sd);
  } catch (const Error& e) {
    lowbit::detail::fail("'", path, "' (read as ", cfg.at("model").get<std::string>(),
                         meta.contains("config") ? "" : "; set another with --set model=... --set shortcut=...",
                         ", names: docs/pytorch.md): ", e.what());
  }
  return {model, cfg, info};
}
}  // namespace detail

// An exported model.lbq read and checked (every FP32 tensor and scale finite, written by
// train_cifar) with its resolved config and data record, before any model is built: the
// fake-quantized evaluation (load_trained) and the inference path (infer/model.hpp) build
// different layers from it.
struct ExportedModel {
  quant::QuantizedModelFile file;
  json cfg;
  DataInfo data;
};

inline ExportedModel read_exported(const std::string& path, const std::vector<std::string>& sets) {
  ExportedModel e;
  LOWBIT_CHECK(model_file_kind(path) == ModelFileKind::quantized, "'", path,
               "' is not an exported quantized model (expected the model.lbq of a quantized run)");
  e.file = quant::read_quantized(path);
  for (auto& [name, t] : e.file.tensors)
    for (int64_t i = 0; i < t.numel(); ++i)
      LOWBIT_CHECK(std::isfinite(t.data()[i]), "quantized model '", path, "': tensor '", name, "' holds ", t.data()[i],
                   " at element ", i);
  for (auto& [name, c] : e.file.weights)
    for (float s : c.scales)
      LOWBIT_CHECK(std::isfinite(s), "quantized model '", path, "': weight '", name, "' has a scale ", s);
  LOWBIT_CHECK(e.file.meta.value("format", "") == kRunFormat && e.file.meta.contains("config"), "quantized model '",
               path, "' was not written by train_cifar");
  e.cfg = detail::stored_config(path, e.file.meta.at("config"), sets);
  e.data = data_info_of(e.file.meta, e.cfg, path);
  return e;
}

inline TrainedModel load_trained(const std::string& path, const std::vector<std::string>& sets) {
  const ModelFileKind kind = model_file_kind(path);
  if (kind == ModelFileKind::state) return detail::load_state_model(path, sets);
  if (kind == ModelFileKind::quantized) {
    const ExportedModel e = read_exported(path, sets);
    Generator gen(e.cfg.at("seed").get<uint64_t>());
    std::shared_ptr<nn::Module> model = build_arch(e.cfg, quant::frozen_factory(quant_spec(e.cfg)), gen, e.data);
    quant::load_quantized_into(model, e.file);
    return {model, e.cfg, e.data};
  }
  const RunCheckpoint ck = read_run_checkpoint(path);
  const json cfg = detail::stored_config(path, ck.config, sets);
  const DataInfo info = data_info_of(ck.run, cfg, path);
  std::shared_ptr<nn::Module> model = build_model(cfg, info);
  try {
    model->load_state_dict(ck.model);
  } catch (const Error& e) {
    lowbit::detail::fail("'", path, "' (built as ", cfg.at("model").get<std::string>(), " from its config): ", e.what());
  }
  return {model, cfg, info};
}

// The model state of a trained run's file, for --init-from: a checkpoint.bin's tensors as
// stored, the inference model a model.lbq rebuilds (dequantized codes + FP32 rest), or a
// state file's tensors under lowbit's names (for the architecture its record names, or the
// new run's `model` for a file from PyTorch).
inline nn::StateDict trained_state(const std::string& path, const std::string& run_model) {
  switch (model_file_kind(path)) {
    case ModelFileKind::quantized: return load_trained(path, {}).model->state_dict();
    case ModelFileKind::checkpoint: return read_run_checkpoint(path).model;
    case ModelFileKind::state: break;
  }
  json meta;
  const io::SafetensorsFile file = read_state_file(path, meta);
  std::string model = run_model;
  if (meta.contains("config") && meta.at("config").is_object() && meta.at("config").contains("model") &&
      meta.at("config").at("model").is_string())
    model = meta.at("config").at("model");
  return state_from_pytorch(model, file);
}

}  // namespace train
}  // namespace lowbit
