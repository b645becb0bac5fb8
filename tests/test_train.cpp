// The training library (include/lowbit/train/, quant/init_from.hpp, io/atomic_write.hpp): the
// pieces train_cifar is built from, tested without running it.
#include <sys/stat.h>

#include <catch2/catch.hpp>
#include <cmath>
#include <cstdint>
#include <filesystem>
#include <limits>
#include <fstream>
#include <lowbit/lowbit.hpp>
#include <string>

using namespace lowbit;
using Catch::Contains;
using json = nlohmann::json;
namespace fs = std::filesystem;

namespace {
fs::path temp_dir(const std::string& name) {
  const fs::path d = fs::temp_directory_path() / ("lowbit_test_train_" + name);
  fs::remove_all(d);
  fs::create_directories(d);
  return d;
}
std::string slurp(const fs::path& p) {
  std::ifstream in(p);
  return std::string(std::istreambuf_iterator<char>(in), {});
}
}  // namespace

TEST_CASE("atomic write: the file is replaced whole, no temporary is left, a bad folder is an error", "[train][io]") {
  const fs::path d = temp_dir("atomic");
  const std::string p = (d / "a.json").string();
  io::write_json_atomic(p, {{"x", 1}});
  io::write_file_atomic(p, "second\n", "test");
  CHECK(slurp(p) == "second\n");
  CHECK(!fs::exists(p + ".tmp"));
  io::write_file_atomic(p, "l1\nl2\nl3\n", "test");
  io::keep_lines(p, 2);
  CHECK(slurp(p) == "l1\nl2\n");
  CHECK_THROWS_WITH(io::write_file_atomic((d / "no" / "such" / "f").string(), "x", "test"),
                    Contains("test: cannot open") && Contains("such"));
  fs::remove_all(d);
}

TEST_CASE("run checkpoint: written and read back with the library's layout; another file is refused", "[train]") {
  const fs::path d = temp_dir("ckpt");
  const json cfg = train::resolve_config({{"method", "ste"}, {"w_bits", 2}, {"a_bits", 2}});
  auto model = train::build_model(cfg);
  auto hooks = quant::make_hooks(train::quant_spec(cfg));
  auto opt = train::make_optimizer(*model, cfg, *hooks);
  const json run = {{"epoch", 3}, {"step", 30}};
  const std::string path = (d / "checkpoint.bin").string();
  train::save_run_checkpoint(path, cfg, *model, *opt, "loader-state", run, {{"k", 1}});
  const train::RunCheckpoint r = train::read_run_checkpoint(path);
  CHECK(r.config == cfg);
  CHECK(r.run == run);
  CHECK(r.loader == "loader-state");
  CHECK(r.method_state == json{{"k", 1}});
  CHECK(r.model.size() == model->state_dict().size());
  CHECK(r.model.at("layer1.0.conv1.wq.latent").to_vector() == model->state_dict().at("layer1.0.conv1.wq.latent").to_vector());
  // A checkpoint of another kind is refused with its name.
  io::Checkpoint other;
  other.meta = {{"format", "something.else"}};
  io::save_checkpoint((d / "other.bin").string(), other);
  CHECK_THROWS_WITH(train::read_run_checkpoint((d / "other.bin").string()),
                    Contains("other.bin") && Contains("was not written by train_cifar"));
  // load_trained rebuilds the model from the stored config.
  const train::TrainedModel t = train::load_trained(path, {});
  CHECK(t.cfg.at("method") == "ste");
  CHECK(t.model->state_dict().at("fc.weight").to_vector() == model->state_dict().at("fc.weight").to_vector());
  fs::remove_all(d);
}

