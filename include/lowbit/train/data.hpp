// The data of a run (train_cifar): the data set the config names ("dataset": cifar10,
// cifar100 or mnist found as data/find.hpp says, from "data", $LOWBIT_DATA or the usual
// folders; or "folder", a user's train/<class>/ and test/<class>/ images in "data"), then
//   1. the validation split: "val_images" training images held out, chosen by a seeded
//      permutation (seed mixed from "seed", so it never equals the subset draws below),
//   2. the training subset of the rest (train_per_class balanced images per class, or
//      train_images random images, or all), and the test subset (test_images, or all),
//   3. the normalization ("normalize": the published statistics of the named data sets, the
//      training images' own, given values, or none).
// A run records what its model was built for (DataInfo: image shape, classes, normalization)
// in its checkpoint and model.lbq, so --eval and --init-from rebuild the same network and
// normalize test images the same way without reading the training data again.
#pragma once
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "../data/augment.hpp"
#include "../data/dataset.hpp"
#include "../data/find.hpp"
#include "../data/image_folder.hpp"
#include "../data/loader.hpp"
#include "../io/json_int.hpp"
#include "../quant/method.hpp"

namespace lowbit {
namespace train {

// What a model was trained on: the input shape, the classes and the normalization.
struct DataInfo {
  int64_t channels = 3, height = 32, width = 32, classes = 10;
  data::Normalize normalize = data::Normalize::cifar10();

