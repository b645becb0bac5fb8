// The method registry (quant/registry.hpp) from a user's side: a quantization method that is
// not in lowbit — TWN, ternary weights (Li and Liu, "Ternary Weight Networks", 2016) — is
// registered from this file alone, then configured, trained, summarized and exported through
// the same entry points train_cifar uses. No lowbit header names it. Also the typed option
// schemas (io/options.hpp) every method and the trainer declare their options with.
#include <catch2/catch.hpp>
#include <cmath>
#include <filesystem>
#include <lowbit/lowbit.hpp>
#include <memory>
#include <string>

using namespace lowbit;
using Catch::Contains;
using json = nlohmann::json;

namespace {

// TWN: w = alpha * t, t = sign(W) where |W| > delta, else 0; delta = threshold * mean|W|,
// alpha = mean |W| over the weights above delta (TWN Eqs. 4-5 with their approximation).
// Straight-through gradient to the latent weight.
class TwnWeight : public quant::WeightQuantizer {
 public:
  TwnWeight(const Tensor<float>& init, double threshold) : WeightQuantizer(init.shape()), threshold_(threshold) {
    latent = register_parameter("latent", init);
    tag_parameter("latent", "twn_latent");  // its own weight decay (option latent_weight_decay)
  }
  Tensor<float> weight() override {
    const auto [delta, alpha] = thresholds();
    Tensor<float> y = lowbit::detail::map(latent, [d = delta, a = alpha](float v) { return v > d ? a : v < -d ? -a : 0.f; });
    if (autograd::needs_grad({&latent}))
      autograd::record(y, "twn_weight", {&latent}, [](const Tensor<float>& g) { return std::vector<Tensor<float>>{g.clone()}; });
    return y;
  }
  quant::QuantCodes codes() const override {
    const auto [delta, alpha] = thresholds();
    quant::QuantCodes c;
    c.shape = shape_;
    c.bits = 2;
    c.group_size = latent.numel();
    c.levels = {0.f, 1.f, -1.f, 0.f};  // code 3 unused
    c.scales = {alpha};
    for (int64_t i = 0; i < latent.numel(); ++i) {
      const float v = latent.data()[i];
      c.codes.push_back(v > delta ? 1u : v < -delta ? 2u : 0u);
    }
    return c;
  }
  int bits() const override { return 2; }
  std::string type_name() const override { return "TWN"; }
  Tensor<float> latent;

 private:
  std::pair<float, float> thresholds() const {
    double mean = 0, above = 0;
    int64_t n = 0;
    for (int64_t i = 0; i < latent.numel(); ++i) mean += std::abs(latent.data()[i]);
    mean /= static_cast<double>(latent.numel());
    const double delta = threshold_ * mean;
    for (int64_t i = 0; i < latent.numel(); ++i)
      if (std::abs(latent.data()[i]) > delta) above += std::abs(latent.data()[i]), ++n;
    return {static_cast<float>(delta), static_cast<float>(n ? above / static_cast<double>(n) : 0.0)};
  }
  double threshold_;
};

class TwnMethod : public quant::Method {
 public:
  std::string name() const override { return "twn"; }
  std::string doc() const override { return "ternary weights {-a, 0, +a} (TWN), full-precision activations"; }
  io::OptionSchema options() const override {
    io::OptionSchema s;
    s.number("threshold", 0.7, "delta = threshold * mean|W| (TWN Eq. 5)", 0.0, 1.0, true)
        .number("latent_weight_decay", 1e-4, "L2 decay of the latent weights", 0.0);
    return s;
  }
  void validate(const quant::QuantSpec& s) const override {
    LOWBIT_CHECK(s.w_bits == 2 && s.a_bits == 32, "method twn expects w_bits 2 and a_bits 32");
  }
  std::shared_ptr<quant::WeightQuantizer> make_weight(const Tensor<float>& init, int, nn::LayerRole,
                                                      const quant::QuantSpec& s) const override {
    return std::make_shared<TwnWeight>(init, s.options.at("threshold").get<double>());
  }
  std::shared_ptr<quant::ActivationQuantizer> make_activation(int, nn::LayerRole, const quant::QuantSpec&) const override {
    return nullptr;
  }
  std::vector<quant::ParamGroupRule> param_groups(const quant::QuantSpec& s) const override {
    return {{"twn_latent", -1, s.options.at("latent_weight_decay").get<double>()}};
  }
  json summary(const nn::Module&, const quant::QuantSpec& s) const override {
    return {{"twn", {{"threshold", s.options.at("threshold")}}}};
  }
};

const bool twn_registered = quant::register_method(std::make_shared<TwnMethod>());

}  // namespace