TEST_CASE("init_from: FP32 weights -> quantized latents by name, quantizers that start from a float weight, a report", "[train][quant]") {
  const json fp_cfg = train::resolve_config({{"seed", 1}});
  auto fp = train::build_model(fp_cfg);
  // DoReFa: "X.weight" -> "X.wq.latent" for the 18 quantized layers; the rest by name.
  auto q = train::build_model(train::resolve_config({{"method", "ste"}, {"w_bits", 2}, {"a_bits", 32}, {"seed", 2}}));
  const quant::InitReport r = quant::init_from(*q, fp->state_dict());
  CHECK(r.renamed.size() == 18);
  CHECK(r.missing.empty());
  CHECK(r.extra.empty());
  CHECK(r.loaded == r.total);
  CHECK(q->state_dict().at("layer2.1.conv2.wq.latent").to_vector() == fp->state_dict().at("layer2.1.conv2.weight").to_vector());
  CHECK_THAT(r.text("fp.bin"), Contains("renamed (18)") && Contains("missing from the checkpoint, kept at their initial values (0)"));
  // ALQ: the quantizers hold bases, not a latent weight; they sketch the FP32 weight
  // (WeightQuantizer::load_float_weight), and the BN statistics are copied.
  auto a = train::build_model(train::resolve_config({{"method", "alq"}, {"w_bits", 3}, {"seed", 2}}));
  const quant::InitReport ra = quant::init_from(*a, fp->state_dict());
  CHECK(ra.started.size() == 20);  // every layer: ALQ quantizes the first and last too
  CHECK(ra.missing.empty());
  CHECK(ra.loaded == ra.total);
  CHECK(a->state_dict().at("bn1.running_var").to_vector() == fp->state_dict().at("bn1.running_var").to_vector());
  // The sketch is close to the FP32 weight: 3 bases per group.
  Tensor<float> w;
  for (auto& [n, m] : a->named_modules())
    if (n == "layer1.0.conv1") w = const_cast<quant::QuantLayer*>(dynamic_cast<const quant::QuantLayer*>(m))->weight();
  const auto ref = fp->state_dict().at("layer1.0.conv1.weight").to_vector(), got = w.to_vector();
  double err = 0, norm = 0;
  for (size_t i = 0; i < ref.size(); ++i) err += (ref[i] - got[i]) * (ref[i] - got[i]), norm += ref[i] * ref[i];
  CHECK(err < 0.1 * norm);
}

TEST_CASE("evaluate: loss and accuracy of a model on a dataset; flip TTA reports both views", "[train]") {
  data::Dataset ds;
  Generator g(5);
  for (int i = 0; i < 10 * 3072; ++i) ds.images.push_back(static_cast<uint8_t>(g.next_u64() % 256));
  for (int i = 0; i < 10; ++i) ds.labels.push_back(i % 10), ds.class_names.push_back("c" + std::to_string(i));
  ds.source = "random";
  auto model = train::build_model(train::resolve_config({{"seed", 3}}));
  model->train();
  const train::EvalResult r = train::evaluate(*model, ds, 4);
  CHECK(model->is_training());  // restored
  // By hand: all images in one un-augmented batch, eval mode.
  data::LoaderOptions lo;
  lo.batch_size = 10;
  lo.shuffle = false;
  lo.augment = false;
  data::DataLoader loader(std::make_shared<const data::Dataset>(ds), lo);
  data::Batch b;
  REQUIRE(loader.next(b));
  model->eval();
  NoGradGuard no_grad;
  const Tensor<float> logits = (*model)(b.images);
  const Tensor<int64_t> pred = argmax(logits, 1);
  int correct = 0;
  for (int i = 0; i < 10; ++i) correct += pred.data()[i] == ds.labels[static_cast<size_t>(i)];
  CHECK(r.acc == Approx(correct / 10.0));
  CHECK(r.loss == Approx(cross_entropy(logits, b.labels).item()).epsilon(1e-5));
  const train::EvalResult f = train::evaluate(*model, ds, 4, true);
  CHECK(f.disagree >= 0.0);
  CHECK(f.disagree <= 1.0);
  CHECK(std::isfinite(f.loss));
}

