// train_cifar: trains a CNN on (a subset of) CIFAR-10 and writes what a script needs to
// read the result. The README's first command runs it with examples/configs/quickstart.json.
//
//   train_cifar [--config FILE.json] [--set key=value]... [--resume OUT] [--eval CHECKPOINT]
//               [--tta flip] [--stop-after-epochs K] [--init-from CHECKPOINT]
//
// Output folder (config key "out"):
//   metrics.jsonl   one JSON object per epoch (losses, accuracies, lr, images/s)
//   steps.jsonl     one JSON object per training step (loss, lr): what the resume test compares
//   summary.json    the run's result (model, method, bits, accuracy, time, size)
//   checkpoint.bin  everything needed to resume bit-exactly (io/checkpoint.hpp)
//   model.lbq       method != fp32: the trained quantized model (quant/export.hpp); --eval
//                   accepts it and rebuilds the inference model from the config inside
//
// Bad input (config, data, checkpoint) prints one line naming the file or key and exits
// with status 2, leaving existing files untouched.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <lowbit/data/find.hpp>
#include <lowbit/data/loader.hpp>
#include <lowbit/lowbit.hpp>
#include <set>
#include <sstream>
#include <string>
#include <vector>

using namespace lowbit;
using json = nlohmann::json;
namespace fs = std::filesystem;

