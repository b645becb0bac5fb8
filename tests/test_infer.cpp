// infer/: an exported model run with low-bit kernels (binary, integer, float per layer)
// against the fake-quantized evaluation of the same file (train::load_trained), and the
// errors for files and inputs that do not fit.
#include <catch2/catch.hpp>

#include <lowbit/infer/model.hpp>
#include <lowbit/quant/quant.hpp>
#include <lowbit/ops/reduce.hpp>
#include <lowbit/optim/sgd.hpp>
#include <lowbit/ops/softmax.hpp>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <limits>
#include <string>
#include <vector>

#include "temp_dir_for_tests.hpp"

using namespace lowbit;
using nn::Tensorf;
using nlohmann::json;

namespace {

// A briefly trained model of `given` (a train_cifar config), exported as train_cifar does.
// flip_bn: every third batch-norm channel gets a negative gamma (a threshold "at most").
std::string export_run(const json& given, const std::string& path, bool flip_bn = false) {
  const json cfg = train::resolve_config(given);
  const train::DataInfo info;  // CIFAR-10's shape
  std::shared_ptr<nn::Module> model = train::build_model(cfg, info);
  Generator dg(5);
  const Tensorf images = Tensorf::randn({16, 3, 32, 32}, dg);
  std::vector<int64_t> labels(8);
  for (size_t i = 0; i < labels.size(); ++i) labels[i] = static_cast<int64_t>(i % 10);
  optim::ParamGroup pg;
  pg.lr = 0.05;
  pg.params = model->named_parameters();
  optim::SGD opt({pg}, optim::SgdOptions{0.9, 0.0, false});
  model->train();
  for (int step = 0; step < 2; ++step) {  // moves BN statistics and latents off their init
    opt.zero_grad();
    Tensorf loss = cross_entropy((*model)(slice(images, 8 * step, 8 * step + 8)), labels);
    loss.backward();
    opt.step();
  }
  if (flip_bn)
    for (auto& [name, m] : model->named_modules())
      if (auto* bn = dynamic_cast<const nn::BatchNorm*>(m))
        for (int64_t c = 0; c < bn->weight.numel(); c += 3) Tensorf(bn->weight).data()[c] *= -1.0f;
  quant::export_quantized(*model, path,
                          {{"format", train::kRunFormat}, {"config", cfg}, {"spec", train::quant_spec(cfg).to_json()},
                           {"data_info", info.to_json()}});
  return path;
}

json config(const std::string& model, const std::string& method, int w, int a) {
  return {{"model", model}, {"method", method}, {"w_bits", w}, {"a_bits", a}, {"seed", 3}};
}

int count(const std::vector<infer::LayerPlan>& plan, infer::ConvKernel k) {
  return static_cast<int>(std::count_if(plan.begin(), plan.end(), [k](const infer::LayerPlan& l) { return l.kernel == k; }));
}

// The fake-quantized model's own integer forward (quant/integer_conv.hpp) on every QConv2d
// that takes it: the same int8 kernel the inference path runs, so the two agree bit for bit.
void integer_forward(const std::shared_ptr<nn::Module>& m) {
  if (auto q = std::dynamic_pointer_cast<quant::QConv2d>(m)) q->set_integer_forward(true);
  for (auto& kv : m->children()) integer_forward(kv.second);
}

// max |a - b| over max |a|.
double rel_diff(const Tensorf& a, const Tensorf& b) {
  double d = 0, m = 0;
  for (int64_t i = 0; i < a.numel(); ++i) {
    d = std::max(d, static_cast<double>(std::fabs(a.data()[i] - b.data()[i])));
    m = std::max(m, static_cast<double>(std::fabs(a.data()[i])));
  }
  return d / m;
}

}  // namespace