// Hostile or damaged input (hardening): each gives one error naming the file or key.
TEST_CASE("readers refuse negative or huge offsets and shapes, and non-finite weights", "[train][errors]") {
  const fs::path d = temp_dir("hostile");
  auto write = [&](const std::string& name, const json& tensors, size_t data_bytes) {
    const std::string p = (d / name).string();
    io::write_framed(p, io::kCheckpointMagic, io::kCheckpointVersion,
                     {{"meta", {{"format", train::kRunFormat}}}, {"tensors", tensors}}, std::string(data_bytes, '\0'),
                     "test");
    return p;
  };
  // An offset of -4 used to wrap past the bounds check.
  const std::string neg = write("neg.bin", json::array({{{"name", "a"}, {"shape", {2}}, {"offset", -4}}}), 8);
  CHECK_THROWS_WITH(io::load_checkpoint(neg), Contains("neg.bin") && Contains("offset -4 is not a non-negative integer"));
  const std::string far = write("far.bin", json::array({{{"name", "a"}, {"shape", {2}}, {"offset", 4}}}), 8);
  CHECK_THROWS_WITH(io::load_checkpoint(far), Contains("far.bin") && Contains("outside the data section of 8 bytes"));
  const std::string big = write("big.bin", json::array({{{"name", "a"}, {"shape", {1000000, 1000000, 1000000}}, {"offset", 0}}}), 8);
  CHECK_THROWS_WITH(io::load_checkpoint(big), Contains("big.bin") && Contains("needs more than the 8 bytes"));
  const std::string dim = write("dim.bin", json::array({{{"name", "a"}, {"shape", {2, -1}}, {"offset", 0}}}), 8);
  CHECK_THROWS_WITH(io::load_checkpoint(dim), Contains("dim.bin") && Contains("not a non-negative integer"));
  // A NaN weight in a run checkpoint: refused when the run is resumed, evaluated or used as a start.
  const json cfg = train::resolve_config({{"seed", 4}});
  auto model = train::build_model(cfg);
  auto hooks = quant::make_hooks(train::quant_spec(cfg));
  auto opt = train::make_optimizer(*model, cfg, *hooks);
  {
    NoGradGuard no_grad;
    model->state_dict().at("layer2.0.conv1.weight").data()[7] = std::nanf("");
  }
  const std::string nan_path = (d / "nan.bin").string();
  train::save_run_checkpoint(nan_path, cfg, *model, *opt, "", {{"epoch", 1}, {"step", 1}}, json::object());
  CHECK_THROWS_WITH(train::read_run_checkpoint(nan_path), Contains("nan.bin") && Contains("'model/layer2.0.conv1.weight'") &&
                                                              Contains("at element 7"));
  fs::remove_all(d);
}

TEST_CASE("config: nesting, duplicate keys, size and integer ranges are checked", "[train][config][errors]") {
  CHECK_THROWS_WITH(io::parse_config_text(std::string(100000, '[') + std::string(100000, ']'), "cfg.json"),
                    Contains("cfg.json: nested deeper than 32 levels"));
  CHECK_THROWS_WITH(io::parse_config_text("{\"lr\": 0.1, \"lr\": 0.2}", "cfg.json"),
                    Contains("cfg.json: key 'lr' appears twice in one object"));
  CHECK_THROWS_WITH(io::parse_config_text("{\"slb\": {\"t_end\": 1, \"t_end\": 2}}", "cfg.json"), Contains("'t_end' appears twice"));
  CHECK(io::parse_config_text("{\"a\": {\"x\": 1}, \"b\": {\"x\": 2}}", "cfg.json").at("b").at("x") == 2);  // same key, two objects
  CHECK_THROWS_WITH(io::parse_config_text(std::string(2 << 20, ' '), "cfg.json"), Contains("limit of 1 MiB"));
  // w_bits = 2^32 + 2 once trained at 2 bits; epochs = INT64_MAX and warmup 1e300 were undefined behaviour.
  CHECK_THROWS_WITH(train::resolve_config({{"w_bits", 4294967298LL}}), Contains("'w_bits' = 4294967298: expected 1 <= v <= 32"));
  CHECK_THROWS_WITH(train::resolve_config({{"epochs", INT64_MAX}}), Contains("'epochs' = 9223372036854775807"));
  CHECK_THROWS_WITH(train::resolve_config({{"warmup_epochs", 1e300}}), Contains("'warmup_epochs' = 1e+300"));
  CHECK_THROWS_WITH(train::resolve_config({{"lr", std::numeric_limits<double>::infinity()}}), Contains("'lr'"));
}

