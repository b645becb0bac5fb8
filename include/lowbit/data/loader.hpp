// DataLoader: batches over a Dataset with seeded per-epoch shuffling, optional augmentation,
// and a state that can be saved and restored for bit-exact resume.
//
// Determinism contract (what makes resume exact):
//   * the order of epoch e is random_permutation(n, Generator(epoch_seed(perm_seed, e))) —
//     a pure function of (perm_seed, e), so it needs no saved generator state;
//   * augmentation draws come from one Generator that runs on across epochs; its state
//     (Generator::state_string) is part of the loader state;
//   * the state is {epoch, position in the epoch, generator state, perm_seed} (plus the
//     settings that must match on restore). A loader restored from the state of another
//     loader (same dataset and options) returns exactly the batches the other would have.
// Usage:
//   DataLoader loader(train, opts);
//   for (int e = 0; e < epochs; ++e) {
//     Batch b;
//     while (loader.next(b)) { ... }     // next() returns false once, at the end of an epoch,
//   }                                    // and moves the loader to the next epoch
//   std::string s = loader.state();      // JSON text; later: loader2.set_state(s)
#pragma once
#include <algorithm>
#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "../core/error.hpp"
#include "../core/random.hpp"
#include "../io/json_int.hpp"
#include "augment.hpp"
#include "dataset.hpp"

namespace lowbit {
namespace data {

struct LoaderOptions {
  int64_t batch_size = 128;
  bool shuffle = true;     // a new seeded permutation every epoch; false: dataset order
  bool drop_last = false;  // drop the last, smaller batch of an epoch
  bool augment = true;     // random crop + flip (training); false: normalization only
  AugmentConfig augment_config{};
  Normalize normalize{};   // CIFAR-10 mean/std by default; one mean/std per image channel
  uint64_t seed = 0;       // seeds both the shuffles and the augmentation
  // Data-parallel training (dist/data_parallel.hpp): every process's loader walks the same
  // batches and draws the same random numbers, and returns only its part of each batch,
  // images [B shard / shards, B (shard + 1) / shards) of a batch of B. 0 of 1: all of it.
  int shard = 0, shards = 1;
};

namespace detail {
// splitmix64 finalizer of a combination of two words: decorrelates (seed, epoch) pairs.
inline uint64_t mix_seed(uint64_t a, uint64_t b) {
  uint64_t z = a + 0x9e3779b97f4a7c15ULL * (b + 1);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}
}  // namespace detail

// Seed of the shuffle of `epoch` (public so that tools can reproduce an epoch's order).
inline uint64_t epoch_seed(uint64_t perm_seed, int64_t epoch) {
  return detail::mix_seed(perm_seed, 2 * static_cast<uint64_t>(epoch) + 1);
}
// Initial seed of the augmentation generator for a loader seed.
inline uint64_t augment_seed(uint64_t seed) { return detail::mix_seed(seed, 0); }

struct LoaderState {
  int64_t epoch = 0;
  int64_t position = 0;  // samples of this epoch already returned
  std::string rng;       // Generator::state_string() of the augmentation generator
  uint64_t perm_seed = 0;
  // Settings recorded so that restoring into a loader that would produce different
  // batches is an error instead of a silent divergence.
  int64_t dataset_size = 0;
  int64_t batch_size = 0;
  bool shuffle = true;
  bool drop_last = false;
  bool augment = true;

  nlohmann::json to_json() const {
    return nlohmann::json{{"format", "lowbit.DataLoader"}, {"version", 1},
                          {"epoch", epoch},                 {"position", position},
                          {"rng", rng},                     {"perm_seed", perm_seed},
                          {"dataset_size", dataset_size},   {"batch_size", batch_size},
                          {"shuffle", shuffle},             {"drop_last", drop_last},
                          {"augment", augment}};
  }

