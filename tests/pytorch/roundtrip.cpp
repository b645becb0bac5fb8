// The state-file round trip with PyTorch (docs/pytorch.md; issue 26 item 3): for ResNet-20
// option A and B, VGG-Small and LeNet5,
//   - PyTorch -> lowbit: tests/pytorch/roundtrip.py writes a seeded random model (random BN
//     statistics too) as safetensors and its eval-mode logits on a fixed batch; lowbit reads
//     the file as `train_cifar --eval FILE --set model=...` does (train::load_trained) and
//     must give the same logits;
//   - lowbit -> PyTorch: lowbit writes a random model of its own with train::save_state_file
//     and its logits; the script loads it with load_state_dict(strict=True) and compares.
// Logits agree when max |a - b| <= 1e-5 * max(1, max |a|).
//
// Without PyTorch (/usr/bin/python3 cannot import torch) ctest's command prints why and exits
// 77 before running this program, which ctest reports as "Skipped" (SKIP_RETURN_CODE in
// tests/CMakeLists.txt): never a pass.
#include <catch2/catch.hpp>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <lowbit/lowbit.hpp>
#include <lowbit/train/model.hpp>
#include <lowbit/train/state_file.hpp>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <vector>

#include "../temp_dir_for_tests.hpp"

#ifndef LOWBIT_PYTORCH_PYTHON
#define LOWBIT_PYTORCH_PYTHON "/usr/bin/python3"
#endif
#ifndef LOWBIT_SOURCE_DIR
#error "LOWBIT_SOURCE_DIR must name the repository root (set by tests/CMakeLists.txt)"
#endif

using namespace lowbit;
using json = nlohmann::json;
using lowbit_tests::TempDir;
namespace fs = std::filesystem;

namespace {

const std::string kPython = LOWBIT_PYTORCH_PYTHON;
const std::string kScript = std::string(LOWBIT_SOURCE_DIR) + "/tests/pytorch/roundtrip.py";

struct Case {
  std::string name, model, shortcut;
  Shape input;
};
const std::vector<Case> kCases = {{"resnet20_a", "resnet20", "A", {4, 3, 32, 32}},
                                  {"resnet20_b", "resnet20", "B", {4, 3, 32, 32}},
                                  {"vgg_small", "vgg_small", "A", {2, 3, 32, 32}},
                                  {"lenet5", "lenet5", "A", {4, 1, 28, 28}}};

// The --set values that make train_cifar build the case's model.
std::vector<std::string> sets_of(const Case& c) {
  std::vector<std::string> s = {"model=" + c.model, "shortcut=" + c.shortcut};
  if (c.model == "lenet5") s.push_back("dataset=mnist");
  return s;
}

// roundtrip.py's input: x[i] = ((37 i) mod 101) / 50 - 1, exact in float32.
Tensor<float> fixed_input(const Shape& shape) {
  Tensor<float> x = Tensor<float>::empty(shape);
  for (int64_t i = 0; i < x.numel(); ++i) x.data()[i] = static_cast<float>(static_cast<double>((37 * i) % 101) / 50 - 1);
  return x;
}

std::vector<float> logits_of(nn::Module& model, const Shape& input) {
  NoGradGuard no_grad;
  model.eval();
  return model(fixed_input(input)).to_vector();
}

std::string slurp(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

int python(const std::string& args, const std::string& log) {
  const std::string cmd = kPython + " " + kScript + " " + args + " > " + log + " 2>&1";
  return std::system(cmd.c_str());
}

void check_close(const std::vector<float>& ours, const std::vector<float>& theirs) {
  REQUIRE(ours.size() == theirs.size());
  double diff = 0, scale = 1;
  for (size_t i = 0; i < ours.size(); ++i) {
    diff = std::max(diff, std::fabs(static_cast<double>(ours[i]) - theirs[i]));
    scale = std::max(scale, std::fabs(static_cast<double>(theirs[i])));
  }
  INFO("max |difference| " << diff << ", max |logit| " << scale);
  CHECK(diff <= 1e-5 * scale);
}

}  // namespace

TEST_CASE("state files: a model PyTorch wrote evaluates in lowbit to PyTorch's logits", "[pytorch][state]") {
  TempDir dir;
  const std::string log = dir.str("python.log");
  const int status = python("write " + dir.str(""), log);
  INFO(slurp(log));
  REQUIRE(status == 0);
  for (const Case& c : kCases) {
    INFO(c.name);
    const std::string path = dir.str(c.name + ".torch.safetensors");
    // As `train_cifar --eval FILE --set model=... --set shortcut=...` reads it.
    const train::TrainedModel t = train::load_trained(path, sets_of(c));
    const json theirs = json::parse(slurp(dir.str(c.name + ".torch.json")));
    check_close(logits_of(*t.model, c.input), theirs.get<std::vector<float>>());
    // And as --init-from reads it: the same tensors under lowbit's names.
    const nn::StateDict sd = train::trained_state(path, c.model);
    const nn::StateDict loaded = t.model->state_dict();
    REQUIRE(sd.size() == loaded.size());
    for (auto& [name, v] : loaded) CHECK(sd.at(name).to_vector() == v.to_vector());
  }
}

TEST_CASE("state files: a model lowbit wrote loads in PyTorch with strict=True, to lowbit's logits",
          "[pytorch][state]") {
  TempDir dir;
  for (const Case& c : kCases) {
    json given = json::object();
    for (const std::string& s : sets_of(c)) train::apply_override(given, s);
    json cfg = train::resolve_config(given);
    std::shared_ptr<nn::Module> model = train::build_model(cfg);
    // Random batch-norm statistics and affine parameters, so that evaluation mode matters.
    Generator gen(17);
    const nn::StateDict sd = model->state_dict();  // shares data with the model
    for (auto& [name, m] : model->named_modules()) {
      if (!dynamic_cast<const nn::BatchNorm*>(m)) continue;
      const std::pair<const char*, std::pair<float, float>> fills[] = {
          {".weight", {0.8f, 0.4f}}, {".bias", {-0.2f, 0.4f}}, {".running_mean", {-0.2f, 0.4f}}, {".running_var", {0.5f, 1.0f}}};
      for (auto& [suffix, range] : fills) {
        Tensor<float> t = sd.at(name + suffix);
        const Tensor<float> r = Tensor<float>::uniform(t.shape(), gen);
        for (int64_t i = 0; i < t.numel(); ++i) t.data()[i] = range.first + range.second * r.data()[i];
      }
    }
    train::save_state_file(dir.str(c.name + ".lowbit.safetensors"), c.model, *model,
                           {{"format", train::kRunFormat}, {"config", cfg}}, 7);
    std::ofstream(dir.str(c.name + ".lowbit.json")) << json(logits_of(*model, c.input)).dump();
  }
  const std::string log = dir.str("python.log");
  const int status = python("check " + dir.str(""), log);
  INFO(slurp(log));
  CHECK(status == 0);
}