// Divergence (issue 34 item 2): a loop finds the tensor or layer where NaN/inf first appeared.
TEST_CASE("non-finite checks: first_nonfinite, FiniteCheck and FiniteWatch name the tensor or layer", "[train][errors]") {
  const float inf = std::numeric_limits<float>::infinity(), big = std::numeric_limits<float>::max();
  Tensor<float> t = Tensor<float>::from_vector({5}, {1.0f, -big, big, std::numeric_limits<float>::denorm_min(), 0.0f});
  CHECK(nn::first_nonfinite(t) == -1);  // the largest and the smallest floats are finite
  for (float bad : {inf, -inf, std::nanf("")}) {
    t.data()[3] = bad;
    CHECK(nn::first_nonfinite(t) == 3);
  }
  CHECK(nn::first_nonfinite(Tensor<float>()) == -1);

  Generator gen(3);
  auto model = std::make_shared<nn::Sequential>();
  auto l0 = model->push_back(std::make_shared<nn::Linear>(4, 3, true, gen));
  model->push_back(std::make_shared<nn::ReLU>());
  auto l2 = model->push_back(std::make_shared<nn::Linear>(3, 2, true, gen));
  const train::FiniteCheck check(*model);
  const Tensor<float> x = Tensor<float>::randn({2, 4}, gen);
  // All finite: every check passes and the watch sees nothing.
  Tensor<float> loss = sum((*model)(x));
  loss.backward();
  CHECK_NOTHROW(check.gradients("at step 1"));
  CHECK_NOTHROW(check.weights("at step 1"));
  CHECK(check.first_bad_output(*model, x).empty());
  // A NaN gradient of the second layer's bias.
  l2->state_dict().at("bias").grad().data()[1] = std::nanf("");
  CHECK_THROWS_WITH(check.gradients("at step 1"), Contains("the gradient of '2.bias' holds nan at element 1 at step 1"));
  {
    NoGradGuard no_grad;
    l0->state_dict().at("weight").data()[5] = inf;  // an inf weight in the first layer
  }
  CHECK_THROWS_WITH(check.weights("at step 2"), Contains("'0.weight' holds inf at element 5 after the optimizer step at step 2"));
  // The diagnostic forward names the first layer whose output breaks, not the ReLU or the model after it.
  CHECK_THAT(check.first_bad_output(*model, x), Contains("'0' (Linear) outputs"));
  // Without a watch, module outputs are not inspected (and no watch is left behind).
  CHECK(nn::FiniteWatch::active() == nullptr);
}

// Found by tests/fuzz/fuzz_checkpoint.cpp: a meta entry of the wrong type threw nlohmann's
// type_error past every handler (std::terminate). And a FIFO given as a checkpoint hung.
TEST_CASE("run checkpoints: wrong JSON types in the meta and special files are refused with one line", "[train][errors]") {
  const fs::path d = temp_dir("meta_types");
  auto write = [&](const std::string& name, const json& meta) {
    const std::string p = (d / name).string();
    io::write_framed(p, io::kCheckpointMagic, io::kCheckpointVersion, {{"meta", meta}, {"tensors", json::array()}}, "",
                     "test");
    return p;
  };
  const json cfg = train::resolve_config({{"seed", 4}});
  const json good_run = {{"epoch", 1}, {"step", 2}};
  CHECK_NOTHROW(train::read_run_checkpoint(
      write("good.bin", {{"format", train::kRunFormat}, {"config", cfg}, {"run", good_run}, {"loader", "x"}})));
  const std::string fmt = write("fmt.bin", {{"format", {{"a", 1}}}, {"config", cfg}, {"run", good_run}, {"loader", "x"}});
  CHECK_THROWS_WITH(train::read_run_checkpoint(fmt), Contains("fmt.bin") && Contains("was not written by train_cifar"));
  CHECK_THROWS_WITH(train::read_run_checkpoint(write("arr.bin", json::array({1, 2}))), Contains("arr.bin") &&
                                                                                        Contains("was not written by train_cifar"));
  const std::string ep = write("ep.bin", {{"format", train::kRunFormat}, {"config", cfg}, {"run", {{"epoch", "1"}, {"step", 2}}},
                                          {"loader", "x"}});
  CHECK_THROWS_WITH(train::read_run_checkpoint(ep), Contains("ep.bin") && Contains("run counter \"epoch\""));
  const std::string wall = write("wall.bin", {{"format", train::kRunFormat}, {"config", cfg},
                                              {"run", {{"epoch", 1}, {"step", 2}, {"wall_s", "long"}}}, {"loader", "x"}});
  CHECK_THROWS_WITH(train::read_run_checkpoint(wall), Contains("wall.bin") && Contains("run value \"wall_s\" is not a number"));
  // A FIFO is refused without being opened (opening one for reading blocks until a writer comes).
  const std::string fifo = (d / "fifo.bin").string();
  REQUIRE(::mkfifo(fifo.c_str(), 0600) == 0);
  CHECK_THROWS_WITH(train::read_run_checkpoint(fifo), Contains("fifo.bin") && Contains("is not a regular file"));
  CHECK_FALSE(io::has_magic(fifo, io::kCheckpointMagic));
  fs::remove_all(d);
}