TEST_CASE("registry: a method registered outside lowbit configures, trains, summarizes and exports", "[registry]") {
  REQUIRE(twn_registered);
  CHECK(quant::has_method("twn"));
  CHECK_THAT(quant::method_list(), Contains("alq") && Contains("apot") && Contains("slb") && Contains("ste") &&
                                       Contains("twn"));
  CHECK_THROWS_WITH(quant::register_method(std::make_shared<TwnMethod>()), Contains("'twn' is already registered"));

  // Config: its block, its options in --help-config, a misspelled option named with the valid ones.
  json given = {{"method", "twn"}, {"w_bits", 2}, {"twn", {{"threshold", 0.6}}}, {"seed", 3}};
  const json cfg = train::resolve_config(given);
  train::check_config(cfg);
  CHECK(cfg.at("twn") == json{{"threshold", 0.6}, {"latent_weight_decay", 1e-4}});
  CHECK_THAT(train::config_table(cfg), Contains("twn.threshold") && Contains("0.6"));
  CHECK_THAT(train::config_help(), Contains("method twn: ternary weights") && Contains("twn.latent_weight_decay"));
  train::apply_override(given, "twn.treshold=0.5");
  CHECK_THROWS_WITH(train::resolve_config(given),
                    Contains("unknown config key 'twn.treshold'") && Contains("threshold, latent_weight_decay"));

  // Model and optimizer through the trainer's entry points: 18 TWN layers, their latents in
  // the method's own group.
  auto model = train::build_model(cfg);
  int twn_layers = 0;
  for (auto& [n, m] : model->named_modules())
    if (auto* q = dynamic_cast<const quant::QuantLayer*>(m)) twn_layers += q->wq->type_name() == "TWN";
  CHECK(twn_layers == 18);
  auto hooks = quant::make_hooks(train::quant_spec(cfg));
  auto opt = train::make_optimizer(*model, cfg, *hooks);
  const auto groups = quant::param_groups(*model, train::quant_spec(cfg), 0.1, 5e-4);
  REQUIRE(groups.size() == 3);
  CHECK(groups[2].params.size() == 18);
  CHECK(groups[2].weight_decay == 1e-4);
  CHECK(groups[0].weight_decay == 5e-4);  // the FP32 first conv and last linear

  // A few steps: the loss is finite and goes down on a fixed batch.
  Generator g(1);
  const Tensor<float> x = Tensor<float>::randn({8, 3, 32, 32}, g);
  const std::vector<int64_t> y{0, 1, 2, 3, 4, 5, 6, 7};
  model->train();
  double first = 0, last = 0;
  for (int step = 0; step < 6; ++step) {
    opt->set_lr(0.05);
    Tensor<float> loss = cross_entropy((*model)(x), y);
    (step == 0 ? first : last) = loss.item();
    REQUIRE(std::isfinite(loss.item()));
    loss.backward();
    opt->step();
    opt->zero_grad(true);
  }
  CHECK(last < first);

  // Summary: 2-bit layers counted at 2 bits + one scale, the method's own entry.
  const json s = train::model_summary(*model, cfg);
  CHECK(s.at("twn").at("threshold") == 0.6);
  int ternary_rows = 0;
  for (auto& l : s.at("layers"))
    if (l.at("quantizer") == "TWN") {
      ++ternary_rows;
      CHECK(l.at("w_bits") == 2);
    }
  CHECK(ternary_rows == 18);
  CHECK(s.at("weight_storage").at("avg_weight_bits").get<double>() < 3.0);

  // Export: the frozen model rebuilt from the file gives the trained model's logits exactly.
  const std::string path = (std::filesystem::temp_directory_path() / "lowbit_twn_test.lbq").string();
  const quant::QuantSpec spec = quant::resolve(train::quant_spec(cfg));
  quant::export_quantized(*model, path, {{"format", train::kRunFormat}, {"config", cfg}, {"spec", spec.to_json()}});
  const quant::QuantizedModelFile f = quant::read_quantized(path);
  CHECK(f.weights.size() == 18);
  const train::TrainedModel t = train::load_trained(path, {});
  model->eval();
  t.model->eval();
  NoGradGuard no_grad;
  CHECK((*model)(x).to_vector() == (*t.model)(x).to_vector());
  std::filesystem::remove(path);
}

