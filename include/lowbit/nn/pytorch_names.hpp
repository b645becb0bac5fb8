// PyTorch names for lowbit's models: the state-dict names of the common PyTorch definitions
// of the same networks, so that weights move between the two (docs/pytorch.md has the table
// and the PyTorch definitions, tests/pytorch_models.py the code the tests run):
//
//   resnet20/32/44/56  the CIFAR ResNet of akamaster/pytorch_resnet_cifar10 (option A: a
//                      parameter-free shortcut; option B: shortcut.0 conv 1x1 + shortcut.1 BN):
//                      lowbit's own names, except its classifier "fc", which PyTorch calls
//                      "linear". Read: "fc" is accepted too (APoT's code and torchvision call
//                      it so), and "downsample" for "shortcut" (torchvision's word).
//   vgg_small          VGG-Small as IR-Net's and RBNN's PyTorch code defines it (the LQ-Nets
//                      network): conv0..conv5, bn0..bn5, fc.
//   lenet5             conv1, conv2, fc1, fc2 (the ALQ authors' lenet5.py).
//   vgg_bc             no common PyTorch definition: lowbit's names are kept.
//
// Only names differ: shapes and layouts are PyTorch's already (conv weights OIHW, linear
// weights [out, in], BN weight/bias/running_mean/running_var). PyTorch's BatchNorm also keeps
// num_batches_tracked, which lowbit does not use (train/state_file.hpp writes and skips it).
#pragma once
#include <string>
#include <utility>
#include <vector>

namespace lowbit {
namespace nn {

// One renamed module: lowbit's path and PyTorch's, each a dotted prefix of tensor names.
struct NameRule {
  std::string lowbit, pytorch;
};

// The renames of `model` (a config's "model" value), lowbit -> PyTorch. Names under no rule
// are the same in both.
inline std::vector<NameRule> pytorch_name_rules(const std::string& model) {
  if (model.rfind("resnet", 0) == 0) return {{"fc", "linear"}};
  if (model == "vgg_small")  // lowbit's features Sequential: conv, BN, conv, pool, BN, ... (nn/vgg.hpp)
    return {{"features.0", "conv0"},  {"features.1", "bn0"},  {"features.2", "conv1"}, {"features.4", "bn1"},
            {"features.5", "conv2"},  {"features.6", "bn2"},  {"features.7", "conv3"}, {"features.9", "bn3"},
            {"features.10", "conv4"}, {"features.11", "bn4"}, {"features.12", "conv5"}, {"features.14", "bn5"}};
  if (model == "lenet5")  // features: conv, pool, ReLU, conv, ...; classifier: fc, ReLU, fc (nn/lenet.hpp)
    return {{"features.0", "conv1"}, {"features.3", "conv2"}, {"classifier.0", "fc1"}, {"classifier.2", "fc2"}};
  return {};
}

// Other PyTorch spellings accepted when reading, as {accepted, PyTorch name of the table}: a
// prefix rule when `accepted` has no leading dot, a path component anywhere when it has one.
inline std::vector<NameRule> pytorch_name_aliases(const std::string& model) {
  if (model.rfind("resnet", 0) == 0) return {{"fc", "linear"}, {".downsample", ".shortcut"}};
  return {};
}

namespace detail {
// `name` with the dotted prefix `from` replaced by `to`; false when `from` is not a prefix.
inline bool replace_prefix(std::string& name, const std::string& from, const std::string& to) {
  if (name.compare(0, from.size(), from) != 0 || (name.size() > from.size() && name[from.size()] != '.')) return false;
  name = to + name.substr(from.size());
  return true;
}
}  // namespace detail

// lowbit's tensor name -> PyTorch's ("fc.weight" -> "linear.weight" for a ResNet).
inline std::string to_pytorch_name(const std::string& model, std::string name) {
  for (const NameRule& r : pytorch_name_rules(model))
    if (detail::replace_prefix(name, r.lowbit, r.pytorch)) break;
  return name;
}

// PyTorch's tensor name, or an accepted alias of it -> lowbit's.
inline std::string from_pytorch_name(const std::string& model, std::string name) {
  for (const NameRule& a : pytorch_name_aliases(model)) {
    if (a.lowbit[0] != '.') {
      detail::replace_prefix(name, a.lowbit, a.pytorch);
      continue;
    }
    const std::string from = a.lowbit + ".", to = a.pytorch + ".";  // a whole component
    for (size_t at = name.find(from); at != std::string::npos; at = name.find(from, at + to.size()))
      name.replace(at, from.size(), to);
  }
  for (const NameRule& r : pytorch_name_rules(model))
    if (detail::replace_prefix(name, r.pytorch, r.lowbit)) break;
  return name;
}

}  // namespace nn
}  // namespace lowbit
