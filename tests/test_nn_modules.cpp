// Modules: hierarchical names, parameter counts of the paper models, state dicts and their
// errors, train/eval, the option-A shortcut, and SGD against PyTorch's update rule.
#include <catch2/catch.hpp>
#include <lowbit/lowbit.hpp>

using namespace lowbit;
using Catch::Matchers::Contains;

namespace {
int64_t count_params(const nn::Module& m) {
  int64_t n = 0;
  for (auto& p : m.parameters()) n += p.numel();
  return n;
}
bool has_name(const std::vector<std::pair<std::string, nn::Tensorf>>& v, const std::string& name) {
  for (auto& kv : v)
    if (kv.first == name) return true;
  return false;
}
}  // namespace

TEST_CASE("ResNet-20 and VGG-Small have the papers' parameter counts and names", "[nn][models]") {
  Generator gen(0);
  auto r = nn::resnet20(gen);
  // Hand count: conv1 432 + bn1 32 + stage1 14016 + stage2 51072 + stage3 203520 + fc 650.
  CHECK(count_params(*r) == 269722);
  auto names = r->named_parameters();
  CHECK(has_name(names, "conv1.weight"));
  CHECK(has_name(names, "layer2.0.conv1.weight"));
  CHECK(has_name(names, "layer3.2.bn2.bias"));
  CHECK(has_name(names, "fc.bias"));
  CHECK(has_name(r->named_buffers(), "layer1.1.bn1.running_var"));
  auto rb = nn::resnet20(gen, nn::Shortcut::B);
  // Option B adds 1x1 conv + BN at the two downsampling blocks: 16*32 + 64 + 32*64 + 128.
  CHECK(count_params(*rb) == 269722 + 512 + 64 + 2048 + 128);
  CHECK(has_name(rb->named_parameters(), "layer2.0.shortcut.0.weight"));
  auto v = nn::vgg_small(gen);
  // convs 4574592 + BN 3584 + fc 81930.
  CHECK(count_params(*v) == 4660106);
  // ALQ's BinaryConnect VGG: conv weights 4574592 + conv biases 1792 + BN2d 3584
  // + FC 8192*1024+1024 + 1024*1024+1024 + 1024*10+10 + BN1d 4096.
  auto bc = nn::vgg_bc(gen);
  CHECK(count_params(*bc) == 4574592 + 1792 + 3584 + 9449482 + 4096);
  CHECK(has_name(bc->named_parameters(), "classifier.1.weight"));  // the first BN1d (+ReLU)
}

TEST_CASE("model forward/backward reaches every parameter", "[nn][models]") {
  Generator gen(1);
  for (auto sc : {nn::Shortcut::A, nn::Shortcut::B}) {
    auto r = nn::resnet20(gen, sc);
    auto x = Tensor<float>::randn({2, 3, 8, 8}, gen);
    auto logits = (*r)(x);
    CHECK(logits.shape() == Shape{2, 10});
    cross_entropy(logits, std::vector<int64_t>{3, 7}).backward();
    for (auto& [name, p] : r->named_parameters()) {
      INFO(name);
      CHECK(p.grad().defined());
    }
  }
}

TEST_CASE("train/eval propagate; eval uses running statistics", "[nn]") {
  Generator gen(2);
  nn::Sequential seq;
  seq.push_back(std::make_shared<nn::Conv2d>(3, 4, 3, 1, 1, true, gen));
  auto bn = seq.push_back(std::make_shared<nn::BatchNorm>(4));
  auto x = Tensor<float>::randn({2, 3, 5, 5}, gen);
  seq.eval();
  CHECK(!bn->is_training());
  auto before = bn->running_mean.clone();
  (void)seq(x);
  CHECK(allclose(bn->running_mean, before, 0, 0));
  seq.train();
  (void)seq(x);
  CHECK(!allclose(bn->running_mean, before, 0, 0));
}