  static LoaderState from_json(const nlohmann::json& j) {
    LoaderState s;
    try {
      LOWBIT_CHECK(j.is_object() && j.value("format", std::string()) == "lowbit.DataLoader",
                   "LoaderState: expected a JSON object with \"format\": \"lowbit.DataLoader\", got ",
                   j.dump());
      const int64_t version = io::json_int(j.at("version"), "LoaderState: version");
      LOWBIT_CHECK(version == 1, "LoaderState: version ", version, ", expected 1");
      s.epoch = io::json_int(j.at("epoch"), "LoaderState: epoch");
      s.position = io::json_int(j.at("position"), "LoaderState: position");
      s.rng = j.at("rng").get<std::string>();
      s.perm_seed = io::json_uint64(j.at("perm_seed"), "LoaderState: perm_seed");
      s.dataset_size = io::json_int(j.at("dataset_size"), "LoaderState: dataset_size");
      s.batch_size = io::json_int(j.at("batch_size"), "LoaderState: batch_size");
      s.shuffle = j.at("shuffle").get<bool>();
      s.drop_last = j.at("drop_last").get<bool>();
      s.augment = j.at("augment").get<bool>();
    } catch (const nlohmann::json::exception& e) {
      lowbit::detail::fail("LoaderState: malformed state ", j.dump(), ": ", e.what(),
                           " (expected the object written by DataLoader::save_state().to_json())");
    }
    return s;
  }
};

class DataLoader {
 public:
  DataLoader(std::shared_ptr<const Dataset> ds, LoaderOptions opt)
      : ds_(std::move(ds)), opt_(std::move(opt)), table_(opt_.normalize),
        gen_(augment_seed(opt_.seed)), perm_seed_(opt_.seed) {
    LOWBIT_CHECK(ds_ != nullptr, "DataLoader: dataset is null");
    LOWBIT_CHECK(!ds_->empty(), "DataLoader: dataset '", ds_->source,
                 "' is empty, expected at least one image");
    ds_->check();
    opt_.augment_config.check();
    LOWBIT_CHECK(table_.channels() == ds_->channels, "DataLoader: normalization has ", table_.channels(),
                 " channels (mean ", opt_.normalize.mean.size(), ", std ", opt_.normalize.std.size(), " values), the images of '",
                 ds_->source, "' have ", ds_->channels, " (", ds_->shape_string(), ")");
    LOWBIT_CHECK(opt_.batch_size > 0, "DataLoader: batch_size = ", opt_.batch_size,
                 ", expected a positive number");
    LOWBIT_CHECK(!opt_.drop_last || opt_.batch_size <= ds_->size(), "DataLoader: batch_size ",
                 opt_.batch_size, " with drop_last is larger than the dataset '", ds_->source,
                 "' (", ds_->size(), " images): every epoch would be empty");
    LOWBIT_CHECK(opt_.shards >= 1 && opt_.shard >= 0 && opt_.shard < opt_.shards, "DataLoader: shard ", opt_.shard,
                 " of ", opt_.shards, ", expected 0 <= shard < shards");
    const int64_t last = epoch_end() % opt_.batch_size;  // the last, smaller batch of an epoch (0: none)
    LOWBIT_CHECK(std::min(opt_.batch_size, last > 0 ? last : opt_.batch_size) >= opt_.shards, "DataLoader: batches of ",
                 opt_.batch_size, " images of '", ds_->source, "' (", ds_->size(), " images, the last batch ",
                 last > 0 ? last : opt_.batch_size, ") split over ", opt_.shards,
                 " processes would leave a process without images; expected every batch to hold at least ",
                 opt_.shards);
  }
  // Takes the dataset by value: move a Dataset in to avoid copying the images.
  DataLoader(Dataset ds, LoaderOptions opt)
      : DataLoader(std::make_shared<const Dataset>(std::move(ds)), std::move(opt)) {}

  // Fills `out` with the next batch of the current epoch and returns true; at the end of the
  // epoch returns false (leaving `out` alone) and moves on to the next epoch.
  bool next(Batch& out) {
    const int64_t end = epoch_end();
    if (pos_ >= end) {
      ++epoch_;
      pos_ = 0;
      return false;
    }
    if (order_epoch_ != epoch_) {
      order_ = epoch_order(epoch_);
      order_epoch_ = epoch_;
    }
    const int64_t b = std::min(opt_.batch_size, end - pos_);
    // This process's part of the batch (all of it without shards).
    const int64_t lo = b * opt_.shard / opt_.shards, hi = b * (opt_.shard + 1) / opt_.shards;
    std::vector<int64_t> idx(order_.begin() + pos_ + lo, order_.begin() + pos_ + hi);
    std::vector<AugmentParams> params;
    if (opt_.augment) {
      // All random numbers of the batch are drawn here, serially, in batch order (every
      // shard's too, so that the generator is where one process's would be).
      params.reserve(static_cast<size_t>(hi - lo));
      for (int64_t i = 0; i < b; ++i) {
        const AugmentParams p = draw_augment_params(gen_, opt_.augment_config, ds_->height, ds_->width);
        if (i >= lo && i < hi) params.push_back(p);
      }
    }
    out = make_batch(*ds_, idx, params, opt_.augment_config.pad, table_);
    pos_ += b;
    return true;
  }