TEST_CASE("infer: an exported model's logits equal the fake-quantized evaluation's, per kernel", "[infer]") {
  struct Case {
    json cfg;
    const char* what;
    int binary, integer;  // middle convolutions expected on each kernel (integer: with VNNI only)
    double tol;           // relative logit difference allowed (float rounding, see infer/conv.hpp)
  };
  // Tolerances: the float kernel is the fake-quantized evaluation's computation (0: bit for
  // bit); so is the integer kernel against the evaluation's own integer forward. The binary
  // kernel's exact counts differ from the float convolution by rounding (infer/conv.hpp).
  const bool vnni = kernels::int8_conv_supported([] {
    kernels::ConvShape s{1, 16, 8, 8, 16, 3, 3};
    s.PH = s.PW = 1;
    return s;
  }(), 3);
  const std::vector<Case> cases = {
      {config("resnet20", "ste", 1, 1), "ResNet-20 BWN 1/1", 18, 0, 1e-4},
      {config("vgg_small", "ste", 1, 1), "VGG-Small BWN 1/1", 5, 0, 1e-4},
      {config("resnet20", "ste", 2, 2), "ResNet-20 DoReFa 2/2", 0, vnni ? 16 : 0, 0},
      {config("resnet20", "slb", 4, 4), "ResNet-20 SLB 4/4", 0, vnni ? 16 : 0, 0},
      {config("resnet20", "apot", 2, 2), "ResNet-20 APoT 2/2", 0, 0, 0},
      {config("resnet20", "ste", 1, 32), "ResNet-20 BWN weight-only", 0, 0, 0},
  };
  lowbit_tests::TempDir dir;
  for (auto& c : cases) {
    DYNAMIC_SECTION(c.what) {
      const std::string path = export_run(c.cfg, dir.str("model.lbq"));
      const train::TrainedModel fake = train::load_trained(path, {});
      const infer::Model m = infer::load_model(path);
      CHECK(count(m.layers, infer::ConvKernel::Binary) == c.binary);
      CHECK(count(m.layers, infer::ConvKernel::Integer) == c.integer);
      for (auto& l : m.layers) {
        INFO(l.name << ": " << l.reason);
        CHECK(!l.reason.empty());
        if (l.kernel == infer::ConvKernel::Binary) CHECK(l.weight_bytes * 4 < l.weights * 4);  // > 4x smaller than FP32
      }
      Generator g(9);
      const Tensorf x = Tensorf::randn({6, 3, 32, 32}, g);
      fake.model->eval();
      if (c.integer) integer_forward(fake.model);
      NoGradGuard no_grad;
      const Tensorf a = (*fake.model)(x), b = m.predict(x);
      REQUIRE(a.shape() == b.shape());
      if (c.tol == 0) CHECK(a.to_vector() == b.to_vector());  // the float kernel: the same computation
      else CHECK(rel_diff(a, b) <= c.tol);
      CHECK(argmax(a, 1).to_vector() == argmax(b, 1).to_vector());
    }
  }
}

TEST_CASE("infer: each kernel equals the float convolution of the fake-quantized operands", "[infer]") {
  // One InferConv2d against conv2d(aq(x), dequantized W): awkward channel counts (65 inputs:
  // two words, one nearly empty; 10 outputs: a partial quad), stride 1 and 2, a bias, inputs
  // exactly on DoReFa's rounding ties.
  struct Case {
    int w_bits, a_bits;
    infer::ConvKernel want;
  };
  const bool vnni = kernels::int8_conv_supported(kernels::ConvShape{1, 65, 7, 9, 10, 3, 3}, 3);
  for (const Case c : {Case{1, 1, infer::ConvKernel::Binary}, Case{2, 2, vnni ? infer::ConvKernel::Integer : infer::ConvKernel::Float},
                       Case{4, 8, vnni ? infer::ConvKernel::Integer : infer::ConvKernel::Float}, Case{1, 32, infer::ConvKernel::Float}})
    for (int64_t stride : {1, 2}) {
      DYNAMIC_SECTION(c.w_bits << "/" << c.a_bits << " stride " << stride) {
        nn::ConvSpec s{65, 10, 3, stride, 1, true, nn::LayerRole::Middle};
        Generator g(11);
        const Tensorf w = Tensorf::randn({10, 65, 3, 3}, g);
        std::shared_ptr<quant::WeightQuantizer> wq;
        if (c.w_bits == 1) wq = std::make_shared<quant::BinaryWeight>(w);
        else wq = std::make_shared<quant::DoReFaWeight>(w, c.w_bits);
        const quant::QuantCodes q = wq->codes();
        std::shared_ptr<quant::ActivationQuantizer> aq;
        if (c.a_bits < 32) aq = std::make_shared<quant::DoReFaActivation>(c.a_bits);
        infer::InferConv2d layer(s, c.w_bits, aq);
        layer.bias.data()[3] = 0.25f;
        layer.set_codes(q, "test");
        INFO(layer.reason());
        CHECK(layer.kernel() == (stride == 2 && c.want == infer::ConvKernel::Integer ? infer::ConvKernel::Float : c.want));
        Tensorf x = Tensorf::uniform({3, 65, 7, 9}, g, -0.2, 1.2);
        const float na = c.a_bits < 32 ? static_cast<float>((1 << c.a_bits) - 1) : 1.0f;
        for (int64_t i = 0; i < x.numel(); i += 7) x.data()[i] = (static_cast<float>(i % 5) + 0.5f) / na;  // ties
        NoGradGuard no_grad;
        const Tensorf want = conv2d(aq ? (*aq)(x) : x, q.dequantize(), layer.bias, Conv2dOptions::make(stride, 1));
        const Tensorf got = layer(x);
        REQUIRE(got.shape() == want.shape());
        CHECK(rel_diff(want, got) <= 1e-6);
      }
    }
}