TEST_CASE("flip TTA averages the softmax of an image and its mirror, and cannot tell them apart", "[nn][tta]") {
  Generator gen(3);
  nn::Sequential seq;  // not mirror-symmetric: the conv kernel and the linear map see position
  seq.push_back(std::make_shared<nn::Conv2d>(3, 4, 3, 1, 1, true, gen));
  seq.push_back(std::make_shared<nn::Flatten>());
  auto fc = seq.push_back(std::make_shared<nn::Linear>(4 * 5 * 6, 7, true, gen));
  seq.eval();
  auto x = Tensor<float>::randn({2, 3, 5, 6}, gen);
  auto mirror = flip(x, 3);
  // Hand-computed: softmax of each image's logits and of its mirror's, the mean, its log.
  auto la = seq(x), lb = seq(mirror);
  auto lp = nn::flip_tta_log_probs(seq, x);
  REQUIRE(lp.shape() == Shape{2, 7});
  CHECK(!lp.requires_grad());
  for (int64_t n = 0; n < 2; ++n) {
    double za = 0, zb = 0, total = 0;
    for (int64_t k = 0; k < 7; ++k) {
      za += std::exp(static_cast<double>(la.at({n, k})));
      zb += std::exp(static_cast<double>(lb.at({n, k})));
    }
    for (int64_t k = 0; k < 7; ++k) {
      const double want = 0.5 * (std::exp(static_cast<double>(la.at({n, k}))) / za +
                                 std::exp(static_cast<double>(lb.at({n, k}))) / zb);
      CHECK(lp.at({n, k}) == Approx(std::log(want)).margin(1e-5));
      total += std::exp(static_cast<double>(lp.at({n, k})));
    }
    CHECK(total == Approx(1.0).margin(1e-5));
  }
  // The model alone tells the image from its mirror; the flip-averaged prediction cannot.
  CHECK(!allclose(softmax(la, 1), softmax(lb, 1), 1e-3, 1e-3));
  CHECK(allclose(nn::flip_tta_log_probs(seq, mirror), lp, 1e-5, 1e-5));
  // Temperature 3: the mean of the two softened distributions softmax(logits / 3).
  auto lp3 = nn::flip_tta_log_probs(seq, x, 3.0);
  auto want3 = (softmax(la * (1.0f / 3), 1) + softmax(lb * (1.0f / 3), 1)) * 0.5f;
  for (int64_t i = 0; i < lp3.numel(); ++i)
    CHECK(std::exp(static_cast<double>(lp3.data()[i])) == Approx(want3.data()[i]).margin(1e-6));
  // The parts: each view's log-softmax, and their log-mean.
  const auto views = nn::flip_views_log_softmax(seq, x);
  CHECK(allclose(views.first, log_softmax(la, 1), 1e-6, 1e-6));
  CHECK(allclose(views.second, log_softmax(lb, 1), 1e-6, 1e-6));
  CHECK(allclose(nn::log_mean_probs(views.first, views.second), lp, 0, 0));
  CHECK_THROWS_WITH(nn::log_mean_probs(views.first, reshape(la, {7, 2})), Contains("log_mean_probs: shapes"));
  // Logits thousands apart: most probabilities underflow float in both views, and their log
  // is still finite (about the logit gap below the largest).
  for (int64_t i = 0; i < fc->weight.numel(); ++i) fc->weight.data()[i] *= 3000.0f;
  const std::vector<float> extreme = nn::flip_tta_log_probs(seq, x).to_vector();
  CHECK(std::exp(static_cast<double>(*std::min_element(extreme.begin(), extreme.end()))) == 0.0);
  for (float v : extreme) CHECK(std::isfinite(v));
  CHECK_THROWS_WITH(nn::flip_tta_log_probs(seq, Tensor<float>::zeros({3, 5, 6})),
                    Contains("flip TTA: expected an NCHW batch"));
}