  // The sample order of an epoch (a permutation of 0..n-1; the identity without shuffle).
  std::vector<int64_t> epoch_order(int64_t epoch) const {
    if (!opt_.shuffle) {
      std::vector<int64_t> id(static_cast<size_t>(ds_->size()));
      for (int64_t i = 0; i < ds_->size(); ++i) id[static_cast<size_t>(i)] = i;
      return id;
    }
    Generator g(epoch_seed(perm_seed_, epoch));
    return random_permutation(ds_->size(), g);
  }

  int64_t epoch() const { return epoch_; }
  int64_t position() const { return pos_; }
  // Samples returned per epoch (n, or n rounded down to whole batches with drop_last).
  int64_t epoch_end() const {
    const int64_t n = ds_->size();
    return opt_.drop_last ? n / opt_.batch_size * opt_.batch_size : n;
  }
  int64_t batches_per_epoch() const {
    return (epoch_end() + opt_.batch_size - 1) / opt_.batch_size;
  }
  const Dataset& dataset() const { return *ds_; }
  const LoaderOptions& options() const { return opt_; }

  // ---- state for checkpoints ----------------------------------------------------------
  LoaderState save_state() const {
    LoaderState s;
    s.epoch = epoch_;
    s.position = pos_;
    s.rng = gen_.state_string();
    s.perm_seed = perm_seed_;
    s.dataset_size = ds_->size();
    s.batch_size = opt_.batch_size;
    s.shuffle = opt_.shuffle;
    s.drop_last = opt_.drop_last;
    s.augment = opt_.augment;
    return s;
  }

  // Restores a state saved by a loader over the same dataset with the same options. The
  // state's perm_seed and generator state replace this loader's own seed-derived ones.
  void load_state(const LoaderState& s) {
    const char* who = "DataLoader::load_state";
    LOWBIT_CHECK(s.dataset_size == ds_->size(), who, ": state was saved for a dataset of ",
                 s.dataset_size, " images, this loader's dataset '", ds_->source, "' has ",
                 ds_->size());
    LOWBIT_CHECK(s.batch_size == opt_.batch_size, who, ": state has batch_size ", s.batch_size,
                 ", this loader has ", opt_.batch_size);
    LOWBIT_CHECK(s.shuffle == opt_.shuffle && s.drop_last == opt_.drop_last &&
                     s.augment == opt_.augment,
                 who, ": state has shuffle/drop_last/augment = ", s.shuffle, "/", s.drop_last, "/",
                 s.augment, ", this loader has ", opt_.shuffle, "/", opt_.drop_last, "/",
                 opt_.augment);
    LOWBIT_CHECK(s.epoch >= 0, who, ": epoch ", s.epoch, ", expected >= 0");
    LOWBIT_CHECK(s.position >= 0 && s.position <= epoch_end(), who, ": position ", s.position,
                 ", expected 0..", epoch_end());
    Generator g;
    g.set_state_string(s.rng);  // throws lowbit::Error if malformed
    gen_ = g;
    epoch_ = s.epoch;
    pos_ = s.position;
    perm_seed_ = s.perm_seed;
    order_epoch_ = -1;  // recompute the order for the restored epoch/seed
  }

  // The state as JSON text, and its inverse.
  std::string state() const { return save_state().to_json().dump(); }
  void set_state(const std::string& text) {
    nlohmann::json j;
    try {
      j = nlohmann::json::parse(text);
    } catch (const nlohmann::json::exception& e) {
      lowbit::detail::fail("DataLoader::set_state: cannot parse '", text, "' as JSON (", e.what(),
                           "); expected the text returned by DataLoader::state()");
    }
    load_state(LoaderState::from_json(j));
  }

 private:
  std::shared_ptr<const Dataset> ds_;
  LoaderOptions opt_;
  NormalizeTable table_;
  Generator gen_;            // augmentation random numbers
  uint64_t perm_seed_ = 0;   // shuffle seed (see epoch_seed)
  int64_t epoch_ = 0;
  int64_t pos_ = 0;
  std::vector<int64_t> order_;  // cached epoch_order(order_epoch_)
  int64_t order_epoch_ = -1;
};

}  // namespace data
}  // namespace lowbit
