// The configuration of a training run (train_cifar): the run's own keys (model, data,
// optimizer, schedule, ...) declared once in run_schema(), and the chosen method's options
// in a block under the method's name, declared by the method (quant/method.hpp):
//
//   {"method": "slb", "w_bits": 2, "a_bits": 2, "slb": {"schedule": "exp", "t_end": 10}}
//   --set slb.schedule=sin        (a dotted key sets one option of a block)
//
// resolve_config() checks everything a user wrote (unknown keys, wrong types, values out of
// range: one error naming the key, the value and what is valid) and completes it with the
// defaults. The resolved config holds every run key and only the chosen method's block:
// what --print-config shows, what a checkpoint stores, what --resume and --eval rebuild
// from. Blocks of other registered methods may appear in a file (so one file can switch
// methods with --set method=...); they are checked and dropped.
//
// Keys of lowbit before the method registry (flat "slb_schedule", "apot_wn", "a_quant", ...)
// are errors naming the new key; configs stored in older checkpoints are translated
// (migrate_flat_config) so old runs still evaluate and resume.
#pragma once
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "../core/error.hpp"
#include "../io/options.hpp"
#include "../quant/fp32/method.hpp"  // "fp32", the default method: no quantization
#include "../quant/registry.hpp"
#include "../quant/spec.hpp"

