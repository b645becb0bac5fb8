// The quantization framework on whole models: spec -> LayerFactory (first/last policies),
// summary() against hand counts, and export -> load -> bit-identical eval outputs.
#include <catch2/catch.hpp>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <unistd.h>
#include <lowbit/lowbit.hpp>

using namespace lowbit;
using namespace lowbit::quant;
namespace fs = std::filesystem;

namespace {
QuantSpec ste_spec(int w, int a, LayerPolicy first = LayerPolicy::FP32, LayerPolicy last = LayerPolicy::FP32,
              const std::string& a_quant = "dorefa") {
  QuantSpec s;
  s.method = "ste";
  s.w_bits = w;
  s.a_bits = a;
  s.first = first;
  s.last = last;
  s.options = {{"a_quant", a_quant}};
  return s;
}
const nn::Module* find(const nn::Module& m, const std::string& name) {
  for (auto& [n, p] : m.named_modules())
    if (n == name) return p;
  FAIL("no module " << name);
  return nullptr;
}
// "FP32", or "Q<w>/<a>" with the quantizer names, for one layer.
std::string kind(const nn::Module& m, const std::string& name) {
  const nn::Module* p = find(m, name);
  if (dynamic_cast<const nn::Conv2d*>(p) || dynamic_cast<const nn::Linear*>(p)) return "FP32";
  auto* q = dynamic_cast<const QuantLayer*>(p);
  REQUIRE(q != nullptr);
  return q->wq->type_name() + std::to_string(q->weight_bits()) + "/" + (q->aq ? q->aq->type_name() : "-") +
         std::to_string(q->activation_bits());
}
fs::path temp_file(const std::string& stem) {
  return fs::temp_directory_path() / (stem + "_" + std::to_string(::getpid()) + ".lbq");
}
// A small net built through the factory with all three roles: conv(First) -> BN+ReLU ->
// conv(Middle, s2) -> BN+ReLU -> conv(Middle, s2, bias) -> BN+ReLU -> GAP -> linear(Last).
struct TinyNet : nn::Module {
  TinyNet(const nn::LayerFactory& f, Generator& g) {
    c1 = register_module("c1", f.conv({3, 4, 3, 1, 1, false, nn::LayerRole::First}, g));
    b1 = register_module("b1", std::make_shared<nn::BatchNorm>(4, true, true));
    c2 = register_module("c2", f.conv({4, 8, 3, 2, 1, false, nn::LayerRole::Middle}, g));
    b2 = register_module("b2", std::make_shared<nn::BatchNorm>(8, true, true));
    c3 = register_module("c3", f.conv({8, 8, 3, 2, 1, true, nn::LayerRole::Middle}, g));
    b3 = register_module("b3", std::make_shared<nn::BatchNorm>(8, true, true));
    fc = register_module("fc", f.linear({8, 10, true, nn::LayerRole::Last}, g));
  }
  nn::Tensorf forward(const nn::Tensorf& x) override {
    auto h = (*b1)((*c1)(x));
    h = (*b2)((*c2)(h));
    h = (*b3)((*c3)(h));
    return (*fc)(global_avg_pool2d(h));
  }
  std::string type_name() const override { return "TinyNet"; }
  std::shared_ptr<nn::Module> c1, c2, c3, fc, b1, b2, b3;
};
}  // namespace

