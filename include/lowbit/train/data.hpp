// The data of a run (train_cifar): CIFAR-10 found as data/find.hpp says (config key "data",
// $LOWBIT_DATA, the usual folders), then the training subset the config asks for
// (train_per_class balanced images per class, or train_images random images, or all) and
// the test subset (test_images random images, or all). Subsets are seeded by "seed".
#pragma once
#include <memory>
#include <nlohmann/json.hpp>
#include <string>

#include "../data/dataset.hpp"
#include "../data/find.hpp"
#include "../data/loader.hpp"
#include "../quant/method.hpp"

namespace lowbit {
namespace train {

struct RunData {
  data::Dataset train, test;
  std::string description;  // where the data came from
};

// The test split alone (--eval).
inline data::Dataset load_test_data(const nlohmann::json& cfg, std::string* description = nullptr) {
  const data::DataLocation loc = data::find_cifar10(cfg.at("data").get<std::string>());
  if (description) *description = loc.description;
  data::Dataset test = data::load_cifar10(loc, data::Split::Test);
  const int64_t n_test = cfg.at("test_images");
  return n_test > 0 ? data::random_subset(test, n_test, cfg.at("seed").get<uint64_t>()) : test;
}

inline RunData load_run_data(const nlohmann::json& cfg) {
  const data::DataLocation loc = data::find_cifar10(cfg.at("data").get<std::string>());
  RunData d;
  d.description = loc.description;
  data::Dataset train = data::load_cifar10(loc, data::Split::Train);
  data::Dataset test = data::load_cifar10(loc, data::Split::Test);
  const int64_t per_class = cfg.at("train_per_class"), n_train = cfg.at("train_images"), n_test = cfg.at("test_images");
  const uint64_t seed = cfg.at("seed");
  if (per_class > 0) d.train = data::balanced_subset(train, per_class, seed);
  else if (n_train > 0) d.train = data::random_subset(train, n_train, seed);
  else d.train = std::move(train);
  d.test = n_test > 0 ? data::random_subset(test, n_test, seed) : std::move(test);
  return d;
}

// One un-augmented, unshuffled pass over `ds` for a method's statistics passes (BN
// calibration, quant/method.hpp's BatchSource); the training loader, whose state resume
// depends on, is not touched.
inline quant::BatchSource unaugmented_batches(std::shared_ptr<const data::Dataset> ds, int64_t batch) {
  data::LoaderOptions lo;
  lo.batch_size = batch;
  lo.shuffle = false;
  lo.augment = false;
  auto loader = std::make_shared<data::DataLoader>(std::move(ds), lo);
  return [loader](Tensor<float>& images) {
    data::Batch b;
    if (!loader->next(b)) return false;
    images = b.images;
    return true;
  };
}

}  // namespace train
}  // namespace lowbit