namespace {

// Every key the trainer understands, with its default. Config files and --set may only
// change these keys, with values of the same type (io/config.hpp).
json default_config() {
  return json{
      {"model", "resnet20"},     // resnet20 | vgg_small | vgg_bc (ALQ's BinaryConnect VGG)
      {"shortcut", "A"},         // ResNet shortcut option: A (zero-padded identity) | B (1x1 conv + BN)
      {"method", "fp32"},        // quantization method: fp32 (none) | ste (DoReFa/BWN weights, docs/quantization.md) | slb (docs/slb.md) | apot (docs/apot.md) | alq (docs/alq.md)
      {"w_bits", 32},            // weight bits: 1 (BWN) .. 8 (DoReFa), 32 = full precision
      {"a_bits", 32},            // activation bits (layer inputs): 1..8, 32 = full precision
      {"a_quant", "dorefa"},     // activation quantizer: dorefa (clip [0,1]) | pact (learned clip alpha)
      {"first_layer", "fp32"},   // first conv: fp32 | 8bit (weights only) | same (as the middle layers)
      {"last_layer", "fp32"},    // last linear: fp32 | 8bit (weights only) | same
      {"pact_alpha", 10.0},      // PACT's initial clipping level
      {"pact_weight_decay", 5e-4},  // L2 weight decay on PACT's alpha (PACT regularizes alpha)
      // --- SLB (method = slb; docs/slb.md, quant/slb_hooks.hpp) ---
      {"slb_schedule", "exp"},   // temperature T = 1/tau per step: exp | linear | sin | sgdr (exp, restarted) | geometric (authors' per-epoch rule)
      {"slb_t_start", 0.01},     // T_s (geometric: its T_0)
      {"slb_t_end", 10.0},       // T_e
      {"slb_periods", 3},        // sgdr: warm restarts of the temperature
      {"slb_geo_factor", 1.2},   // geometric: T *= factor per epoch ...
      {"slb_geo_start", 0.2},    // ... from this fraction of the epochs ...
      {"slb_geo_end", 0.6},      // ... to this one
      {"slb_sbn", true},         // state batch-norm: discrete BN statistics from a no-grad W_q pass each step
      {"slb_calibrate_batches", 0},  // BN calibration with W_q after every epoch, in batches (0 = off)
      {"slb_integer_pass", true},    // the discrete pass convolves integer codes where it can (false: float conv)
      {"slb_init", "kaiming"},   // logits A: kaiming | weight (favour the value nearest the initial float weight)
      // --- end SLB ---
      // --- APoT (method apot, quant/apot.hpp, docs/apot.md); w_bits / a_bits 2..5 -------------
      {"apot_levels", "apot"},        // level set: apot (k = 2) | uniform | pot
      {"apot_wn", "on"},              // weight normalization: on (Eq. 9) | detached (CIFAR code) | off
      {"apot_rcf", "on"},             // on (Eq. 8) | pact (Eq. 11 alpha gradient) | off (alpha = max|W|, Table 3)
      {"apot_grad_outside", "pass"},  // weight gradient beyond alpha: pass (CIFAR code) | zero
      {"apot_w_alpha", 3.0},          // initial weight alpha (on normalized weights; CIFAR code)
      {"apot_a_alpha", 8.0},          // initial activation alpha (CIFAR code)
      {"apot_w_alpha_lr", 0.02},      // weight alphas' lr at the schedule's peak (CIFAR code, method-notes §1.4)
      {"apot_a_alpha_lr", 0.1},       // activation alphas' lr at the schedule's peak
      {"apot_alpha_weight_decay", 1e-4},  // L2 decay of both alpha groups
      {"train_per_class", 500},  // balanced training subset (0 = use train_images)
      {"train_images", 0},       // N random training images when train_per_class = 0 (0 = all)
      {"test_images", 0},        // N random test images (0 = the full 10,000)
      {"epochs", 10},
      {"batch", 128},
      {"optimizer", "sgd"},      // sgd | adam | adamw
      {"lr", 0.1},
      {"momentum", 0.9},         // SGD momentum
      {"nesterov", true},        // SGD Nesterov momentum
      {"schedule", "cosine"},    // cosine | multistep | exp | constant, per step
      {"warmup_epochs", 1.0},    // linear warmup length, in epochs
      {"milestones", json::array()},  // multistep: epochs at which lr *= gamma
      {"gamma", 0.1},            // multistep / exp factor (exp: per epoch)
      {"weight_decay", 5e-4},    // on conv and linear weights only
      {"label_smoothing", 0.0},
      {"kd_teacher", ""},        // knowledge distillation: a trained checkpoint.bin or model.lbq ("" = off)
      {"kd_alpha", 0.5},         // loss (and train_loss) = (1 - kd_alpha) cross-entropy + kd_alpha distillation (ops/softmax.hpp)
      {"kd_temperature", 4.0},   // T of the softened distributions (Hinton et al. 2015)
      {"kd_teacher_tta", "none"},  // none | flip: the teacher's softened outputs averaged over the image and its mirror (nn/tta.hpp)
      {"augment", true},         // pad-4 random crop + horizontal flip
      {"cutout", 0},             // Cutout square side in pixels after the crop and flip (16 for CIFAR-10; 0 = off)
      {"seed", 0},
      {"threads", 0},            // 0 = all cores
      {"out", "runs/quickstart"},
      {"data", ""},              // data directory; empty = search (data/find.hpp)
      // ---- method "alq" (quant/alq.hpp, docs/alq.md): w_bits = I_max (most bases per group);
      // ALQ uses its own optimizer and learning-rate schedule (lr, schedule, optimizer,
      // weight_decay above are not used), and "epochs" must equal its pipeline length:
      // alq_rounds * (alq_epoch_basis + alq_epoch_coord + alq_epoch_prune) + alq_ste_epochs
      // + alq_final_coord_epochs (225 with these defaults, the authors' VGG script).
      {"alq_init", ""},             // FP32 checkpoint.bin of the same model to sketch from ("" = random init)
      {"alq_first_layer", "same"},  // ALQ's first conv: same (quantized, the paper's point) | 8bit | fp32
      {"alq_last_layer", "same"},   // ALQ's last linear: same | 8bit | fp32 (first_layer/last_layer are not used)
      {"alq_lr", 1e-3},             // AMSGrad lr, reset at the start of every round
      {"alq_weight_decay", 0.0},    // L2 on the coordinates in coordinate epochs
      {"alq_rounds", 5},            // R rounds of basis / coordinate / pruning epochs
      {"alq_epoch_basis", 20},
      {"alq_ld_basis", 0.8},        // lr factor before each basis epoch
      {"alq_epoch_coord", 10},
      {"alq_ld_coord", 0.8},        // lr factor before each coordinate epoch
      {"alq_epoch_prune", 1},
      {"alq_prune_rule", "paper"},  // paper (uniform decrease to alq_target_bits) | authors (alq_prune_rate, alq_top_k)
      {"alq_target_bits", 0.66},    // I_min: average weight bits after the last pruning epoch (paper rule)
      {"alq_prune_rate", 0.4},      // pr (authors' rule)
      {"alq_top_k", 0.002},         // top_k (authors' rule)
      {"alq_ste_epochs", 50},       // "STE with loss-aware" epochs after the rounds
      {"alq_ste_lr", 1e-3},
      {"alq_ld_ste", 0.95},
      {"alq_final_coord_epochs", 20},
      {"alq_ld_final_coord", 0.9},
      {"alq_first_grouping", "channel"},  // first conv: channel | pixel | kernel
      {"alq_conv_grouping", "pixel"},     // other convs: pixel | channel | kernel
      {"alq_fc_grouping", "subchannel"},  // linear layers: subchannel | channel
      {"alq_fc_group_size", 512},         // sub-channel group size (largest divisor of in_features <= this)
      {"alq_calibrate_batches", 0},       // BN statistics re-estimated over N training batches after every epoch (0 = off)
  };
}

quant::QuantSpec quant_spec(const json& c);

void validate(const json& c) {
  auto positive = [&](const char* k) {
    LOWBIT_CHECK(c.at(k).get<double>() > 0, "config key '", k, "' must be positive, got ", c.at(k).dump());
  };
  auto non_negative = [&](const char* k) {
    LOWBIT_CHECK(c.at(k).get<double>() >= 0, "config key '", k, "' must be >= 0, got ", c.at(k).dump());
  };
  const std::string model = c.at("model");
  LOWBIT_CHECK(model == "resnet20" || model == "vgg_small" || model == "vgg_bc", "config key 'model': unknown model '",
               model, "' (expected resnet20, vgg_small or vgg_bc)");
  const std::string sc = c.at("shortcut");
  LOWBIT_CHECK(sc == "A" || sc == "B", "config key 'shortcut' must be \"A\" or \"B\", got \"", sc, "\"");
  const std::string method = c.at("method");
  {
    const auto& ms = quant::QuantSpec::methods();
    std::string list;
    for (auto& m : ms) list += (list.empty() ? "" : ", ") + m;
    LOWBIT_CHECK(std::find(ms.begin(), ms.end(), method) != ms.end(), "config key 'method': unknown method '", method,
                 "' (expected one of ", list, ")");
  }
  for (const char* k : {"w_bits", "a_bits"}) {
    const int b = c.at(k).get<int>();
    LOWBIT_CHECK((b >= 1 && b <= 8) || b == 32, "config key '", k, "' must be 1..8 or 32, got ", b);
  }
  LOWBIT_CHECK(method != "fp32" || (c.at("w_bits") == 32 && c.at("a_bits") == 32),
               "config keys 'w_bits'/'a_bits' must be 32 for method fp32, got ", c.at("w_bits").dump(), "/",
               c.at("a_bits").dump(), " (use --set method=ste for quantized training)");
  if (method == "slb") {  // SLB (issue 6): its weights are always searched over 2^w_bits values
    LOWBIT_CHECK(c.at("w_bits").get<int>() <= 8, "config key 'w_bits' must be 1..8 for method slb, got ",
                 c.at("w_bits").dump());
    json o = json::object();
    for (auto it = c.begin(); it != c.end(); ++it)
      if (it.key().rfind("slb_", 0) == 0) o[it.key().substr(4)] = it.value();
    quant::SlbOptions::from_json(o);  // names the option and the value
  }
  const std::string aq = c.at("a_quant");
  LOWBIT_CHECK(aq == "dorefa" || aq == "pact", "config key 'a_quant': unknown activation quantizer '", aq,
               "' (expected dorefa or pact)");
  quant::parse_policy(c.at("first_layer"), "config key 'first_layer'");
  quant::parse_policy(c.at("last_layer"), "config key 'last_layer'");
  positive("pact_alpha");
  non_negative("pact_weight_decay");
  for (const char* k : {"apot_w_alpha_lr", "apot_a_alpha_lr", "apot_alpha_weight_decay"}) non_negative(k);
  if (method == "apot") quant_spec(c).validate();  // bits 2..5 or 32, the apot_* values
  positive("epochs");
  positive("batch");
  positive("lr");
  non_negative("train_per_class");
  non_negative("train_images");
  non_negative("test_images");
  non_negative("momentum");
  non_negative("weight_decay");
  non_negative("warmup_epochs");
  non_negative("threads");
  LOWBIT_CHECK(c.at("label_smoothing").get<double>() >= 0 && c.at("label_smoothing").get<double>() <= 1,
               "config key 'label_smoothing' must be in [0, 1], got ", c.at("label_smoothing").dump());
  LOWBIT_CHECK(c.at("kd_alpha").get<double>() >= 0 && c.at("kd_alpha").get<double>() <= 1,
               "config key 'kd_alpha' must be in [0, 1], got ", c.at("kd_alpha").dump());
  positive("kd_temperature");
  LOWBIT_CHECK(c.at("kd_teacher_tta") == "none" || c.at("kd_teacher_tta") == "flip",
               "config key 'kd_teacher_tta' must be none or flip, got ", c.at("kd_teacher_tta").dump());
  LOWBIT_CHECK(c.at("cutout").get<int>() >= 0 && c.at("cutout").get<int>() <= 32,
               "config key 'cutout' must be a square side in pixels, 0..32 (0 = off), got ", c.at("cutout").dump());
  LOWBIT_CHECK(c.at("cutout").get<int>() == 0 || c.at("augment").get<bool>(),
               "config key 'cutout' = ", c.at("cutout").dump(), " needs 'augment' = true (Cutout is part of the "
               "training augmentation)");
  const std::string opt = c.at("optimizer");
  LOWBIT_CHECK(opt == "sgd" || opt == "adam" || opt == "adamw", "config key 'optimizer': unknown optimizer '", opt,
               "' (expected sgd, adam or adamw)");
  optim::Schedule::parse_kind(c.at("schedule"));
  for (auto& m : c.at("milestones"))
    LOWBIT_CHECK(m.is_number_integer() && m.get<int64_t>() >= 0, "config key 'milestones' must hold epoch numbers, got ",
                 c.at("milestones").dump());
  LOWBIT_CHECK(!c.at("out").get<std::string>().empty(), "config key 'out' must name a folder");
  if (method == "alq") {  // quant/alq.hpp
    quant::parse_policy(c.at("alq_first_layer"), "config key 'alq_first_layer'");
    quant::parse_policy(c.at("alq_last_layer"), "config key 'alq_last_layer'");
    LOWBIT_CHECK(c.at("first_layer") == "fp32" && c.at("last_layer") == "fp32",
                 "config keys 'first_layer'/'last_layer' are not used by method alq; set 'alq_first_layer'/"
                 "'alq_last_layer' instead (default same: every layer quantized)");
    quant_spec(c).validate();  // w_bits = I_max and the alq_* options, before any data is loaded
    const quant::alq::Options o = quant::alq::Options::from_json(quant_spec(c).options);
    LOWBIT_CHECK(c.at("epochs").get<int64_t>() == o.total_epochs(), "config key 'epochs' = ", c.at("epochs").dump(),
                 ", but the ALQ pipeline (alq_rounds, alq_epoch_*, alq_ste_epochs, alq_final_coord_epochs) has ",
                 o.total_epochs(), " epochs");
  }
}

void print_config(const json& c) {
  std::printf("%-18s %s\n", "config key", "value");
  std::printf("%-18s %s\n", "------------------", "--------------------");
  for (auto it = c.begin(); it != c.end(); ++it) std::printf("%-18s %s\n", it.key().c_str(), it.value().dump().c_str());
  std::printf("\n");
}

// The quantization spec of a config: the middle layers get method/w_bits/a_bits, the first
// conv and the last linear layer follow first_layer / last_layer (quant/spec.hpp). Keys
// named "<method>_<option>" (e.g. slb_schedule) become the method's options, prefix removed.
quant::QuantSpec quant_spec(const json& c) {
  quant::QuantSpec s;
  s.method = c.at("method");
  s.w_bits = c.at("w_bits");
  s.a_bits = c.at("a_bits");
  s.a_quant = c.at("a_quant");
  s.pact_alpha = c.at("pact_alpha").get<float>();
  s.first = quant::parse_policy(c.at("first_layer"), "config key 'first_layer'");
  s.last = quant::parse_policy(c.at("last_layer"), "config key 'last_layer'");
  const std::string prefix = s.method + "_";
  for (auto it = c.begin(); it != c.end(); ++it)
    if (it.key().rfind(prefix, 0) == 0) s.options[it.key().substr(prefix.size())] = it.value();
  if (s.method == "alq") {  // the paper quantizes every layer: ALQ's own policy keys (default same)
    s.first = quant::parse_policy(c.at("alq_first_layer"), "config key 'alq_first_layer'");
    s.last = quant::parse_policy(c.at("alq_last_layer"), "config key 'alq_last_layer'");
  }
  return s;
}

// The architecture of the config, its conv/linear layers from `f`.
std::shared_ptr<nn::Module> build_arch(const json& c, const nn::LayerFactory& f, Generator& gen) {
  if (c.at("model") == "resnet20") return nn::resnet20(gen, c.at("shortcut") == "A" ? nn::Shortcut::A : nn::Shortcut::B, f);
  if (c.at("model") == "vgg_bc") return nn::vgg_bc(gen, f);
  return nn::vgg_small(gen, f);
}

std::shared_ptr<nn::Module> build_model(const json& c, Generator& gen) {
  return build_arch(c, quant::make_factory(quant_spec(c)), gen);
}

// Weight decay on conv and linear weights only (tensors of rank >= 2, latent weights of
// quantized layers included); BN and biases 0. Clipping thresholds get their own groups:
// PACT's alpha (pact_weight_decay), APoT's weight alphas and activation alphas (apot_*_alpha_lr
// as lr_scale = alpha lr / lr, so the schedule scales them alike, and apot_alpha_weight_decay;
// method-notes §1.4).
std::vector<optim::ParamGroup> param_groups(const nn::Module& m, const json& c) {
  const double lr = c.at("lr").get<double>();
  std::vector<optim::ParamGroup> groups(5);  // decay, no decay, PACT alpha, APoT weight alpha, APoT act alpha
  for (auto& g : groups) g.lr = lr;
  groups[0].weight_decay = c.at("weight_decay").get<double>();
  groups[2].weight_decay = c.at("pact_weight_decay").get<double>();
  for (int k : {3, 4}) groups[static_cast<size_t>(k)].weight_decay = c.at("apot_alpha_weight_decay").get<double>();
  groups[3].lr_scale = c.at("apot_w_alpha_lr").get<double>() / lr;
  groups[4].lr_scale = c.at("apot_a_alpha_lr").get<double>() / lr;
  std::map<std::string, size_t> special;  // parameter name -> group
  for (auto& [name, mod] : m.named_modules()) {
    const std::string alpha = name.empty() ? "alpha" : name + ".alpha";
    if (dynamic_cast<const quant::PactActivation*>(mod)) special[alpha] = 2;
    if (dynamic_cast<const quant::ApotWeight*>(mod)) special[alpha] = 3;
    if (dynamic_cast<const quant::ApotActivation*>(mod)) special[alpha] = 4;
  }
  for (auto& kv : m.named_parameters()) {
    auto it = special.find(kv.first);
    groups[it != special.end() ? it->second : kv.second.dim() >= 2 ? 0 : 1].params.push_back(kv);
  }
  std::vector<optim::ParamGroup> out{groups[0], groups[1]};
  for (size_t k = 2; k < groups.size(); ++k)
    if (!groups[k].params.empty()) out.push_back(groups[k]);
  return out;
}

std::unique_ptr<optim::Optimizer> build_optimizer(nn::Module& m, const json& c, quant::MethodHooks& hooks) {
  if (auto own = hooks.make_optimizer(m, param_groups(m, c))) return own;  // e.g. ALQ's
  const std::string name = c.at("optimizer");
  if (name == "sgd")
    return std::make_unique<optim::SGD>(param_groups(m, c),
                                        optim::SgdOptions{c.at("momentum").get<double>(), 0.0, c.at("nesterov").get<bool>()});
  optim::AdamOptions o;
  o.decoupled_weight_decay = name == "adamw";
  return std::make_unique<optim::Adam>(param_groups(m, c), o);
}

optim::Schedule build_schedule(const json& c, int64_t steps_per_epoch) {
  optim::Schedule s;
  s.kind = optim::Schedule::parse_kind(c.at("schedule"));
  s.base_lr = c.at("lr").get<double>();
  s.warmup_steps = static_cast<int64_t>(c.at("warmup_epochs").get<double>() * static_cast<double>(steps_per_epoch));
  s.total_steps = c.at("epochs").get<int64_t>() * steps_per_epoch;
  s.final_lr = 0.0;
  s.gamma = c.at("gamma").get<double>();
  for (auto& m : c.at("milestones")) s.milestones.push_back(m.get<int64_t>() * steps_per_epoch);
  s.steps_per_decay = steps_per_epoch;
  return s;
}

// n images drawn without replacement with a seeded permutation, kept in dataset order.
// Not "the first n": image folders are sorted by class, so a prefix would hold one class.
data::Dataset random_subset(const data::Dataset& ds, int64_t n, uint64_t seed) {
  if (n >= ds.size()) return ds;
  Generator g(seed ^ 0x5eedULL);
  std::vector<int64_t> idx = data::random_permutation(ds.size(), g);
  idx.resize(static_cast<size_t>(n));
  std::sort(idx.begin(), idx.end());
  return data::select(ds, idx, "random subset of " + std::to_string(n) + " (seed " + std::to_string(seed) + ")");
}

struct Data {
  data::Dataset train, test;
  std::string description;
};

Data load_data(const json& c) {
  const data::DataLocation loc = data::find_cifar10(c.at("data").get<std::string>());
  std::printf("data: %s\n", loc.description.c_str());
  Data d;
  data::Dataset train = data::load_cifar10(loc, data::Split::Train);
  data::Dataset test = data::load_cifar10(loc, data::Split::Test);
  const int64_t per_class = c.at("train_per_class"), n_train = c.at("train_images"), n_test = c.at("test_images");
  const uint64_t seed = c.at("seed");
  if (per_class > 0) d.train = data::balanced_subset(train, per_class, seed);
  else if (n_train > 0) d.train = random_subset(train, n_train, seed);
  else d.train = std::move(train);
  d.test = n_test > 0 ? random_subset(test, n_test, seed) : std::move(test);
  d.description = loc.description;
  std::printf("train images: %lld, test images: %lld\n\n", static_cast<long long>(d.train.size()),
              static_cast<long long>(d.test.size()));
  return d;
}

// One un-augmented, unshuffled pass over `ds` for the method's statistics passes (the
// training loader's own state, which resume depends on, is not touched).
quant::BatchSource train_batches(std::shared_ptr<const data::Dataset> ds, int64_t batch) {
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

struct EvalResult {
  double loss = 0, acc = 0;
  double mirror_acc = 0, disagree = 0;  // flip TTA only: the mirror view alone; views' predictions differ
};

// flip_tta: score each image by its flip-averaged probabilities (nn/tta.hpp) instead of
// its own logits; the loss is then -log of that probability at the label.
EvalResult evaluate(nn::Module& model, const data::Dataset& ds, int64_t batch, bool flip_tta = false) {
  data::LoaderOptions lo;
  lo.batch_size = batch;
  lo.shuffle = false;
  lo.augment = false;
  data::DataLoader loader(std::make_shared<const data::Dataset>(ds), lo);
  NoGradGuard no_grad;
  model.eval();
  data::Batch b;
  double loss = 0;
  int64_t correct = 0, seen = 0, mirror_correct = 0, disagree = 0;
  while (loader.next(b)) {
    Tensor<int64_t> pred;
    if (flip_tta) {
      const auto views = nn::flip_views_log_softmax(model, b.images);
      const Tensor<float> lp = nn::log_mean_probs(views.first, views.second);
      const int64_t classes = lp.shape()[1];
      for (int64_t i = 0; i < b.size(); ++i) loss -= lp.data()[i * classes + b.labels[static_cast<size_t>(i)]];
      pred = argmax(lp, 1);
      const Tensor<int64_t> p1 = argmax(views.first, 1), p2 = argmax(views.second, 1);
      for (int64_t i = 0; i < b.size(); ++i) {
        mirror_correct += p2.data()[i] == b.labels[static_cast<size_t>(i)];
        disagree += p1.data()[i] != p2.data()[i];
      }
    } else {
      Tensor<float> logits = model(b.images);
      loss += cross_entropy(logits, b.labels).item() * static_cast<double>(b.size());
      pred = argmax(logits, 1);
    }
    for (int64_t i = 0; i < b.size(); ++i) correct += pred.data()[i] == b.labels[static_cast<size_t>(i)];
    seen += b.size();
  }
  model.train();
  const double n = static_cast<double>(seen);
  return {loss / n, static_cast<double>(correct) / n, static_cast<double>(mirror_correct) / n,
          static_cast<double>(disagree) / n};
}

io::Checkpoint make_checkpoint(const json& cfg, const nn::Module& model, const optim::Optimizer& opt,
                               const data::DataLoader& loader, const json& run, const quant::MethodHooks& hooks) {
  io::Checkpoint ck;
  ck.meta = {{"format", "lowbit.train_cifar"}, {"config", cfg}, {"run", run}, {"loader", loader.state()},
             {"method_state", hooks.state()}};
  for (auto& [name, t] : model.state_dict()) ck.tensors.emplace("model/" + name, t);
  for (auto& [name, t] : opt.state()) ck.tensors.emplace("optim/" + name, t);
  return ck;
}

// The model's state dict from a checkpoint, checking it was written by this trainer.
nn::StateDict model_state(const io::Checkpoint& ck, const std::string& path) {
  LOWBIT_CHECK(ck.meta.value("format", "") == "lowbit.train_cifar", "checkpoint '", path,
               "' was not written by train_cifar");
  nn::StateDict sd;
  for (auto& [name, t] : ck.tensors)
    if (name.rfind("model/", 0) == 0) sd.emplace(name.substr(6), t);
  return sd;
}

// --init-from: progressive initialization (APoT Sec. 4.2, method-notes §1.6: each stage starts
// from the previous, higher-precision run, loaded with PyTorch's strict=False). Copies every
// parameter and buffer of the checkpoint whose name and shape match the model's. Name
// mapping: a quantized layer's latent weight "X.wq.latent" takes "X.weight" when the
// checkpoint has no "X.wq.latent" (an FP32 conv / linear of a higher-precision run), and an
// FP32 layer's "X.weight" takes "X.wq.latent" likewise. Everything else keeps its
// initialization: from an FP32 run the alphas keep their init values, from a quantized run
// they are carried over, as in the authors' code. Prints what was loaded, missing and extra.
json init_from(nn::Module& model, const io::Checkpoint& ck, const std::string& path) {
  const nn::StateDict src = model_state(ck, path);
  auto strip = [](const std::string& n, const std::string& suffix) {
    return n.size() > suffix.size() && n.compare(n.size() - suffix.size(), suffix.size(), suffix) == 0
               ? n.substr(0, n.size() - suffix.size())
               : std::string();
  };
  nn::StateDict take;
  std::set<std::string> used;
  std::vector<std::string> renamed, missing, mismatch;
  for (auto& [name, t] : model.state_dict()) {
    std::vector<std::string> cands{name};
    if (auto p = strip(name, ".wq.latent"); !p.empty()) cands.push_back(p + ".weight");
    if (auto p = strip(name, ".weight"); !p.empty()) cands.push_back(p + ".wq.latent");
    bool done = false;
    for (auto& cname : cands) {
      auto it = src.find(cname);
      if (it == src.end()) continue;
      if (it->second.shape() != t.shape()) {
        mismatch.push_back(name + " " + shape_str(t.shape()) + " vs " + cname + " " + shape_str(it->second.shape()));
        continue;
      }
      take.emplace(name, it->second);
      used.insert(cname);
      if (cname != name) renamed.push_back(cname + " -> " + name);
      done = true;
      break;
    }
    if (!done) missing.push_back(name + " " + shape_str(t.shape()));
  }
  std::vector<std::string> extra;
  for (auto& [name, t] : src)
    if (!used.count(name)) extra.push_back(name + " " + shape_str(t.shape()));
  model.load_state_dict(take, /*strict=*/false);
  auto list = [](const char* what, const std::vector<std::string>& v) {
    std::printf("  %s (%zu)%s\n", what, v.size(), v.empty() ? "" : ":");
    for (auto& s : v) std::printf("    %s\n", s.c_str());
  };
  std::printf("--init-from %s: loaded %zu of %zu model tensors\n", path.c_str(), take.size(), take.size() + missing.size());
  list("renamed", renamed);
  list("missing from the checkpoint, kept at their initial values", missing);
  list("shape mismatches, kept at their initial values", mismatch);
  list("extra in the checkpoint, unused", extra);
  std::printf("\n");
  return {{"path", path},       {"loaded", take.size()},         {"renamed", renamed.size()},
          {"missing", missing.size()}, {"mismatched", mismatch.size()}, {"extra", extra.size()}};
}

// Keeps the first n lines of a JSON-lines file (a resumed run drops what came after its
// checkpoint), written atomically.
void keep_lines(const fs::path& path, int64_t n) {
  std::vector<std::string> lines;
  {
    std::ifstream in(path);
    std::string line;
    while (static_cast<int64_t>(lines.size()) < n && std::getline(in, line)) lines.push_back(line);
  }
  const fs::path tmp = path.string() + ".tmp";
  {
    std::ofstream out(tmp, std::ios::trunc);
    for (auto& l : lines) out << l << '\n';
  }
  fs::rename(tmp, path);
}

void write_json_atomic(const fs::path& path, const json& j) {
  const fs::path tmp = path.string() + ".tmp";
  {
    std::ofstream out(tmp, std::ios::trunc);
    LOWBIT_CHECK(out.good(), "cannot write '", tmp.string(), "'");
    out << j.dump(2) << '\n';
  }
  fs::rename(tmp, path);
}

int64_t count_params(const nn::Module& m) {
  int64_t n = 0;
  for (auto& p : m.parameters()) n += p.numel();
  return n;
}

// A trained model and the config it was trained with (`sets` applied, e.g. --set data=DIR):
// from a checkpoint.bin (the training model) or a model.lbq (the exported quantized model,
// rebuilt as an inference model with frozen integer-code weights).
struct TrainedModel {
  std::shared_ptr<nn::Module> model;
  json cfg;
};
TrainedModel load_trained(const std::string& path, const std::vector<std::string>& sets) {
  const bool lbq = quant::is_quantized_file(path);
  io::Checkpoint ck;
  quant::QuantizedModelFile qf;
  if (lbq) {
    qf = quant::read_quantized(path);
    LOWBIT_CHECK(qf.meta.value("format", "") == "lowbit.train_cifar" && qf.meta.contains("config"),
                 "quantized model '", path, "' was not written by train_cifar");
  } else {
    ck = io::load_checkpoint(path);
  }
  const json& saved = lbq ? qf.meta.at("config") : ck.meta.at("config");
  json cfg = default_config();
  for (auto it = saved.begin(); it != saved.end(); ++it) io::set_checked(cfg, it.key(), it.value(), path);
  for (auto& s : sets) io::apply_override(cfg, s);
  validate(cfg);
  Generator gen(cfg.at("seed").get<uint64_t>());
  std::shared_ptr<nn::Module> model;
  if (lbq) {
    model = build_arch(cfg, quant::frozen_factory(quant_spec(cfg)), gen);
    quant::load_quantized_into(model, qf);
  } else {
    model = build_model(cfg, gen);
    model->load_state_dict(model_state(ck, path));
  }
  return {model, cfg};
}

// --eval: the test accuracy of a checkpoint.bin or model.lbq (load_trained); tta "flip" adds
// a second line, the same images scored with flip TTA.
int run_eval(const std::string& path, const std::vector<std::string>& sets, const std::string& tta) {
  const TrainedModel t = load_trained(path, sets);
  const json& cfg = t.cfg;
  nn::Module& model = *t.model;
  set_num_threads(cfg.at("threads").get<int>());
  const data::DataLocation loc = data::find_cifar10(cfg.at("data").get<std::string>());
  std::printf("data: %s\n", loc.description.c_str());
  data::Dataset test = data::load_cifar10(loc, data::Split::Test);
  const int64_t n_test = cfg.at("test_images");
  if (n_test > 0) test = random_subset(test, n_test, cfg.at("seed").get<uint64_t>());
  const EvalResult r = evaluate(model, test, cfg.at("batch").get<int64_t>());
  std::printf("%s: test accuracy %.2f%% (loss %.4f) on %lld images\n", path.c_str(), 100 * r.acc, r.loss,
              static_cast<long long>(test.size()));
  if (tta == "flip") {
    const EvalResult f = evaluate(model, test, cfg.at("batch").get<int64_t>(), true);
    std::printf("%s: test accuracy with flip TTA (softmax averaged over each image and its mirror) %.2f%% "
                "(loss %.4f) on %lld images; the mirrored images alone %.2f%%, the two views predict different "
                "classes for %.2f%%\n",
                path.c_str(), 100 * f.acc, f.loss, static_cast<long long>(test.size()), 100 * f.mirror_acc,
                100 * f.disagree);
  }
  return 0;
}

// stop_after: end this process after that many epochs (0 = run to the end), leaving a
// checkpoint exactly as an interrupted run would; the recipe (schedule length) is unchanged.
// OUT/weight_hist.json for the report (io/report.hpp): the normalized weights W~ of the
// first, a middle and the last APoT-quantized layer, with the levels alpha * {+-M} they are
// projected onto and the learned alpha (the picture of APoT Figs. 1-2). Other methods: none.
void write_weight_hist(const nn::Module& model, const fs::path& out) {
  std::vector<std::pair<std::string, const quant::ApotWeight*>> apot;
  for (auto& [name, m] : model.named_modules())
    if (auto* q = dynamic_cast<const quant::ApotWeight*>(m)) apot.emplace_back(name, q);
  if (apot.empty()) return;
  std::vector<size_t> pick{0, apot.size() / 2, apot.size() - 1};
  pick.erase(std::unique(pick.begin(), pick.end()), pick.end());
  NoGradGuard no_grad;
  json layers = json::array();
  for (size_t k : pick) {
    const Tensor<float> wt = apot[k].second->normalized();
    const double alpha = std::abs(apot[k].second->clip_alpha(wt).item());  // < 0 acts as |alpha|
    std::vector<double> values, levels;
    const int64_t stride = std::max<int64_t>(1, wt.numel() / 20000);  // keeps the page small
    for (int64_t i = 0; i < wt.numel(); i += stride) values.push_back(wt.data()[i]);
    for (double m : apot[k].second->magnitudes()) {
      levels.push_back(alpha * m);
      if (m > 0) levels.push_back(-alpha * m);
    }
    std::sort(levels.begin(), levels.end());
    layers.push_back({{"name", apot[k].first}, {"values", values}, {"levels", levels}, {"alpha", alpha},
                      {"xlabel", "normalized weight W~ (APoT Eq. 9)"}});
  }
  write_json_atomic(out / "weight_hist.json", json{{"layers", layers}});
}

int run_train(json cfg, const std::string& resume_dir, const std::vector<std::string>& sets, int64_t stop_after,
              const std::string& init_path) {
  io::Checkpoint resumed;
  if (!resume_dir.empty()) {
    const std::string path = (fs::path(resume_dir) / "checkpoint.bin").string();
    resumed = io::load_checkpoint(path);
    model_state(resumed, path);  // format check
    json saved = default_config();
    for (auto it = resumed.meta.at("config").begin(); it != resumed.meta.at("config").end(); ++it)
      io::set_checked(saved, it.key(), it.value(), path);
    // A resumed run keeps its recipe; only the length, the threads and the data folder may change.
    for (auto& s : sets) {
      const std::string key = s.substr(0, s.find('='));
      LOWBIT_CHECK(key == "epochs" || key == "threads" || key == "data", "--resume: '", key,
                   "' cannot change when resuming (allowed: epochs, threads, data)");
      io::apply_override(saved, s);
    }
    saved["out"] = resume_dir;
    cfg = saved;
  }
  validate(cfg);
  io::Checkpoint init_ck;  // read before anything is written, so a bad file changes nothing
  if (!init_path.empty()) model_state(init_ck = io::load_checkpoint(init_path), init_path);
  // Knowledge distillation's teacher (kd_teacher), also loaded before anything is written; it
  // stays in eval mode (running BN statistics) and is never trained.
  std::shared_ptr<nn::Module> teacher;
  if (const std::string kd = cfg.at("kd_teacher"); !kd.empty()) {
    try {
      teacher = load_trained(kd, {}).model;
    } catch (const std::exception& e) {
      lowbit::detail::fail("config key 'kd_teacher' = '", kd, "': ", e.what());
    }
    teacher->eval();
  }
  const double kd_alpha = cfg.at("kd_alpha"), kd_temperature = cfg.at("kd_temperature");
  const bool kd_flip = cfg.at("kd_teacher_tta") == "flip";
  const fs::path out = cfg.at("out").get<std::string>();
  if (resume_dir.empty())
    for (const char* f : {"checkpoint.bin", "metrics.jsonl", "summary.json"})
      LOWBIT_CHECK(!fs::exists(out / f), "output folder '", out.string(), "' already holds a run (", f,
                   "); pass --resume ", out.string(), " to continue it, or choose another --set out=DIR");
  set_num_threads(cfg.at("threads").get<int>());
  print_config(cfg);

  Data d = load_data(cfg);
  fs::create_directories(out);

  Generator gen(cfg.at("seed").get<uint64_t>());
  auto model = build_model(cfg, gen);
  model->train();
  json init_report;
  if (!init_path.empty()) init_report = init_from(*model, init_ck, init_path);
  const quant::QuantSpec spec = quant_spec(cfg);
  auto hooks = quant::make_hooks(spec);
  auto opt = build_optimizer(*model, cfg, *hooks);
  data::LoaderOptions lo;
  lo.batch_size = cfg.at("batch");
  lo.augment = cfg.at("augment");
  lo.augment_config.cutout = cfg.at("cutout");
  lo.seed = cfg.at("seed");
  const auto train_ds = std::make_shared<const data::Dataset>(std::move(d.train));
  data::DataLoader loader(train_ds, lo);
  const int64_t steps_per_epoch = loader.batches_per_epoch();
  const optim::Schedule sched = build_schedule(cfg, steps_per_epoch);
  const int64_t epochs = cfg.at("epochs"), batch = cfg.at("batch");
  const double label_smoothing = cfg.at("label_smoothing");

  json run = {{"epoch", 0}, {"step", 0}, {"best_test_acc", 0.0}, {"train_s", 0.0}, {"wall_s", 0.0}, {"train_images_seen", 0}};
  if (!init_path.empty()) run["init_from"] = init_report;  // kept in checkpoints, so a resumed run reports it
  if (!resume_dir.empty()) {
    model->load_state_dict(model_state(resumed, resume_dir));
    std::map<std::string, Tensor<float>> ost;
    for (auto& [name, t] : resumed.tensors)
      if (name.rfind("optim/", 0) == 0) ost.emplace(name.substr(6), t);
    opt->load_state(ost);
    loader.set_state(resumed.meta.at("loader").get<std::string>());
    run = resumed.meta.at("run");
    hooks->load_state(resumed.meta.value("method_state", json::object()));
    keep_lines(out / "metrics.jsonl", run.at("epoch").get<int64_t>());
    keep_lines(out / "steps.jsonl", run.at("step").get<int64_t>());
    std::printf("resuming %s after epoch %lld (step %lld)\n\n", out.string().c_str(),
                static_cast<long long>(run.at("epoch").get<int64_t>()), static_cast<long long>(run.at("step").get<int64_t>()));
  } else {
    std::ofstream(out / "metrics.jsonl", std::ios::trunc);
    std::ofstream(out / "steps.jsonl", std::ios::trunc);
  }
  std::ofstream metrics(out / "metrics.jsonl", std::ios::app), steps_log(out / "steps.jsonl", std::ios::app);
  std::printf("model %s: %lld parameters\n", cfg.at("model").get<std::string>().c_str(),
              static_cast<long long>(count_params(*model)));
  // Per-layer bits, storage and MACs; one eval-mode forward of a zero image, which changes
  // no state (bit-exact resume is unaffected).
  const quant::ModelSummary msum = quant::summary(*model);
  std::printf("%s\n", msum.table().c_str());

  const auto wall0 = std::chrono::steady_clock::now();
  const double wall_before = run.at("wall_s").get<double>();
  int64_t step = run.at("step");
  EvalResult last{};
  for (int64_t epoch = run.at("epoch").get<int64_t>(); epoch < epochs; ++epoch) {
    io::ProgressBar bar("epoch " + std::to_string(epoch + 1) + "/" + std::to_string(epochs), steps_per_epoch);
    const auto t0 = std::chrono::steady_clock::now();
    double loss_sum = 0;
    int64_t correct = 0, seen = 0, k = 0;
    double lr = sched.lr_at(step);
    data::Batch b;
    while (loader.next(b)) {
      const quant::StepContext ctx{step, sched.total_steps, steps_per_epoch, epoch};
      lr = sched.lr_at(step);
      opt->set_lr(lr);
      hooks->begin_step(*model, ctx);
      Tensor<float> logits = (*model)(b.images);
      Tensor<float> loss = cross_entropy(logits, b.labels, label_smoothing);
      if (teacher) {  // Hinton et al. 2015: the teacher's softened outputs on the same augmented batch
        Tensor<float> target;
        {
          NoGradGuard no_grad;
          // Flip-averaged: T log(mean of the two softened distributions) are logits whose
          // softmax at temperature T is that mean.
          target = kd_flip ? nn::flip_tta_log_probs(*teacher, b.images, kd_temperature) *
                                 static_cast<float>(kd_temperature)
                           : (*teacher)(b.images);
        }
        loss = loss * static_cast<float>(1 - kd_alpha) +
               distillation_loss(logits, target, kd_temperature) * static_cast<float>(kd_alpha);
      }
      const double lv = loss.item();
      // A diverged run stops here, before its NaN/inf gradients reach the weights; the
      // checkpoint of the last finished epoch stays as it was (APoT's Table 3 reports such a
      // run: RCF without WN).
      LOWBIT_CHECK(std::isfinite(lv), "the training loss is ", lv, " at epoch ", epoch + 1, ", step ", k + 1, " of ",
                   steps_per_epoch, ": the run diverged (try a lower lr); ",
                   epoch > 0 ? (out / "checkpoint.bin").string() + " still holds epoch " + std::to_string(epoch)
                             : std::string("no checkpoint was written"));
      loss.backward();
      opt->step();
      // Gradients are dropped (set_to_none, PyTorch >= 2.0's default) as soon as the step has
      // used them: none is alive during end_step (SLB's discrete pass) or the next forward,
      // and each next first gradient becomes .grad() without a copy or an add (same values).
      opt->zero_grad(/*set_to_none=*/true);
      hooks->end_step(*model, b.images, ctx);
      {
        NoGradGuard no_grad;
        Tensor<int64_t> pred = argmax(logits, 1);
        for (int64_t i = 0; i < b.size(); ++i) correct += pred.data()[i] == b.labels[static_cast<size_t>(i)];
      }
      loss_sum += lv * static_cast<double>(b.size());
      seen += b.size();
      char line[160];
      std::snprintf(line, sizeof line, "{\"epoch\": %lld, \"step\": %lld, \"loss\": %.9g, \"lr\": %.9g}",
                    static_cast<long long>(epoch + 1), static_cast<long long>(step), lv, lr);
      steps_log << line << '\n';
      ++step;
      bar.update(++k, loss_sum / static_cast<double>(seen), static_cast<double>(correct) / static_cast<double>(seen), seen);
    }
    steps_log.flush();
    const double train_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    const json method_log = hooks->end_epoch(*model, train_batches(train_ds, batch), epoch);
    last = evaluate(*model, d.test, batch);
    const double best = std::max(run.at("best_test_acc").get<double>(), last.acc);
    json m = {{"epoch", epoch + 1},
              {"train_loss", loss_sum / static_cast<double>(seen)},
              {"train_acc", static_cast<double>(correct) / static_cast<double>(seen)},
              {"test_loss", last.loss},
              {"test_acc", last.acc},
              {"lr", lr},
              {"epoch_s", train_s},
              {"images_per_s", static_cast<double>(seen) / train_s}};
    m.update(method_log);
    metrics << m.dump() << '\n';
    metrics.flush();
    std::printf("epoch %lld/%lld: test accuracy %.2f%% (loss %.4f), best %.2f%%\n", static_cast<long long>(epoch + 1),
                static_cast<long long>(epochs), 100 * last.acc, last.loss, 100 * best);
    run["epoch"] = epoch + 1;
    run["step"] = step;
    run["best_test_acc"] = best;
    run["final_test_acc"] = last.acc;
    run["train_s"] = run.at("train_s").get<double>() + train_s;
    run["train_images_seen"] = run.at("train_images_seen").get<int64_t>() + seen;
    run["wall_s"] = wall_before + std::chrono::duration<double>(std::chrono::steady_clock::now() - wall0).count();
    io::save_checkpoint((out / "checkpoint.bin").string(), make_checkpoint(cfg, *model, *opt, loader, run, *hooks));
    if (stop_after > 0 && epoch + 1 >= stop_after && epoch + 1 < epochs) {
      std::printf("stopping after epoch %lld as asked (--stop-after-epochs); continue with --resume %s\n",
                  static_cast<long long>(epoch + 1), out.string().c_str());
      return 0;
    }
  }

  const int64_t params = count_params(*model);
  // Bits can change during training (ALQ prunes), so the size is measured on the final model.
  const quant::ModelSummary fsum = quant::summary(*model);
  json summary = {{"model", cfg.at("model")},
                  {"method", cfg.at("method")},
                  {"w_bits", cfg.at("w_bits")},
                  {"a_bits", cfg.at("a_bits")},
                  {"train_images", loader.dataset().size()},
                  {"test_images", d.test.size()},
                  {"epochs", epochs},
                  {"final_test_acc", run.value("final_test_acc", 0.0)},
                  {"best_test_acc", run.at("best_test_acc")},
                  {"wall_s", run.at("wall_s")},
                  {"images_per_s", run.at("train_images_seen").get<double>() / std::max(1e-9, run.at("train_s").get<double>())},
                  {"params", params},
                  // The papers' accounting (quant/summary.hpp, docs/quantization.md): quantized
                  // weights at their bit width + their scales, 4 bytes for every other value
                  // (BN parameters and running statistics, biases, unquantized layers).
                  {"model_bytes", fsum.model_bytes},
                  {"fp32_bytes", fsum.fp32_bytes},
                  {"compression_ratio", fsum.compression_ratio},
                  {"avg_weight_bits", fsum.avg_weight_bits},
                  {"macs_per_image", fsum.macs},
                  {"layers", fsum.layers_json()},
                  {"fixops_per_image", fsum.fixops},          // APoT Table 1's cost (quant/summary.hpp)
                  {"fixops_uniform_per_image", fsum.fixops_uniform},
                  {"init_from", run.value("init_from", json(nullptr))},  // --init-from: path and counts
                  {"threads", max_threads()},
                  {"seed", cfg.at("seed")},
                  {"data", d.description},
                  {"config", cfg}};
  {
    // Weights-only storage, the papers' "Weights (CR)" column (quant/alq_report.hpp): FP32
    // weights at 4 bytes, quantized ones at their bits + scales, ALQ layers with active bases
    // + coordinates + the per-group bit-width table.
    const json ws = quant::alq::report(*model).to_json();
    summary["weight_storage"] = {{"avg_weight_bits", ws.at("avg_weight_bits")}, {"weight_bytes", ws.at("weight_bytes")},
                                 {"fp32_weight_bytes", ws.at("fp32_weight_bytes")},
                                 {"compression_ratio", ws.at("compression_ratio")}, {"model_bytes", ws.at("model_bytes")}};
  }
  if (cfg.at("method") == "alq") {
    // ALQ's accounting per layer and overall (quant/alq_report.hpp); model_bytes above
    // describes the export file, which stores I_max bits per weight.
    summary["alq"] = quant::alq::report(*model).to_json();
    std::printf("\nALQ: average weight bits %.4f, weights %lld bytes (compression %.2fx vs FP32)\n",
                summary["alq"]["avg_weight_bits"].get<double>(),
                static_cast<long long>(summary["alq"]["weight_bytes"].get<int64_t>()),
                summary["alq"]["compression_ratio"].get<double>());
  }
  if (cfg.at("method") != "fp32") {
    // The trained model as integer codes + scales + FP32 rest; --eval model.lbq rebuilds it.
    quant::export_quantized(*model, (out / "model.lbq").string(),
                            {{"format", "lowbit.train_cifar"}, {"config", cfg}, {"spec", quant_spec(cfg).to_json()}});
    summary["quantized_model"] = (out / "model.lbq").string();
  }
  write_json_atomic(out / "summary.json", summary);
  write_weight_hist(*model, out);
  const std::string report = io::write_report({out.string()}, out.string());
  std::printf("\nfinal test accuracy %.2f%% (best %.2f%%) in %.0f s; results in %s/ (summary.json, metrics.jsonl, checkpoint.bin)\n",
              100 * summary.at("final_test_acc").get<double>(), 100 * summary.at("best_test_acc").get<double>(),
              summary.at("wall_s").get<double>(), out.string().c_str());
  std::printf("report: %s\n", report.c_str());
  return 0;
}

const char* kUsage =
    "usage: train_cifar [--config FILE.json] [--set key=value]... [--resume OUT] [--eval CHECKPOINT [--tta flip]]\n"
    "  --config FILE   JSON object of config keys (see examples/configs/quickstart.json)\n"
    "  --set k=v       override one key (repeatable); unknown keys and wrong types are errors\n"
    "  --resume OUT    continue the run in folder OUT from its checkpoint.bin\n"
    "  --eval FILE     evaluate a checkpoint.bin or an exported model.lbq on the test set\n"
    "  --tta flip      with --eval: also report the accuracy with flip test-time augmentation\n"
    "  --stop-after-epochs K  stop after K epochs as if interrupted (resume later)\n"
    "  --init-from FILE  start from the matching parameters of another run's checkpoint.bin\n"
    "                  (progressive initialization; FP32 'X.weight' -> quantized 'X.wq.latent')\n"
    "  --print-config  print the default config as JSON and exit\n";

}  // namespace

int main(int argc, char** argv) {
  try {
    json cfg = default_config();
    std::string resume, eval, init_path, tta;
    int64_t stop_after = 0;
    std::vector<std::string> sets;
    for (int i = 1; i < argc; ++i) {
      const std::string a = argv[i];
      auto value = [&]() -> std::string {
        LOWBIT_CHECK(i + 1 < argc, "argument ", a, " needs a value");
        return argv[++i];
      };
      if (a == "--config") io::apply_config_file(cfg, value());
      else if (a == "--set") sets.push_back(value());
      else if (a == "--resume") resume = value();
      else if (a == "--eval") eval = value();
      else if (a == "--init-from") init_path = value();
      else if (a == "--tta") {
        tta = value();
        LOWBIT_CHECK(tta == "flip", "--tta expects 'flip' (the only test-time augmentation), got '", tta, "'");
      }
      else if (a == "--stop-after-epochs") {
        const std::string v = value();
        char* end = nullptr;
        stop_after = std::strtoll(v.c_str(), &end, 10);
        LOWBIT_CHECK(!v.empty() && *end == '\0' && stop_after > 0, "--stop-after-epochs expects a positive integer, got '", v, "'");
      }
      else if (a == "--print-config") {
        std::printf("%s\n", default_config().dump(2).c_str());
        return 0;
      } else if (a == "--help" || a == "-h") {
        std::printf("%s", kUsage);
        return 0;
      } else {
        detail::fail("unknown argument '", a, "'\n", kUsage);
      }
    }
    LOWBIT_CHECK(resume.empty() || eval.empty(), "--resume and --eval cannot be combined");
    LOWBIT_CHECK(init_path.empty() || (resume.empty() && eval.empty()),
                 "--init-from starts a new run: it cannot be combined with --resume or --eval");
    LOWBIT_CHECK(tta.empty() || !eval.empty(), "--tta applies to --eval only (training runs evaluate without TTA)");
    if (!eval.empty()) return run_eval(eval, sets, tta);
    if (resume.empty())
      for (auto& s : sets) io::apply_override(cfg, s);
    return run_train(cfg, resume, sets, stop_after, init_path);
  } catch (const lowbit::Error& e) {
    std::fprintf(stderr, "train_cifar: error: %s\n", e.what());
    return 2;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "train_cifar: error: %s\n", e.what());
    return 2;
  }
}