TEST_CASE("spec: first/last policies give FP32, 8-bit or same layers", "[quant][spec]") {
  Generator g(1);
  auto r = nn::resnet20(g, nn::Shortcut::A, make_factory(ste_spec(2, 2)));
  CHECK(kind(*r, "conv1") == "FP32");
  CHECK(kind(*r, "fc") == "FP32");
  CHECK(kind(*r, "layer1.0.conv1") == "DoReFa2/DoReFa2");
  CHECK(kind(*r, "layer3.2.conv2") == "DoReFa2/DoReFa2");
  bool has_latent = false;
  for (auto& [n, t] : r->named_parameters()) has_latent = has_latent || n == "layer1.0.conv1.wq.latent";
  CHECK(has_latent);

  auto r8 = nn::resnet20(g, nn::Shortcut::B, make_factory(ste_spec(1, 4, LayerPolicy::Bit8, LayerPolicy::Bit8, "pact")));
  CHECK(kind(*r8, "conv1") == "DoReFa8/-32");  // weight-only 8 bit; the image is never quantized
  CHECK(kind(*r8, "fc") == "DoReFa8/-32");
  CHECK(kind(*r8, "layer2.0.conv1") == "BWN1/PACT4");
  CHECK(kind(*r8, "layer2.0.shortcut.0") == "BWN1/PACT4");  // option-B 1x1 conv is a middle layer

  auto rs = nn::resnet20(g, nn::Shortcut::A, make_factory(ste_spec(3, 32, LayerPolicy::Same, LayerPolicy::Same)));
  CHECK(kind(*rs, "conv1") == "DoReFa3/-32");
  CHECK(kind(*rs, "fc") == "DoReFa3/-32");
  CHECK(kind(*rs, "layer1.1.conv2") == "DoReFa3/-32");
  auto ra = nn::resnet20(g, nn::Shortcut::A, make_factory(ste_spec(32, 2, LayerPolicy::FP32, LayerPolicy::Same)));
  CHECK(kind(*ra, "layer1.0.conv1") == "FP3232/DoReFa2");  // FP32 weights, quantized input
  CHECK(kind(*ra, "fc") == "FP3232/DoReFa2");

  auto v = nn::vgg_small(g, make_factory(ste_spec(2, 2)));
  CHECK(kind(*v, "features.0") == "FP32");
  CHECK(kind(*v, "features.2") == "DoReFa2/DoReFa2");  // features.1 is BN+ReLU
  CHECK(kind(*v, "fc") == "FP32");
  QuantSpec mid = ste_spec(2, 2);
  mid.middle = LayerPolicy::FP32;  // "which layers": nothing but the (FP32) first and last
  auto vm = nn::vgg_small(g, make_factory(mid));
  CHECK(kind(*vm, "features.2") == "FP32");

  // Same seed: a quantized model's latent weights equal the FP32 model's weights.
  Generator g1(9), g2(9);
  auto fp = nn::resnet20(g1), q = nn::resnet20(g2, nn::Shortcut::A, make_factory(ste_spec(2, 2)));
  CHECK(fp->state_dict().at("layer2.1.conv1.weight").to_vector() ==
        q->state_dict().at("layer2.1.conv1.wq.latent").to_vector());

  QuantSpec bad = ste_spec(3, 2);
  bad.w_bits = 12;
  CHECK_THROWS_WITH(make_factory(bad), Catch::Contains("'w_bits' = 12: method ste expects 1..8 or 32"));
  bad = ste_spec(2, 2);
  bad.method = "fp32";
  CHECK_THROWS_WITH(make_factory(bad), Catch::Contains("unknown config key 'fp32.a_quant'"));  // ste's options
  bad.options = nlohmann::json::object();
  CHECK_THROWS_WITH(make_factory(bad), Catch::Contains("'w_bits'/'a_bits' must be 32 for method fp32, got 2/2"));
  CHECK_THROWS_WITH(parse_policy("16bit", "first_layer"), Catch::Contains("first_layer") && Catch::Contains("'16bit'"));
  const QuantSpec round = QuantSpec::from_json(ste_spec(4, 2, LayerPolicy::Bit8, LayerPolicy::Same, "pact").to_json());
  CHECK(round.to_json() == ste_spec(4, 2, LayerPolicy::Bit8, LayerPolicy::Same, "pact").to_json());
}