namespace lowbit {
namespace train {

using json = nlohmann::json;

// The run's own keys. The method's choices are the registered methods.
inline io::OptionSchema run_schema() {
  const double inf = io::OptionSchema::kInf;
  io::OptionSchema s;
  s.choice("model", "resnet20", {"resnet20", "resnet32", "resnet44", "resnet56", "vgg_small", "vgg_bc", "lenet5"},
           "resnet20/32/44/56 (CIFAR ResNets) | vgg_small | vgg_bc (ALQ's BinaryConnect VGG) | lenet5 (ALQ's 20-50-500-10)")
      .choice("dataset", "cifar10", {"cifar10", "cifar100", "mnist", "folder"},
              "cifar10 | cifar100 (binary version, fine labels) | mnist (IDX files) | folder (your images: "
              "data/train/<class>/*.png|jpg and data/test/<class>/...; needs --data)")
      .integer("image_size", 0, "folder: 0 = every image must have the first image's size; N = resize each to N x N (stb)",
               0, 4096)
      .integer("channels", 0, "folder: 0 = 1 if every image is grayscale, else 3; or 1 | 3 (converted)", 0, 3)
      .choice("normalize", "auto", {"auto", "dataset", "given", "none"},
              "per-channel normalization: auto (the published statistics of cifar10/cifar100/mnist; the training "
              "images' own for a folder) | dataset (the training images' own) | given (norm_mean, norm_std) | none (v/255)")
      .number_list("norm_mean", {}, "normalize = given: one mean per channel, on the [0, 1] scale", 0.0, 1.0)
      .number_list("norm_std", {}, "normalize = given: one std per channel", 0.0, inf, true)
      .integer("val_images", 0, "validation split: N training images held out (seeded) to choose the best epoch (0 = none)",
               0)
      .choice("shortcut", "A", {"A", "B"}, "ResNet shortcut: A (zero-padded identity) | B (1x1 conv + BN)")
      .choice("method", quant::kFullPrecision, quant::method_names(),
              "quantization method; its options live in a block of the same name (--help-config)")
      .integer("w_bits", 32, "weight bits of the quantized layers; 32 = full precision (the method says which it takes)",
               1, 32)
      .integer("a_bits", 32, "activation bits (layer inputs); 32 = full precision", 1, 32)
      .choice("first_layer", "default", {"default", "fp32", "8bit", "same"},
              "first conv: default (the method's choice) | fp32 | 8bit (weights only) | same (as the middle layers)")
      .choice("last_layer", "default", {"default", "fp32", "8bit", "same"}, "last linear layer: as first_layer")
      .integer("train_per_class", 500, "balanced training subset, images per class (0 = use train_images)", 0)
      .integer("train_images", 0, "N random training images when train_per_class = 0 (0 = all)", 0)
      .integer("test_images", 0, "N random test images (0 = the whole test set)", 0)
      .integer("epochs", 10, "training epochs", 1, 100000)
      .integer("batch", 128, "batch size", 1, 65536)
      .choice("optimizer", "sgd", {"sgd", "adam", "adamw"}, "sgd | adam | adamw")
      .number("lr", 0.1, "peak learning rate", 0.0, inf, true)
      .number("momentum", 0.9, "SGD momentum", 0.0)
      .boolean("nesterov", true, "SGD Nesterov momentum")
      .choice("schedule", "cosine", {"cosine", "multistep", "exp", "constant"}, "learning-rate schedule, per step")
      .number("warmup_epochs", 1.0, "linear warmup length, in epochs", 0.0, 100000)
      .int_list("milestones", {}, "multistep: epochs at which lr *= gamma", 0)
      .number("gamma", 0.1, "multistep / exp factor (exp: per epoch)", 0.0)
      .number("weight_decay", 5e-4, "on conv and linear weights only", 0.0)
      .number("label_smoothing", 0.0, "cross-entropy label smoothing", 0.0, 1.0)
      .text("init_from", "", "start from another run's weights: checkpoint.bin or model.lbq (\"\" = off; --init-from)")
      .text("kd_teacher", "", "knowledge distillation: a trained checkpoint.bin or model.lbq (\"\" = off)")
      .number("kd_alpha", 0.5, "loss = (1 - kd_alpha) cross-entropy + kd_alpha distillation", 0.0, 1.0)
      .number("kd_temperature", 4.0, "T of the softened distributions (Hinton et al. 2015)", 0.0, inf, true)
      .choice("kd_teacher_tta", "none", {"none", "flip"}, "flip: the teacher's outputs averaged over image and mirror")
      .boolean("augment", true, "random crop (crop_pad) + horizontal flip (flip)")
      .integer("crop_pad", 4, "augment: zero padding on each side before the random crop back to the image size", 0, 64)
      .choice("flip", "auto", {"auto", "on", "off"}, "augment: random horizontal flip; auto = on, off for mnist (digits)")
      .integer("cutout", 0, "Cutout square side in pixels after crop and flip (16 for CIFAR-10; 0 = off)", 0, 4096)
      .integer("seed", 0, "seed of initialization, subsets, shuffling and augmentation", 0, 9007199254740992.0)
      .integer("threads", 0, "OpenMP threads (0 = all cores; per process under mpirun)", 0, 1024)
      .boolean("sync_bn", false,
               "under mpirun -np N: batch-norm statistics of the whole batch, not of each process's shard "
               "(docs/distributed.md)")
      .text("out", "runs/quickstart", "output folder (--out)")
      .text("data", "", "data folder; empty = search (data/find.hpp; --data)");
  return s;
}

namespace detail {
// "slb_schedule" -> "slb.schedule" where that option exists; "a_quant" -> the methods that
// have it. Empty when the key was never a method key.
inline std::string moved_key_hint(const std::string& key) {
  std::string hint;
  for (auto& name : quant::method_names()) {
    const io::OptionSchema s = quant::find_method(name).options();
    const std::string prefix = name + "_";
    if (key.rfind(prefix, 0) == 0 && s.find(key.substr(prefix.size())))
      return "'" + name + "." + key.substr(prefix.size()) + "'";
    // "<method>_<run key>" once set a run key for that method alone (a method's own first_layer).
    if (key.rfind(prefix, 0) == 0 && run_schema().find(key.substr(prefix.size())))
      return "'" + key.substr(prefix.size()) + "'";
    if (key == prefix + "init") return "'init_from' (--init-from FILE)";
    if (s.find(key)) hint += (hint.empty() ? "'" : " or '") + name + "." + key + "'";
  }
  return hint;
}

// Merges `src` into `dst`: run keys replace, method blocks merge option by option.
inline void merge(json& dst, const json& src) {
  for (auto it = src.begin(); it != src.end(); ++it) {
    if (it.value().is_object() && dst.contains(it.key()) && dst.at(it.key()).is_object())
      for (auto o = it.value().begin(); o != it.value().end(); ++o) dst[it.key()][o.key()] = o.value();
    else
      dst[it.key()] = it.value();
  }
}
}  // namespace detail

inline json resolve_config(const json& given, bool cross_checks = true);
inline json resolve_with_methods(const json& given, const io::OptionSchema& schema);

// A config file (a JSON object) merged into `given`.
// `schema`: another trainer's keys (nullptr: train_cifar's).
inline void apply_config_file(json& given, const std::string& path, const io::OptionSchema* schema = nullptr) {
  LOWBIT_CHECK(std::filesystem::is_regular_file(path), "--config: '", path, "' is not a regular file");
  std::ifstream f(path, std::ios::binary);
  LOWBIT_CHECK(f.good(), "--config: cannot open '", path, "'");
  std::string text;
  char buf[65536];
  while (f.read(buf, sizeof buf) || f.gcount() > 0) {
    text.append(buf, static_cast<size_t>(f.gcount()));
    LOWBIT_CHECK(text.size() <= (1u << 20), "--config: '", path, "' is larger than a config's limit of 1 MiB");
  }
  const json j = io::parse_config_text(text, "--config: '" + path + "'");
  LOWBIT_CHECK(j.is_object(), "--config: '", path, "' must hold a JSON object, got ", io::json_type_name(j));
  try {  // each file's keys and values checked on their own, so an error names the file
    if (schema) resolve_with_methods(j, *schema);
    else resolve_config(j, /*cross_checks=*/false);
  } catch (const std::exception& e) {
    lowbit::detail::fail("--config: '", path, "': ", e.what());
  }
  detail::merge(given, j);
}

// "key=value" or "block.key=value" merged into `given`. The value is parsed as JSON when it
// parses (numbers, true/false, [1,2]) and taken as text otherwise, so --set model=resnet20
// needs no quotes; a string option given a number-looking value (out=2024) stays text.
inline void apply_override(json& given, const std::string& kv, const io::OptionSchema* run_keys = nullptr) {
  const auto eq = kv.find('=');
  LOWBIT_CHECK(eq != std::string::npos && eq > 0, "--set: expected key=value, got '", kv, "'");
  const std::string key = kv.substr(0, eq), text = kv.substr(eq + 1);
  const auto dot = key.find('.');
  const std::string block = dot == std::string::npos ? "" : key.substr(0, dot);
  const std::string name = dot == std::string::npos ? key : key.substr(dot + 1);
  LOWBIT_CHECK(block.empty() || (!name.empty() && name.find('.') == std::string::npos), "--set ", kv,
               ": expected key=value or method.key=value");
  LOWBIT_CHECK(block.empty() || quant::has_method(block), "--set ", kv, ": '", block,
               "' is not a method (expected one of ", quant::method_list(), ")");
  LOWBIT_CHECK(block.empty() || !given.contains(block) || given.at(block).is_object(), "--set ", kv, ": config key '",
               block, "' is ", given.contains(block) ? given.at(block).dump() : "", ", not an object of options");
  LOWBIT_CHECK(text.size() <= 4096, "--set ", key, ": value longer than 4096 characters");
  json value;
  try {
    value = io::parse_config_text(text, "--set " + key);
  } catch (const std::exception&) {
    value = text;  // not JSON: a plain string
  }
  const io::OptionSchema schema =
      !block.empty() ? quant::find_method(block).options() : run_keys ? *run_keys : run_schema();
  if (const io::OptionSpec* spec = schema.find(name); spec && spec->type == io::OptionType::String) value = text;
  if (block.empty()) given[name] = value;
  else given[block][name] = value;
}

// The keys of `given` that `schema` declares, resolved, plus the chosen method's block and
// the method's default first/last-layer policies: what every trainer's config shares
// (train_cifar's run_schema(), examples/train_sr.cpp's own). Throws naming the key.
inline json resolve_with_methods(const json& given, const io::OptionSchema& schema) {
  LOWBIT_CHECK(given.is_object(), "the config must be a JSON object, got ", given.dump());
  json top = json::object();
  for (auto it = given.begin(); it != given.end(); ++it) {
    const std::string& k = it.key();
    if (schema.find(k) || quant::has_method(k)) {
      if (schema.find(k)) top[k] = it.value();
      continue;
    }
    const std::string hint = detail::moved_key_hint(k);
    LOWBIT_CHECK(hint.empty(), "config key '", k, "' is now ", hint,
                 ": a method's options live in a block named after it ({\"<method>\": {\"<option>\": ...}} or "
                 "--set <method>.<option>=...; --help-config lists them)");
    lowbit::detail::fail("unknown config key '", k, "' (valid keys: ", schema.keys(), ", and a block per method: ",
                         quant::method_list(), ")");
  }
  json cfg = schema.resolve(top, "");
  const std::string method = cfg.at("method");
  for (auto& name : quant::method_names()) {
    const json block = given.contains(name) ? given.at(name) : json::object();
    LOWBIT_CHECK(block.is_object(), "config key '", name, "' must be an object of ", name, "'s options, got ",
                 block.dump());
    const json resolved = quant::find_method(name).options().resolve(block, name);
    if (name == method && !resolved.empty()) cfg[name] = resolved;
  }
  const quant::Method& m = quant::find_method(method);
  for (const char* k : {"first_layer", "last_layer"})
    if (cfg.at(k) == "default")
      cfg[k] = quant::policy_name(m.default_policy(std::string(k) == "first_layer" ? nn::LayerRole::First
                                                                                    : nn::LayerRole::Last));
  return cfg;
}

// The resolved config of `given` (see the file comment). Throws naming the key.
// cross_checks = false skips the checks between keys (one config file of several alone).
inline json resolve_config(const json& given, bool cross_checks) {
  json cfg = resolve_with_methods(given, run_schema());
  if (!cross_checks) return cfg;
  LOWBIT_CHECK(cfg.at("cutout").get<int>() == 0 || cfg.at("augment").get<bool>(), "config key 'cutout' = ",
               cfg.at("cutout").dump(), " needs 'augment' = true (Cutout is part of the training augmentation)");
  LOWBIT_CHECK(!cfg.at("out").get<std::string>().empty(), "config key 'out' must name a folder");
  const std::string ds = cfg.at("dataset");
  for (const char* k : {"image_size", "channels"})
    LOWBIT_CHECK(ds == "folder" || cfg.at(k).get<int64_t>() == 0, "config key '", k, "' = ", cfg.at(k).dump(),
                 " applies to dataset 'folder' only (", ds, " has a fixed image shape)");
  LOWBIT_CHECK(cfg.at("channels").get<int64_t>() != 2, "config key 'channels' = 2: expected 0 (auto), 1 or 3");
  LOWBIT_CHECK(ds != "folder" || !cfg.at("data").get<std::string>().empty(),
               "config key 'dataset' = \"folder\" needs 'data' (--data DIR) naming a folder with train/<class>/ and test/<class>/");
  const bool given_norm = cfg.at("normalize") == "given";
  LOWBIT_CHECK(given_norm == !cfg.at("norm_mean").empty() && given_norm == !cfg.at("norm_std").empty(), "config keys 'norm_mean' = ",
               cfg.at("norm_mean").dump(), " and 'norm_std' = ", cfg.at("norm_std").dump(), " go with 'normalize' = \"given\" (now ",
               cfg.at("normalize").dump(), "): one value per image channel in each");
  LOWBIT_CHECK(cfg.at("norm_mean").size() == cfg.at("norm_std").size(), "config keys 'norm_mean' (",
               cfg.at("norm_mean").size(), " values) and 'norm_std' (", cfg.at("norm_std").size(),
               " values) must have one value per channel each");
  return cfg;
}

// The quantization spec of a resolved config: the middle layers get method / w_bits /
// a_bits, the first conv and the last linear layer first_layer / last_layer.
inline quant::QuantSpec quant_spec(const json& cfg) {
  quant::QuantSpec s;
  s.method = cfg.at("method");
  s.w_bits = cfg.at("w_bits");
  s.a_bits = cfg.at("a_bits");
  s.first = quant::parse_policy(cfg.at("first_layer"), "config key 'first_layer'");
  s.last = quant::parse_policy(cfg.at("last_layer"), "config key 'last_layer'");
  s.options = cfg.contains(s.method) ? cfg.at(s.method) : json::object();
  return s;
}

// Everything about a resolved config that needs the method: its bits, its run length.
inline void check_config(const json& cfg) {
  const quant::QuantSpec s = quant::resolve(quant_spec(cfg));
  quant::find_method(s.method).check_epochs(s, cfg.at("epochs").get<int64_t>());
}

// A config as a checkpoint of lowbit before the method registry stored it (flat method keys)
// in today's form: "<method>_<key>" moves into the method's block (or replaces the run key
// <key>, as ALQ's alq_first_layer did), a key of the chosen method's schema moves into its
// block (a_quant, pact_alpha), keys of other methods and retired keys are dropped. A config
// that is already nested passes unchanged.
inline json migrate_flat_config(const json& saved) {
  if (!saved.is_object() || !saved.contains("method") || !saved.at("method").is_string()) return saved;
  const std::string method = saved.at("method");
  if (!quant::has_method(method)) return saved;
  const io::OptionSchema schema = run_schema(), options = quant::find_method(method).options();
  json out = json::object(), overrides = json::object();
  for (auto it = saved.begin(); it != saved.end(); ++it) {
    const std::string& k = it.key();
    const std::string own = method + "_";
    if (quant::has_method(k) && it.value().is_object()) {
      if (k == method) out[k] = it.value();
    } else if (k.rfind(own, 0) == 0 && options.find(k.substr(own.size()))) {
      out[method][k.substr(own.size())] = it.value();
    } else if (k.rfind(own, 0) == 0 && schema.find(k.substr(own.size()))) {
      overrides[k.substr(own.size())] = it.value();
    } else if (schema.find(k)) {
      out[k] = it.value();
    } else if (options.find(k)) {
      out[method][k] = it.value();
    }
  }
  for (auto it = overrides.begin(); it != overrides.end(); ++it) out[it.key()] = it.value();
  return out;
}

// --print-config: one "key  value" line per key, a block's options as "method.key".
inline std::string config_table(const json& cfg) {
  std::string t;
  auto line = [&t](const std::string& k, const json& v) {
    char buf[64];
    std::snprintf(buf, sizeof buf, "%-24s ", k.c_str());
    t += buf + v.dump() + "\n";
  };
  for (auto it = cfg.begin(); it != cfg.end(); ++it) {
    if (it.value().is_object())
      for (auto o = it.value().begin(); o != it.value().end(); ++o) line(it.key() + "." + o.key(), o.value());
    else
      line(it.key(), it.value());
  }
  return t;
}

// --help-config: every run key and every option of every registered method, with type,
// default, valid values and doc.
// `run_keys`: another trainer's own keys (nullptr: train_cifar's).
inline std::string config_help(const io::OptionSchema* run_keys = nullptr) {
  std::string t;
  auto section = [&t](const std::string& title, const std::string& prefix, const io::OptionSchema& s) {
    t += title + "\n";
    for (auto& o : s.specs()) {
      const std::string r = o.range();
      t += "  " + (prefix.empty() ? "" : prefix + ".") + o.key + " (" + io::option_type_name(o.type) +
           ", default " + o.def.dump() + (r.empty() ? "" : "; " + r) + ")\n      " + o.doc + "\n";
    }
    t += "\n";
  };
  section("run keys", "", run_keys ? *run_keys : run_schema());
  for (auto& name : quant::method_names()) {
    const quant::Method& m = quant::find_method(name);
    const io::OptionSchema s = m.options();
    if (s.empty()) t += "method " + name + ": " + m.doc() + " (no options)\n\n";
    else section("method " + name + ": " + m.doc() + " (block \"" + name + "\")", name, s);
  }
  return t;
}

}  // namespace train
}  // namespace lowbit
