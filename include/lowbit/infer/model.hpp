// An exported model (model.lbq, quant/export.hpp) built for inference with low-bit kernels
// (issue 31; docs/inference.md): the architecture its stored config names, with every
// quantized convolution an InferConv2d (infer/conv.hpp) that holds its weight as packed codes
// and runs the binary, integer or float kernel its bit widths allow. Everything else (the
// FP32 first/last layers, batch-norm with running statistics, pooling, residual adds, a
// quantized linear layer) runs as in the fake-quantized evaluation (train/model.hpp's
// load_trained), so the two differ only where a kernel sums differently (infer/conv.hpp).
//
//   infer::Model m = infer::load_model("runs/x/model.lbq");
//   m.model->eval();  Tensorf logits = m.predict(images);   // normalized NCHW floats
//
// The program needs no training code: no optimizer, loop or method hooks run; the method's
// activation quantizer is built from the registry because the layer's input is quantized by
// it. The built-in methods register themselves through this header; a method of your own
// registers itself in your translation unit (docs/quantization.md, "Adding a method").
#pragma once
#include <algorithm>
#include <filesystem>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "../autograd/grad_mode.hpp"
#include "../quant/factory.hpp"
#include "../quant/quant.hpp"  // every built-in method registered: a file names its method
#include "../train/model.hpp"
#include "binary_chain.hpp"
#include "conv.hpp"

namespace lowbit {
namespace infer {

// The frozen_factory's layers (quant/factory.hpp), with each convolution whose weight is
// quantized built as an InferConv2d; a layer whose weight is FP32 (the first and last by the
// papers' policies) stays as trained.
inline nn::LayerFactory infer_factory(const quant::QuantSpec& given) {
  const quant::QuantSpec spec = quant::resolve(given);
  const std::shared_ptr<const quant::Method> method = quant::find_method_ptr(spec.method);
  nn::LayerFactory f = quant::frozen_factory(spec);
  const auto frozen_conv = f.conv;
  f.conv = [spec, method, frozen_conv](const nn::ConvSpec& s, Generator& g) -> std::shared_ptr<nn::Module> {
    const quant::QuantSpec::Bits b = spec.bits_for(s.role);
    if (b.w == 32) return frozen_conv(s, g);
    return std::make_shared<InferConv2d>(s, b.w, b.a == 32 ? nullptr : method->make_activation(b.a, s.role, spec));
  };
  return f;
}

// One quantized layer of a loaded model: what it runs and why.
struct LayerPlan {
  std::string name;
  ConvKernel kernel = ConvKernel::None;
  std::string reason;
  int w_bits = 32, a_bits = 32;
  int64_t weights = 0, weight_bytes = 0;  // weights in the layer; bytes its kernel holds
  nlohmann::json to_json() const {
    return {{"name", name}, {"kernel", conv_kernel_name(kernel)}, {"reason", reason},
            {"w_bits", w_bits}, {"a_bits", a_bits}, {"weights", weights}, {"weight_bytes", weight_bytes}};
  }
};

namespace detail {
// The InferConv2d layers and the other quantized layers (QLinear, whose weight is a
// FrozenWeight "<layer>.wq") of a model, by name.
inline void collect(const std::shared_ptr<nn::Module>& m, const std::string& prefix,
                    std::vector<std::pair<std::string, std::shared_ptr<InferConv2d>>>& convs,
                    std::vector<std::pair<std::string, std::shared_ptr<quant::QuantLayer>>>& frozen) {
  if (auto c = std::dynamic_pointer_cast<InferConv2d>(m)) convs.emplace_back(prefix, c);
  if (auto q = std::dynamic_pointer_cast<quant::QuantLayer>(m); q && q->wq->quantized()) frozen.emplace_back(prefix, q);
  for (auto& [n, c] : m->children()) collect(c, prefix.empty() ? n : prefix + "." + n, convs, frozen);
}
}  // namespace detail

// Fills a model built with infer_factory(spec) from the export: each InferConv2d "<layer>"
// packs the codes of "<layer>.wq", each other quantized layer (a linear one) gets its codes
// in its FrozenWeight, every FP32 tensor its values. Names must match one to one (errors list
// them). Returns the plan: every quantized layer, what it runs and why.
inline std::vector<LayerPlan> load_infer_into(const std::shared_ptr<nn::Module>& model,
                                              const quant::QuantizedModelFile& f) {
  std::vector<std::pair<std::string, std::shared_ptr<InferConv2d>>> convs;
  std::vector<std::pair<std::string, std::shared_ptr<quant::QuantLayer>>> frozen;
  detail::collect(model, "", convs, frozen);
  std::vector<std::string> expected;
  for (auto& kv : convs) expected.push_back(kv.first + ".wq");
  for (auto& kv : frozen) expected.push_back(kv.first + ".wq");
  std::string problems;
  for (auto& name : expected)
    if (!f.weights.count(name)) problems += "\n  missing quantized weight: " + name;
  for (auto& kv : f.weights)
    if (std::find(expected.begin(), expected.end(), kv.first) == expected.end())
      problems += "\n  unexpected quantized weight: " + kv.first + " " + shape_str(kv.second.shape);
  LOWBIT_CHECK(problems.empty(), "load_infer_into: ", model->type_name(),
               " does not match the quantized model file (another architecture or spec?):", problems);
  std::vector<LayerPlan> plan;
  const auto scratch = std::make_shared<BinaryScratch>();  // one for the model's binary layers
  for (auto& [name, c] : convs) {
    c->share_scratch(scratch);
    c->set_codes(f.weights.at(name + ".wq"), "load_infer_into: '" + name + ".wq'");
    plan.push_back({name, c->kernel(), c->reason(), f.weights.at(name + ".wq").bits,
                    c->aq ? c->aq->bits() : 32, f.weights.at(name + ".wq").numel(), c->weight_bytes()});
  }
  for (auto& [name, q] : frozen) {
    auto fw = std::dynamic_pointer_cast<quant::FrozenWeight>(q->wq);
    LOWBIT_CHECK(fw != nullptr, "load_infer_into: '", name, "' was not built with frozen_factory");
    const quant::QuantCodes& c = f.weights.at(name + ".wq");
    fw->set_codes(c, "load_infer_into: '" + name + ".wq'");
    plan.push_back({name, ConvKernel::Float, "float: a linear layer runs the FP32 product of its dequantized codes",
                    c.bits, q->activation_bits(), c.numel(), c.numel() * 4});
  }
  model->load_state_dict(f.tensors, /*strict=*/true);
  return plan;
}

// A loaded inference model and what it was trained on.
struct Model {
  std::shared_ptr<nn::Module> model;  // in eval mode
  nlohmann::json cfg;                  // the training config stored in the file
  train::DataInfo data;                // input shape, classes, normalization
  std::vector<LayerPlan> layers;       // the quantized layers: convolutions, then linear ones
  uint64_t file_bytes = 0;