TEST_CASE("summary: a hand-built tiny model against hand-computed numbers", "[quant][summary]") {
  Generator g(2);
  auto m = std::make_shared<nn::Sequential>();
  m->push_back(std::make_shared<nn::Conv2d>(3, 4, 3, 1, 1, false, g));  // FP32
  m->push_back(std::make_shared<nn::BatchNorm>(4, true, true));
  m->push_back(std::make_shared<QConv2d>(
      nn::ConvSpec{4, 8, 3, 2, 1, true, nn::LayerRole::Middle},
      [](const nn::Tensorf& w) { return std::make_shared<DoReFaWeight>(w, 2); }, std::make_shared<DoReFaActivation>(2),
      g));
  m->push_back(std::make_shared<nn::BatchNorm>(8, true, true));
  m->push_back(std::make_shared<nn::GlobalAvgPool2d>());
  m->push_back(std::make_shared<QLinear>(nn::LinearSpec{8, 10, true, nn::LayerRole::Last},
                                         [](const nn::Tensorf& w) { return std::make_shared<BinaryWeight>(w); },
                                         std::make_shared<PactActivation>(4), g));
  m->train();
  const ModelSummary s = summary(*m);
  CHECK(m->is_training());  // mode restored
  REQUIRE(s.layers.size() == 3);
  // conv 3->4, 3x3, output 4x32x32: 108 weights, MACs 4*32*32 * 27.
  CHECK(s.layers[0].name == "0");
  CHECK(s.layers[0].weight_params == 108);
  CHECK(s.layers[0].storage_bits == 108 * 32);
  CHECK(s.layers[0].macs == 4 * 32 * 32 * 27);
  // QConv2d 4->8, stride 2, output 8x16x16: 288 weights at 2 bits (72 bytes) + 8 FP32 biases.
  CHECK(s.layers[1].quantizer == "DoReFa");
  CHECK(s.layers[1].w_bits == 2);
  CHECK(s.layers[1].a_bits == 2);
  CHECK(s.layers[1].params == 296);
  CHECK(s.layers[1].storage_bits == 576 + 32 * 8);
  CHECK(s.layers[1].macs == 8 * 16 * 16 * 36);
  // QLinear 8->10, BWN: 80 bits (10 bytes) + 1 scale + 10 biases + PACT alpha.
  CHECK(s.layers[2].quantizer == "BWN");
  CHECK(s.layers[2].a_bits == 4);
  CHECK(s.layers[2].params == 91);
  CHECK(s.layers[2].storage_bits == 80 + 32 * (1 + 10 + 1));
  CHECK(s.layers[2].macs == 80);
  // FP32 values: conv 108, BN 4*4 and 8*4 (weight, bias, running mean, running var),
  // qconv bias 8, linear bias 10, alpha 1 = 175.
  CHECK(s.model_bytes == 72 + 10 + 4 * 1 + 4 * 175);  // 786
  CHECK(s.fp32_bytes == 4 * (288 + 80 + 175));        // 2172
  CHECK(s.compression_ratio == Approx(2172.0 / 786.0));
  CHECK(s.avg_weight_bits == Approx((108.0 * 32 + 288 * 2 + 80 * 1) / 476));
  CHECK(s.params == 108 + 8 + 288 + 8 + 16 + 80 + 10 + 1);
  CHECK(s.buffers == 8 + 16);
  CHECK(s.macs == 4 * 32 * 32 * 27 + 8 * 16 * 16 * 36 + 80);
  const std::string t = s.table();
  CHECK_THAT(t, Catch::Contains("DoReFa/DoReFa") && Catch::Contains("BWN/PACT") && Catch::Contains("786 bytes"));
  m->eval();
  summary(*m);
  CHECK(!m->is_training());
}

TEST_CASE("summary: ResNet-20 DoReFa 2/2 equals the hand count in docs/quantization.md", "[quant][summary]") {
  Generator g(3);
  auto r = nn::resnet20(g, nn::Shortcut::A, make_factory(ste_spec(2, 2)));
  const ModelSummary s = summary(*r);
  CHECK(s.params == 269722);
  CHECK(s.buffers == 1376);
  CHECK(s.weight_params == 268336);
  CHECK(s.model_bytes == 82152);  // 267264 * 2 / 8 + 4 * (432 + 650 + 1376 + 1376)
  CHECK(s.fp32_bytes == 1084392);  // 4 * (269722 + 1376)
  CHECK(s.avg_weight_bits == Approx(568832.0 / 268336.0));
  // 442368 (conv1) + 6 * 2359296 (layer1) + 2 * (1179648 + 5 * 2359296) (layer2, layer3) + 640 (fc)
  CHECK(s.macs == 40551040);
  auto fp = nn::resnet20(g);
  const ModelSummary f = summary(*fp);
  CHECK(f.model_bytes == 1084392);
  CHECK(f.avg_weight_bits == 32.0);
  CHECK(f.compression_ratio == 1.0);
  CHECK(f.macs == s.macs);
}