  nlohmann::json to_json() const {
    return {{"channels", channels}, {"height", height}, {"width", width}, {"classes", classes},
            {"norm_mean", normalize.mean}, {"norm_std", normalize.std}};
  }
  // `what` names the file in errors.
  static DataInfo from_json(const nlohmann::json& j, const std::string& what) {
    DataInfo d;
    try {
      d.channels = io::json_int(j.at("channels"), what + ": data_info.channels");
      d.height = io::json_int(j.at("height"), what + ": data_info.height");
      d.width = io::json_int(j.at("width"), what + ": data_info.width");
      d.classes = io::json_int(j.at("classes"), what + ": data_info.classes");
      d.normalize.mean = j.at("norm_mean").get<std::vector<float>>();
      d.normalize.std = j.at("norm_std").get<std::vector<float>>();
    } catch (const nlohmann::json::exception& e) {
      lowbit::detail::fail(what, ": its data record ", j.dump(), " is malformed: ", e.what());
    }
    LOWBIT_CHECK(d.channels >= 1 && d.height >= 1 && d.width >= 1 && d.classes >= 2 &&
                     d.channels * d.height * d.width <= data::kMaxImageBytes &&
                     d.normalize.channels() == d.channels && d.normalize.std.size() == d.normalize.mean.size(),
                 what, ": its data record ", j.dump(), " is not a valid image shape / class count / normalization");
    return d;
  }
  std::string text() const {
    return std::to_string(channels) + "x" + std::to_string(height) + "x" + std::to_string(width) + " images, " +
           std::to_string(classes) + " classes";
  }
};

// The info of a named data set without reading it (files of lowbit before run-time shapes
// hold none: they are CIFAR-10). A folder's shape is only known from its images.
inline DataInfo named_data_info(const nlohmann::json& cfg) {
  const std::string ds = cfg.at("dataset");
  DataInfo d;
  if (ds == "cifar100") d.classes = 100, d.normalize = data::Normalize::cifar100();
  if (ds == "mnist") d.channels = 1, d.height = 28, d.width = 28, d.normalize = data::Normalize::mnist();
  LOWBIT_CHECK(ds != "folder", "dataset 'folder': the image shape and classes come from the images (",
               cfg.at("data").get<std::string>(), "); this file records none");
  return d;
}

// The normalization the config asks for, on the training images `train`.
inline data::Normalize run_normalize(const nlohmann::json& cfg, const data::Dataset& train) {
  const std::string mode = cfg.at("normalize"), ds = cfg.at("dataset");
  if (mode == "none") return data::Normalize::identity(train.channels);
  if (mode == "given") {
    data::Normalize n{cfg.at("norm_mean").get<std::vector<float>>(), cfg.at("norm_std").get<std::vector<float>>()};
    LOWBIT_CHECK(n.channels() == train.channels, "config keys 'norm_mean'/'norm_std' give ", n.channels(),
                 " values each, the images of '", train.source, "' have ", train.channels, " channel(s)");
    return n;
  }
  if (mode == "auto" && ds != "folder") return named_data_info(cfg).normalize;
  return data::Normalize::of(train);
}

// One split of the config's data set; `description` gets where it came from.
inline data::Dataset load_split(const nlohmann::json& cfg, data::Split split, std::string* description = nullptr) {
  const std::string ds = cfg.at("dataset"), dir = cfg.at("data");
  if (ds == "folder") {
    if (description) *description = "image folders in '" + dir + "' (--data)";
    data::ImageFolderOptions o;
    o.size = cfg.at("image_size");
    o.channels = cfg.at("channels");
    return data::load_image_folder_split(dir, split, o);
  }
  const data::DataLocation loc = data::find_dataset(ds, dir);
  if (description) *description = loc.description;
  return data::load_dataset(loc, split);
}

struct RunData {
  data::Dataset train, val, test;  // val is empty without val_images
  data::Normalize normalize;
  std::string description;  // where the data came from
  DataInfo info() const {
    return {train.channels, train.height, train.width, train.num_classes(), normalize};
  }
};

// The test split alone (--eval), normalized as the model's DataInfo says.
inline data::Dataset load_test_data(const nlohmann::json& cfg, std::string* description = nullptr) {
  data::Dataset test = load_split(cfg, data::Split::Test, description);
  const int64_t n_test = cfg.at("test_images");
  return n_test > 0 ? data::random_subset(test, n_test, cfg.at("seed").get<uint64_t>()) : test;
}

// Seed of the validation split: a mix of the run's seed, so the held-out images are not
// the ones a subset with the same seed would pick.
inline uint64_t val_seed(uint64_t seed) { return seed * 0x9e3779b97f4a7c15ULL + 0x76a1ULL; }

inline RunData load_run_data(const nlohmann::json& cfg) {
  RunData d;
  data::Dataset train = load_split(cfg, data::Split::Train, &d.description);
  data::Dataset test = load_split(cfg, data::Split::Test);
  LOWBIT_CHECK(train.same_shape(test) && train.class_names == test.class_names, "data: the test images of '",
               test.source, "' (", test.shape_string(), ", ", test.num_classes(),
               " classes) do not match the training images (", train.shape_string(), ", ", train.num_classes(), " classes)");
  LOWBIT_CHECK(train.num_classes() >= 2, "data: '", train.source, "' has ", train.num_classes(),
               " class(es), expected at least 2");
  const int64_t per_class = cfg.at("train_per_class"), n_train = cfg.at("train_images"), n_test = cfg.at("test_images");
  const int64_t n_val = cfg.at("val_images");
  const uint64_t seed = cfg.at("seed");
  if (n_val > 0) {
    LOWBIT_CHECK(n_val < train.size(), "config key 'val_images' = ", n_val, ": the training set '", train.source,
                 "' has ", train.size(), " images, expected fewer held out");
    data::TrainValSplit s = data::train_val_split(train, n_val, val_seed(seed));
    train = std::move(s.train);
    d.val = std::move(s.val);
  }
  if (per_class > 0) d.train = data::balanced_subset(train, per_class, seed);
  else if (n_train > 0) d.train = data::random_subset(train, n_train, seed);
  else d.train = std::move(train);
  d.test = n_test > 0 ? data::random_subset(test, n_test, seed) : std::move(test);
  d.normalize = run_normalize(cfg, d.train);
  return d;
}

// One un-augmented, unshuffled pass over `ds` for a method's statistics passes (BN
// calibration, quant/method.hpp's BatchSource); the training loader, whose state resume
// depends on, is not touched. shard of shards: this process's part of each batch
// (data-parallel training, dist/data_parallel.hpp).
inline quant::BatchSource unaugmented_batches(std::shared_ptr<const data::Dataset> ds, int64_t batch,
                                              const data::Normalize& norm = data::Normalize::cifar10(), int shard = 0,
                                              int shards = 1) {
  data::LoaderOptions lo;
  lo.shard = shard, lo.shards = shards;
  lo.batch_size = batch;
  lo.shuffle = false;
  lo.augment = false;
  lo.normalize = norm;
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