TEST_CASE("infer: the binary input bit is DoReFa's 1-bit code", "[infer]") {
  // InferConv2d::input_bit (x > 0.5, branch-free) against kernels::activation_code(x, 1) > 0
  // (rint(clip(x, 0, 1)), the code the fake-quantized model's DoReFa quantizer gives).
  const float inf = std::numeric_limits<float>::infinity();
  std::vector<float> xs = {0.5f, std::nextafter(0.5f, 1.0f), std::nextafter(0.5f, 0.0f), 0.0f, -0.0f, 1.0f, 1.5f, 2.5f,
                           -0.5f, -1.0f, 1e30f, -1e30f, inf, -inf, std::numeric_limits<float>::quiet_NaN(),
                           std::numeric_limits<float>::denorm_min()};
  Generator g(3);
  const Tensorf r = Tensorf::uniform({10000}, g, -2.0, 3.0);
  xs.insert(xs.end(), r.data(), r.data() + r.numel());
  for (float x : xs) {
    INFO("x = " << x);
    CHECK(infer::InferConv2d::input_bit(x) == (kernels::activation_code(x, 1.0f) > 0));
  }
}

TEST_CASE("infer: fused binary layers give the unfused model's outputs bit for bit", "[infer]") {
  lowbit_tests::TempDir dir;
  const std::string path = export_run(config("vgg_small", "ste", 1, 1), dir.str("model.lbq"), /*flip_bn=*/true);
  const infer::Model fused = infer::load_model(path), alone = infer::load_model(path, {}, infer::LoadOptions{false});
  // VGG-Small: conv1 .. conv5 binary; conv1 -> pool -> BN -> conv2 ... conv4 -> BN -> conv5 fused.
  const infer::BinaryChain* chain = nullptr;
  for (auto& [name, m] : fused.model->named_modules())
    if (auto* c = dynamic_cast<const infer::BinaryChain*>(m)) chain = c;
  REQUIRE(chain != nullptr);
  REQUIRE(chain->stages().size() == 5);
  CHECK(chain->stages()[0].pool_k == 2);
  CHECK(chain->stages()[1].pool_k == 0);
  int at_most = 0, at_least = 0;
  for (size_t i = 0; i + 1 < chain->stages().size(); ++i)
    for (const kernels::ChannelThreshold& t : chain->stages()[i].th) {
      at_most += t.kind == kernels::ChannelThreshold::AtMost;
      at_least += t.kind == kernels::ChannelThreshold::AtLeast;
    }
  CHECK(at_most > 0);  // the flipped gammas
  CHECK(at_least > 0);
  int noted = 0;
  for (auto& l : fused.layers) noted += l.reason.find("fused with the next binary layer") != std::string::npos;
  CHECK(noted == 4);
  Generator g(13);
  for (int64_t n : {1, 5}) {
    const Tensorf x = Tensorf::randn({n, 3, 32, 32}, g);
    CHECK(fused.predict(x).to_vector() == alone.predict(x).to_vector());
  }
}