TEST_CASE("export -> load gives bit-identical eval outputs and the summary's size", "[quant][export]") {
  struct Case {
    QuantSpec spec;
    const char* what;
  };
  const std::vector<Case> cases = {{ste_spec(2, 2, LayerPolicy::Bit8, LayerPolicy::Same, "pact"), "DoReFa 2/2 PACT, 8-bit first"},
                                   {ste_spec(1, 4), "BWN 1/4 DoReFa"},
                                   {ste_spec(32, 3, LayerPolicy::FP32, LayerPolicy::Same), "FP32 weights, 3-bit inputs"}};
  for (auto& c : cases) {
    DYNAMIC_SECTION(c.what) {
      Generator g(4);
      auto build = [&g](const nn::LayerFactory& f) { return std::make_shared<TinyNet>(f, g); };
      std::shared_ptr<nn::Module> model = build(make_factory(c.spec));
      // Train a few steps on synthetic data: BN statistics, alpha and latents all move.
      Generator dg(5);
      const nn::Tensorf images = nn::Tensorf::randn({24, 3, 32, 32}, dg);
      std::vector<int64_t> labels(24);
      for (size_t i = 0; i < labels.size(); ++i) labels[i] = static_cast<int64_t>(i % 10);
      optim::ParamGroup pg;
      pg.lr = 0.05;
      pg.params = model->named_parameters();
      optim::SGD opt({pg}, optim::SgdOptions{0.9, 0.0, false});
      model->train();
      for (int step = 0; step < 4; ++step) {
        opt.zero_grad();
        const int64_t o = 8 * (step % 3);
        Tensor<float> loss = cross_entropy((*model)(slice(images, o, o + 8)),
                                           std::vector<int64_t>(labels.begin() + o, labels.begin() + o + 8));
        loss.backward();
        opt.step();
      }
      const fs::path path = temp_file("lowbit_export");
      export_quantized(*model, path.string(), {{"spec", c.spec.to_json()}, {"note", c.what}});
      const ModelSummary s = summary(*model);
      const QuantizedModelFile f = read_quantized(path.string());
      CHECK(fs::file_size(path) == f.header_bytes + f.data_bytes);
      CHECK(static_cast<int64_t>(f.data_bytes) == s.model_bytes);  // the file is the model size + header
      CHECK(f.meta.at("note") == c.what);
      std::shared_ptr<nn::Module> inference = load_quantized_model(path.string(), build);
      model->eval();
      inference->eval();
      NoGradGuard no_grad;
      const nn::Tensorf a = (*model)(images), b = (*inference)(images);
      CHECK(a.to_vector() == b.to_vector());  // bit for bit
      const Tensor<int64_t> pa = argmax(a, 1), pb = argmax(b, 1);
      CHECK(pa.to_vector() == pb.to_vector());
      CHECK(summary(*inference).model_bytes == s.model_bytes);
      fs::remove(path);
    }
  }
}

TEST_CASE("export: bad files are refused with the path and the reason", "[quant][export][errors]") {
  Generator g(6);
  QuantSpec spec = ste_spec(2, 2);
  auto model = std::make_shared<TinyNet>(make_factory(spec), g);
  const fs::path path = temp_file("lowbit_export_bad");
  export_quantized(*model, path.string(), {{"spec", spec.to_json()}});
  CHECK(is_quantized_file(path.string()));
  fs::resize_file(path, fs::file_size(path) - 5);
  CHECK_THROWS_WITH(read_quantized(path.string()), Catch::Contains(path.string()) && Catch::Contains("truncated"));
  { std::ofstream(path, std::ios::binary) << "LOWBITCK and then some"; }
  CHECK(!is_quantized_file(path.string()));
  CHECK_THROWS_WITH(read_quantized(path.string()), Catch::Contains(path.string()) && Catch::Contains("not a safetensors file"));
  // A checkpoint is not an export: refused naming the format it has.
  io::Checkpoint ck;
  ck.tensors.emplace("w", Tensorf::zeros({2}));
  io::save_checkpoint(path.string(), ck);
  CHECK(!is_quantized_file(path.string()));
  CHECK_THROWS_WITH(read_quantized(path.string()),
                    Catch::Contains("is not a lowbit quantized model: its safetensors metadata has lowbit.format = "
                                    "'lowbit.checkpoint', expected 'lowbit.quantized_model'"));
  // A file of one spec loaded into another architecture lists what does not match.
  export_quantized(*model, path.string(), {{"spec", spec.to_json()}});
  Generator g2(7);
  auto other = nn::resnet20(g2, nn::Shortcut::A, frozen_factory(spec));
  CHECK_THROWS_WITH(load_quantized_into(other, read_quantized(path.string())),
                    Catch::Contains("missing quantized weight: layer1.0.conv1.wq") &&
                        Catch::Contains("unexpected quantized weight: c2.wq"));
  export_quantized(*model, path.string());
  CHECK_THROWS_WITH(load_quantized_model(path.string(), [&](const nn::LayerFactory& f) {
                      return std::make_shared<TinyNet>(f, g2);
                    }),
                    Catch::Contains("no \"spec\""));
  fs::remove(path);
}

