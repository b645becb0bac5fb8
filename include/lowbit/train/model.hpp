// Models of a run: the architecture a resolved config names (train/config.hpp), built with
// the layers its quantization spec asks for, and trained models read back from a run's files
// (a checkpoint.bin, train/checkpoint.hpp, or an exported model.lbq, quant/export.hpp) for
// evaluation, as a distillation teacher or to start another run from.
#pragma once
#include <cmath>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "../core/random.hpp"
#include "../io/checkpoint.hpp"
#include "../nn/factory.hpp"
#include "../nn/lenet.hpp"
#include "../nn/resnet.hpp"
#include "../nn/vgg.hpp"
#include "../quant/export.hpp"
#include "../quant/factory.hpp"
#include "checkpoint.hpp"
#include "config.hpp"
#include "data.hpp"

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

inline TrainedModel load_trained(const std::string& path, const std::vector<std::string>& sets) {
  const bool lbq = quant::is_quantized_file(path);
  quant::QuantizedModelFile qf;
  RunCheckpoint ck;
  if (lbq) {
    qf = quant::read_quantized(path);
    for (auto& [name, t] : qf.tensors)
      for (int64_t i = 0; i < t.numel(); ++i)
        LOWBIT_CHECK(std::isfinite(t.data()[i]), "quantized model '", path, "': tensor '", name, "' holds ", t.data()[i],
                     " at element ", i);
    for (auto& [name, c] : qf.weights)
      for (float s : c.scales)
        LOWBIT_CHECK(std::isfinite(s), "quantized model '", path, "': weight '", name, "' has a scale ", s);
    LOWBIT_CHECK(qf.meta.value("format", "") == kRunFormat && qf.meta.contains("config"), "quantized model '", path,
                 "' was not written by train_cifar");
  } else {
    ck = read_run_checkpoint(path);
  }
  json given = migrate_flat_config(lbq ? qf.meta.at("config") : ck.config);
  for (auto& s : sets) apply_override(given, s);
  json cfg;
  try {
    cfg = resolve_config(given);
    check_config(cfg);
  } catch (const std::exception& e) {
    lowbit::detail::fail("'", path, "': its config: ", e.what());
  }
  const DataInfo info = data_info_of(lbq ? qf.meta : ck.run, cfg, path);
  Generator gen(cfg.at("seed").get<uint64_t>());
  std::shared_ptr<nn::Module> model;
  if (lbq) {
    model = build_arch(cfg, quant::frozen_factory(quant_spec(cfg)), gen, info);
    quant::load_quantized_into(model, qf);
  } else {
    model = build_model(cfg, info);
    model->load_state_dict(ck.model);
  }
  return {model, cfg, info};
}

// The model state of a trained run's file, for --init-from: a checkpoint.bin's tensors as
// stored, or the inference model a model.lbq rebuilds (dequantized codes + FP32 rest).
inline nn::StateDict trained_state(const std::string& path) {
  if (quant::is_quantized_file(path)) return load_trained(path, {}).model->state_dict();
  return read_run_checkpoint(path).model;
}

}  // namespace train
}  // namespace lowbit