TEST_CASE("state_dict round-trips and reports every mismatch", "[nn][state_dict]") {
  Generator g1(3), g2(4);
  auto a = nn::resnet20(g1), b = nn::resnet20(g2);
  CHECK(!allclose(a->state_dict().at("fc.weight"), b->state_dict().at("fc.weight")));
  b->load_state_dict(a->state_dict());
  for (auto& [name, t] : a->state_dict()) {
    INFO(name);
    CHECK(allclose(b->state_dict().at(name), t, 0, 0));
  }
  auto sd = a->state_dict();
  sd.erase("layer1.0.bn1.running_mean");
  sd.emplace("layer9.weight", Tensor<float>::zeros({2}));
  sd["fc.weight"] = Tensor<float>::zeros({3, 64});
  auto before = b->state_dict().at("conv1.weight").clone();
  CHECK_THROWS_WITH(b->load_state_dict(sd), Contains("missing: layer1.0.bn1.running_mean [16]") &&
                                                Contains("unexpected: layer9.weight [2]") &&
                                                Contains("shape mismatch: fc.weight is [10, 64] in the model, [3, 64]"));
  CHECK(allclose(b->state_dict().at("conv1.weight"), before, 0, 0));  // nothing copied on error
  sd.erase("fc.weight");
  b->load_state_dict(sd, /*strict=*/false);
}

TEST_CASE("registration errors name the module and the name", "[nn]") {
  struct Bad : nn::Module {
    Bad() { register_parameter("w", Tensor<float>::zeros({1})); }
    Tensor<float> forward(const Tensor<float>& x) override { return x; }
    std::string type_name() const override { return "Bad"; }
  } bad;
  CHECK_THROWS_WITH(bad.register_parameter("w", Tensor<float>::zeros({1})), Contains("Bad") && Contains("'w' is registered twice"));
  CHECK_THROWS_WITH(bad.register_buffer("a.b", Tensor<float>::zeros({1})), Contains("contain no '.'"));
}

TEST_CASE("option-A shortcut: values and gradcheck", "[nn][gradcheck]") {
  auto x = reshape(Tensor<double>::arange(16.0), {1, 1, 4, 4});
  auto y = shortcut_pad(x, 3, 2);
  CHECK(y.shape() == Shape{1, 3, 2, 2});
  CHECK(y.to_vector() == std::vector<double>{0, 0, 0, 0, 0, 2, 8, 10, 0, 0, 0, 0});
  Generator g(5);
  auto r = gradcheck([](const std::vector<Tensor<double>>& v) { return shortcut_pad(v[0], 6, 2); },
                     {Tensor<double>::randn({2, 2, 5, 3}, g).set_requires_grad()});
  INFO(r.report);
  CHECK(r.ok);
  CHECK_THROWS_WITH(shortcut_pad(x, 2, 2), Contains("even number"));
}

TEST_CASE("SGD follows PyTorch's update rule", "[optim]") {
  // Two steps by hand with lr 0.1, momentum 0.9, wd 0.01, nesterov, gradient = 2p (from sum p^2).
  for (bool nesterov : {false, true}) {
    auto p = Tensor<float>({2}, {1.0f, -2.0f}).set_requires_grad();
    optim::SGD opt({{{{"p", p}}, 0.1, 0.01}}, {0.9, 0.0, nesterov});
    std::vector<double> w = {1.0, -2.0}, b = {0, 0};
    for (int step = 0; step < 2; ++step) {
      opt.zero_grad();
      sum(square(p)).backward();
      opt.step();
      for (int i = 0; i < 2; ++i) {
        const double d = 2 * w[i] + 0.01 * w[i];
        b[i] = step == 0 ? d : 0.9 * b[i] + d;
        w[i] -= 0.1 * (nesterov ? d + 0.9 * b[i] : b[i]);
      }
    }
    CHECK(p.at({0}) == Approx(w[0]).epsilon(1e-6));
    CHECK(p.at({1}) == Approx(w[1]).epsilon(1e-6));
    CHECK(opt.state().count("p.momentum") == 1);
  }
  auto q = Tensor<float>::ones({1});
  CHECK_THROWS_WITH(optim::SGD({{{{"q", q}}, 0.1, 0.0}}), Contains("'q'") && Contains("does not require grad"));
}