// Exports written before the move to safetensors (magic LOWBITQM, version 1, framed by
// io/framed_file.hpp) still load, to the same codes and tensors. The old layout is written
// here by hand, as the old writer did.
TEST_CASE("export: a file of the earlier framed format still loads", "[quant][export]") {
  Generator g(8);
  QuantSpec spec = ste_spec(2, 2);
  auto model = std::make_shared<TinyNet>(make_factory(spec), g);
  const fs::path path = temp_file("lowbit_export_new"), old_path = temp_file("lowbit_export_old");
  export_quantized(*model, path.string(), {{"spec", spec.to_json()}});
  const QuantizedModelFile now = read_quantized(path.string());
  REQUIRE(!now.weights.empty());
  std::string data;
  nlohmann::json qtable = nlohmann::json::array(), ttable = nlohmann::json::array();
  for (auto& [name, c] : now.weights) {
    const std::vector<uint8_t> packed = pack_codes(c.codes, c.bits);
    qtable.push_back({{"name", name}, {"quantizer", now.quantizer_of.at(name)}, {"shape", c.shape}, {"bits", c.bits},
                      {"rule", c.rule}, {"group_size", c.group_size}, {"levels", c.levels},
                      {"n_scales", c.scales.size()}, {"offset", data.size()}, {"code_bytes", packed.size()}});
    data.append(reinterpret_cast<const char*>(packed.data()), packed.size());
    data.append(reinterpret_cast<const char*>(c.scales.data()), c.scales.size() * sizeof(float));
  }
  for (auto& [name, t] : now.tensors) {
    ttable.push_back({{"name", name}, {"shape", t.shape()}, {"offset", data.size()}});
    data.append(reinterpret_cast<const char*>(t.data()), static_cast<size_t>(t.numel()) * sizeof(float));
  }
  io::write_framed(old_path.string(), kQuantMagic, kQuantVersion,
                   {{"meta", now.meta}, {"data_bytes", data.size()}, {"quantized", qtable}, {"tensors", ttable}}, data,
                   "test");
  CHECK(is_quantized_file(old_path.string()));
  const QuantizedModelFile old = read_quantized(old_path.string());
  CHECK(old.meta == now.meta);
  CHECK(old.data_bytes == now.data_bytes);  // the same model size, whichever container
  REQUIRE(old.weights.size() == now.weights.size());
  for (auto& [name, c] : now.weights) {
    CHECK(old.weights.at(name).codes == c.codes);
    CHECK(old.weights.at(name).scales == c.scales);
    CHECK(old.quantizer_of.at(name) == now.quantizer_of.at(name));
  }
  REQUIRE(old.tensors.size() == now.tensors.size());
  for (auto& [name, t] : now.tensors) CHECK(old.tensors.at(name).to_vector() == t.to_vector());
  // An integer field written as a number that is not one (fuzz_export_lbq's finding: a run of
  // digits parses to 1e82, whose conversion to int64 was undefined behaviour): refused with
  // the key and the value.
  for (const auto& [key, value] : std::vector<std::pair<std::string, nlohmann::json>>{
           {"group_size", 1.0777e82}, {"group_size", 2.5}, {"bits", -1e30}, {"bits", "2"}}) {
    nlohmann::json bad = qtable;
    bad[0][key] = value;
    io::write_framed(old_path.string(), kQuantMagic, kQuantVersion,
                     {{"meta", now.meta}, {"data_bytes", data.size()}, {"quantized", bad}, {"tensors", ttable}}, data,
                     "test");
    INFO(key << " = " << value.dump());
    CHECK_THROWS_AS(read_quantized(old_path.string()), Error);
    if (value.is_number())
      CHECK_THROWS_WITH(read_quantized(old_path.string()),
                        Catch::Contains(old_path.string()) && Catch::Contains(key + " = " + value.dump()) &&
                            Catch::Contains("expected an integer"));
  }
  fs::remove(path);
  fs::remove(old_path);
}