TEST_CASE("infer: fusing a hand-built Sequential: odd pools, ReLU, a layer that ends the chain", "[infer]") {
  // conv(bin) -> MaxPool 3/2 -> BN -> ReLU -> conv(bin) -> BN+ReLU -> conv(bin) -> MaxPool 2 ->
  // Flatten: the third conv's pool stays outside the chain, which ends at a non-binary layer.
  Generator g(21);
  auto bin_conv = [&](int64_t in, int64_t out, int64_t stride) {
    auto c = std::make_shared<infer::InferConv2d>(nn::ConvSpec{in, out, 3, stride, 1, true, nn::LayerRole::Middle}, 1,
                                                  std::make_shared<quant::DoReFaActivation>(1));
    c->set_codes(quant::BinaryWeight(Tensorf::randn({out, in, 3, 3}, g)).codes(), "test");
    for (int64_t o = 0; o < out; ++o) c->bias.data()[o] = static_cast<float>(o % 5) - 2.0f;
    return c;
  };
  auto bn = [&](int64_t ch, bool relu) {
    auto b = std::make_shared<nn::BatchNorm>(ch, true, relu);
    for (int64_t c = 0; c < ch; ++c) {
      b->weight.data()[c] = (c % 4 == 0 ? -0.05f : 0.03f) * static_cast<float>(c + 1);
      b->bias.data()[c] = 0.5f;
      b->running_mean.data()[c] = static_cast<float>(c % 7) - 3.0f;
      b->running_var.data()[c] = 1.0f + static_cast<float>(c % 3);
    }
    return b;
  };
  auto build = [&] {
    auto s = std::make_shared<nn::Sequential>();
    s->push_back(bin_conv(70, 20, 1));
    s->push_back(std::make_shared<nn::MaxPool2d>(3, 2));
    s->push_back(bn(20, false));
    s->push_back(std::make_shared<nn::ReLU>());
    s->push_back(bin_conv(20, 33, 2));
    s->push_back(bn(33, true));
    s->push_back(bin_conv(33, 8, 1));
    s->push_back(std::make_shared<nn::MaxPool2d>(2));
    s->push_back(std::make_shared<nn::Flatten>());
    s->eval();
    return s;
  };
  Generator g2 = g;
  auto alone = build();
  g = g2;  // the same weights again
  auto fused = build();
  const std::vector<std::string> names = infer::fuse_binary_chains(fused);
  CHECK(names == std::vector<std::string>{"0", "4"});
  REQUIRE(fused->children().size() == 3);  // the chain, the last pool, Flatten
  const Tensorf x = Tensorf::uniform({3, 70, 15, 13}, g, -1.0, 2.0);
  NoGradGuard no_grad;
  CHECK((*fused)(x).to_vector() == (*alone)(x).to_vector());
  CHECK((*fused)(slice(x, 1, 2)).to_vector() == (*alone)(slice(x, 1, 2)).to_vector());  // one image: threads inside
}

TEST_CASE("infer: bad files and inputs are refused with the path and the reason", "[infer][errors]") {
  lowbit_tests::TempDir dir;
  const std::string path = export_run(config("resnet20", "ste", 1, 1), dir.str("model.lbq"));
  // Truncated.
  std::filesystem::copy_file(path, dir.str("cut.lbq"));
  std::filesystem::resize_file(dir.str("cut.lbq"), std::filesystem::file_size(path) - 9);
  CHECK_THROWS_WITH(infer::load_model(dir.str("cut.lbq")), Catch::Contains("cut.lbq"));
  // Another architecture than the weights: the names that do not match are listed.
  CHECK_THROWS_WITH(infer::load_model(path, {"model=resnet32"}),
                    Catch::Contains("model.lbq") && Catch::Contains("missing quantized weight: layer1.3.conv1.wq"));
  // Not an export.
  CHECK_THROWS_WITH(infer::load_model(dir.str("none.lbq")), Catch::Contains("none.lbq") && Catch::Contains("no such file"));
  // Images of another size.
  const infer::Model m = infer::load_model(path);
  CHECK_THROWS_WITH(m.predict(Tensorf::zeros({2, 3, 28, 28})),
                    Catch::Contains("[2, 3, 28, 28]") && Catch::Contains("[N, 3, 32, 32]"));
}