TEST_CASE("option schema: defaults, checked values, errors naming the key and what is valid", "[registry][config]") {
  io::OptionSchema s;
  s.choice("mode", "a", {"a", "b"}, "a mode")
      .number("rate", 0.5, "a rate", 0.0, 1.0, true)
      .integer("count", 3, "a count", 1)
      .boolean("on", true, "a switch")
      .int_list("at", {}, "epochs", 0)
      .text("path", "", "a file");
  CHECK(s.defaults() == json{{"mode", "a"}, {"rate", 0.5}, {"count", 3}, {"on", true}, {"at", json::array()}, {"path", ""}});
  const json r = s.resolve({{"rate", 1}, {"at", {3, 5}}}, "blk");
  CHECK(r.at("rate").is_number_float());  // an int given for a number becomes a number
  CHECK(r.at("rate") == 1.0);
  CHECK(r.at("at") == json{3, 5});
  CHECK(r.at("mode") == "a");
  CHECK_THROWS_WITH(s.resolve({{"mode", "c"}}, "blk"), Contains("'blk.mode' = \"c\": expected one of a | b"));
  CHECK_THROWS_WITH(s.resolve({{"rate", 0}}, "blk"), Contains("'blk.rate' = 0: expected 0 < v <= 1"));
  CHECK_THROWS_WITH(s.resolve({{"count", 2.5}}, "blk"), Contains("'blk.count' = 2.5: expected an integer"));
  CHECK_THROWS_WITH(s.resolve({{"on", "yes"}}, "blk"), Contains("'blk.on' = \"yes\": expected true or false"));
  CHECK_THROWS_WITH(s.resolve({{"at", {1, -2}}}, "blk"), Contains("'blk.at' = [1,-2]: expected a list of integers"));
  CHECK_THROWS_WITH(s.resolve({{"nope", 1}}, "blk"), Contains("unknown config key 'blk.nope'") && Contains("mode, rate, count"));
  CHECK_THROWS_WITH(s.number("bad", -1.0, "x", 0.0), Contains("(default of).bad"));
  CHECK_THAT(s.markdown("blk"), Contains("| `blk.rate` | number | `0.5` | 0 < v <= 1 | a rate |") && Contains("| a \\| b |"));
}

TEST_CASE("trainer config: blocks per method, old flat keys named with their new place, old checkpoints migrated", "[registry][config]") {
  CHECK_THROWS_WITH(train::resolve_config({{"slb_schedule", "exp"}}), Contains("'slb_schedule' is now 'slb.schedule'"));
  CHECK_THROWS_WITH(train::resolve_config({{"a_quant", "pact"}}), Contains("'slb.a_quant' or 'ste.a_quant'"));
  CHECK_THROWS_WITH(train::resolve_config({{"epoch", 3}}), Contains("unknown config key 'epoch'") && Contains("epochs"));
  // Only the chosen method's block is kept; another method's block is checked, then dropped.
  const json c = train::resolve_config({{"method", "slb"}, {"w_bits", 1}, {"a_bits", 1}, {"apot", {{"wn", "off"}}}});
  CHECK(c.contains("slb"));
  CHECK(!c.contains("apot"));
  CHECK(c.at("first_layer") == "fp32");  // SLB's default policy
  CHECK_THROWS_WITH(train::resolve_config({{"apot", {{"wn", "maybe"}}}}), Contains("'apot.wn' = \"maybe\""));
  // ALQ quantizes every layer unless told otherwise.
  CHECK(train::resolve_config({{"method", "alq"}, {"w_bits", 4}}).at("first_layer") == "same");
  // --set: dotted keys, text kept as text for string options.
  json g = json::object();
  train::apply_override(g, "slb.schedule=sin");
  train::apply_override(g, "out=2024");
  CHECK(g == json{{"slb", {{"schedule", "sin"}}}, {"out", "2024"}});
  CHECK_THROWS_WITH(train::apply_override(g, "slbb.schedule=sin"), Contains("'slbb' is not a method"));
  // A config as an older checkpoint stored it (flat keys) becomes today's.
  const json old = {{"method", "alq"}, {"w_bits", 4}, {"a_bits", 32}, {"first_layer", "fp32"}, {"alq_first_layer", "same"},
                    {"alq_rounds", 2}, {"alq_init", "x.bin"}, {"slb_schedule", "exp"}, {"a_quant", "dorefa"}, {"lr", 0.1}};
  const json m = train::migrate_flat_config(old);
  CHECK(m == json{{"method", "alq"}, {"w_bits", 4}, {"a_bits", 32}, {"first_layer", "same"}, {"alq", {{"rounds", 2}}},
                  {"lr", 0.1}});
  CHECK(train::resolve_config(m).at("alq").at("rounds") == 2);
}
