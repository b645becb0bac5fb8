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
#include "../nn/resnet.hpp"
#include "../nn/vgg.hpp"
#include "../quant/export.hpp"
#include "../quant/factory.hpp"
#include "checkpoint.hpp"
#include "config.hpp"

namespace lowbit {
namespace train {

// The config's architecture with its conv / linear layers from `f`.
inline std::shared_ptr<nn::Module> build_arch(const json& cfg, const nn::LayerFactory& f, Generator& gen) {
  const std::string model = cfg.at("model");
  if (model == "resnet20") return nn::resnet20(gen, cfg.at("shortcut") == "A" ? nn::Shortcut::A : nn::Shortcut::B, f);
  if (model == "vgg_bc") return nn::vgg_bc(gen, f);
  return nn::vgg_small(gen, f);
}

// The training model of a config, initialized from its seed.
inline std::shared_ptr<nn::Module> build_model(const json& cfg) {
  Generator gen(cfg.at("seed").get<uint64_t>());
  return build_arch(cfg, quant::make_factory(quant_spec(cfg)), gen);
}

// A trained model and the config it was trained with (`sets`, --set overrides such as
// data=DIR, applied to the stored config).
struct TrainedModel {
  std::shared_ptr<nn::Module> model;
  json cfg;
};

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
  Generator gen(cfg.at("seed").get<uint64_t>());
  std::shared_ptr<nn::Module> model;
  if (lbq) {
    model = build_arch(cfg, quant::frozen_factory(quant_spec(cfg)), gen);
    quant::load_quantized_into(model, qf);
  } else {
    model = build_model(cfg);
    model->load_state_dict(ck.model);
  }
  return {model, cfg};
}

// The model state of a trained run's file, for --init-from: a checkpoint.bin's tensors as
// stored, or the inference model a model.lbq rebuilds (dequantized codes + FP32 rest).
inline nn::StateDict trained_state(const std::string& path) {
  if (quant::is_quantized_file(path)) return load_trained(path, {}).model->state_dict();
  return read_run_checkpoint(path).model;
}

}  // namespace train
}  // namespace lowbit