  // Logits [N, classes] of normalized NCHW images [N, C, H, W] of the trained shape.
  Tensorf predict(const Tensorf& images) const {
    LOWBIT_CHECK(images.dim() == 4 && images.shape()[1] == data.channels && images.shape()[2] == data.height &&
                     images.shape()[3] == data.width,
                 "infer::Model::predict: images ", shape_str(images.shape()), ", the model takes [N, ", data.channels,
                 ", ", data.height, ", ", data.width, "] (", data.text(), ")");
    NoGradGuard no_grad;
    return (*model)(images);
  }
};

// How load_model builds the model. fuse: runs of binary layers become one BinaryChain
// (infer/binary_chain.hpp; the same outputs, bit for bit); off, every layer runs alone.
struct LoadOptions {
  bool fuse = true;
};

// Reads an exported model.lbq (train_cifar's, with its config in the meta) and builds it for
// inference. `sets`: --set overrides of the stored config (e.g. data=DIR for the test set).
// Any other trained-model file (an FP32 run's checkpoint.bin or model.safetensors) loads as
// it is evaluated, with no quantized layer: the FP32 baseline of the same program.
inline Model load_model(const std::string& path, const std::vector<std::string>& sets = {},
                        const LoadOptions& opt = LoadOptions()) {
  if (train::model_file_kind(path) != train::ModelFileKind::quantized) {
    const train::TrainedModel t = train::load_trained(path, sets);
    t.model->eval();
    std::error_code ec;
    return {t.model, t.cfg, t.data, {}, static_cast<uint64_t>(std::filesystem::file_size(path, ec))};
  }
  const train::ExportedModel e = train::read_exported(path, sets);
  Generator gen(e.cfg.at("seed").get<uint64_t>());
  Model m;
  m.model = train::build_arch(e.cfg, infer_factory(train::quant_spec(e.cfg)), gen, e.data);
  try {
    m.layers = load_infer_into(m.model, e.file);
  } catch (const Error& err) {
    lowbit::detail::fail("'", path, "': ", err.what());
  }
  m.model->eval();
  if (opt.fuse) {
    const std::vector<std::string> fused = fuse_binary_chains(m.model);
    for (LayerPlan& l : m.layers)
      if (std::find(fused.begin(), fused.end(), l.name) != fused.end())
        l.reason += "; fused with the next binary layer (its batch-norm and 1-bit activation as integer thresholds)";
  }
  m.cfg = e.cfg, m.data = e.data;
  m.file_bytes = e.file.header_bytes + e.file.data_bytes;
  return m;
}

}  // namespace infer
}  // namespace lowbit