TEST_CASE("the profiler records leaf-module forwards and backward ops only inside its scope", "[nn][profiler]") {
  Generator gen(9);
  nn::Sequential seq;
  seq.push_back(std::make_shared<nn::Conv2d>(3, 4, 3, 1, 1, false, gen));
  seq.push_back(std::make_shared<nn::BatchNorm>(4, true, true));
  auto x = Tensor<float>::randn({2, 3, 5, 5}, gen);
  OpProfile prof;
  sum(seq(x)).backward();  // outside any scope: nothing recorded
  CHECK(prof.forward.empty());
  {
    ProfileScope scope(prof);
    sum(seq(x)).backward();
  }
  sum(seq(x)).backward();  // after the scope: nothing more
  CHECK(prof.forward.at("Conv2d").calls == 1);
  CHECK(prof.forward.at("BatchNorm2d+ReLU").calls == 1);
  CHECK(prof.forward.count("Sequential") == 0);  // containers are not leaves
  CHECK(prof.backward.at("conv2d").calls == 1);
  CHECK(prof.backward.at("batch_norm_relu").calls == 1);
  CHECK(prof.backward.at("sum").calls == 1);
  CHECK(active_profile() == nullptr);
}

TEST_CASE("recalibrate_batch_norm: running statistics become the plain averages over the batches", "[nn][bn]") {
  nn::Sequential seq;
  seq.push_back(std::make_shared<nn::Flatten>());
  auto bn = seq.push_back(std::make_shared<nn::BatchNorm>(2, false));
  // Stale statistics that must not survive: the first batch replaces them (momentum 1).
  bn->running_mean.data()[0] = 50.f, bn->running_var.data()[0] = 9.f;
  // Three batches of 4 samples x 2 channels (laid out [N, 2, 1, 1] and flattened).
  const std::vector<std::vector<float>> data = {{1, 10, 2, 20, 3, 30, 6, 40},
                                                {0, 0, 4, 8, 4, 8, 8, 16},
                                                {-1, 5, 1, 5, -1, 5, 1, 5}};
  // By hand: channel 0 batch means 3, 4, 0; unbiased variances 14/3, 32/3, 4/3.
  //          channel 1 batch means 25, 8, 5; unbiased variances 500/3, 128/3, 0.
  size_t next = 0;
  auto source = [&](nn::Tensorf& images) {
    if (next == data.size()) return false;
    images = nn::Tensorf::empty({4, 2, 1, 1});
    std::copy(data[next].begin(), data[next].end(), images.data());
    ++next;
    return true;
  };
  seq.eval();
  CHECK(nn::recalibrate_batch_norm(seq, source, 10) == 3);  // the source ran out first
  CHECK(bn->running_mean.data()[0] == Approx(7.0 / 3));
  CHECK(bn->running_mean.data()[1] == Approx(38.0 / 3));
  CHECK(bn->running_var.data()[0] == Approx((14.0 + 32.0 + 4.0) / 9));
  CHECK(bn->running_var.data()[1] == Approx((500.0 + 128.0) / 9));
  CHECK(!bn->is_training());              // mode restored
  CHECK(bn->momentum() == Approx(0.1));   // momentum restored
  CHECK(bn->weight.data()[0] == 1.f);     // gamma untouched

  next = 1;  // only the first batch of what is left: batch 2 alone
  CHECK(nn::recalibrate_batch_norm(seq, source, 1) == 1);
  CHECK(bn->running_mean.data()[0] == Approx(4.0));
  CHECK(bn->running_var.data()[1] == Approx(128.0 / 3));
  CHECK_THROWS_WITH(nn::recalibrate_batch_norm(seq, source, 0), Contains("batches = 0, expected > 0"));
  CHECK_THROWS_WITH(bn->set_momentum(1.5), Contains("momentum = 1.5, expected in (0, 1]"));
}
