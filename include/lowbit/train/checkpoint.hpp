// A training run's checkpoint: everything a run needs to continue bit-exactly, as one
// io::Checkpoint (io/checkpoint.hpp):
//   meta     {"format": "lowbit.train_cifar", "config": the resolved config,
//             "run": the loop's counters and results so far, "loader": the DataLoader's
//             state (shuffle order, RNG), "method_state": MethodHooks::state()}
//   tensors  "model/<name>" every parameter and buffer, "optim/<name>" the optimizer's state
// The layout is the library's: train_cifar, the report and any user loop read it through
// read_run_checkpoint, never by hand.
#pragma once
#include <cmath>
#include <map>
#include <nlohmann/json.hpp>
#include <string>

#include "../io/checkpoint.hpp"
#include "../nn/module.hpp"
#include "../optim/optimizer.hpp"

namespace lowbit {
namespace train {

inline constexpr const char* kRunFormat = "lowbit.train_cifar";
// Another trainer's checkpoints (examples/train_sr.cpp) carry its own format, "lowbit.<program>",
// so that one trainer never mistakes the other's run for its own.

struct RunCheckpoint {
  nlohmann::json config, run, loader, method_state;
  nn::StateDict model;
  std::map<std::string, Tensor<float>> optim;
};

inline io::Checkpoint make_run_checkpoint(const nlohmann::json& config, const nn::Module& model,
                                          const optim::Optimizer& opt, const nlohmann::json& loader_state,
                                          const nlohmann::json& run, const nlohmann::json& method_state,
                                          const std::string& format = kRunFormat) {
  io::Checkpoint ck;
  ck.meta = {{"format", format}, {"config", config}, {"run", run}, {"loader", loader_state},
             {"method_state", method_state}};
  for (auto& [name, t] : model.state_dict()) ck.tensors.emplace("model/" + name, t);
  for (auto& [name, t] : opt.state()) ck.tensors.emplace("optim/" + name, t);
  return ck;
}

inline void save_run_checkpoint(const std::string& path, const nlohmann::json& config, const nn::Module& model,
                                const optim::Optimizer& opt, const nlohmann::json& loader_state,
                                const nlohmann::json& run, const nlohmann::json& method_state,
                                const std::string& format = kRunFormat) {
  io::save_checkpoint(path, make_run_checkpoint(config, model, opt, loader_state, run, method_state, format));
}

// Reads a run checkpoint, checking it is one (a bad file: one error naming it).
inline RunCheckpoint read_run_checkpoint(const std::string& path, const std::string& format = kRunFormat) {
  const io::Checkpoint ck = io::load_checkpoint(path);
  // Compared as JSON, so a damaged file whose meta or "format" has another type is refused
  // here instead of throwing nlohmann's type_error (found by tests/fuzz/fuzz_checkpoint.cpp).
  LOWBIT_CHECK(ck.meta.is_object() && ck.meta.contains("format") && ck.meta.at("format") == format &&
                   ck.meta.contains("config") && ck.meta.at("config").is_object(),
               "checkpoint '", path, "' was not written by ", format.substr(format.find('.') + 1));
  for (const char* k : {"run", "loader"})
    LOWBIT_CHECK(ck.meta.contains(k), "checkpoint '", path, "' has no \"", k, "\" entry (a damaged file)");
  const nlohmann::json& run = ck.meta.at("run");
  LOWBIT_CHECK(run.is_object() && ck.meta.at("loader").is_string(), "checkpoint '", path,
               "': its \"run\" or \"loader\" entry is damaged");
  // The loop's counters and totals, read as numbers when a run resumes (train_cifar writes all
  // of them; epoch and step are what every reader needs).
  for (const char* k : {"epoch", "step"})
    LOWBIT_CHECK(run.contains(k) && run.at(k).is_number_unsigned(), "checkpoint '", path, "': run counter \"", k,
                 "\" is missing or not a non-negative integer (a damaged file)");
  LOWBIT_CHECK(!run.contains("train_images_seen") || run.at("train_images_seen").is_number_unsigned(), "checkpoint '",
               path, "': run counter \"train_images_seen\" is not a non-negative integer (a damaged file)");
  for (const char* k : {"best_test_acc", "train_s", "wall_s"})
    LOWBIT_CHECK(!run.contains(k) || run.at(k).is_number(), "checkpoint '", path, "': run value \"", k,
                 "\" is not a number (a damaged file)");
  RunCheckpoint r;
  r.config = ck.meta.at("config");
  r.run = ck.meta.at("run");
  r.loader = ck.meta.at("loader");
  r.method_state = ck.meta.value("method_state", nlohmann::json::object());
  for (auto& [name, t] : ck.tensors) {
    // A NaN or inf weight or optimizer moment would train on silently (ReLU hides it from the
    // loss) or be evaluated as a model: refused here, naming the tensor.
    const int64_t i = nn::first_nonfinite(t);
    LOWBIT_CHECK(i < 0, "checkpoint '", path, "': tensor '", name, "' holds ", t.data()[i], " at element ", i,
                 " (a diverged run or a damaged file)");
    if (name.rfind("model/", 0) == 0) r.model.emplace(name.substr(6), t);
    else if (name.rfind("optim/", 0) == 0) r.optim.emplace(name.substr(6), t);
  }
  return r;
}

}  // namespace train
}  // namespace lowbit
