// PyTorch parity: lowbit's forward outputs and gradients against PyTorch's, op by op, on
// fixed shapes (batch 1, channel counts that are not multiples of 8, stride 2, padding 0/1,
// odd spatial sizes, 1x1 kernels, ...).
//
// The fixtures come from tests/pytorch/make_fixtures.py (format described there): for every
// case the float32 inputs, a random cotangent, and PyTorch's output and gradients of
// <output, cotangent>. They are generated at test time, never committed: ctest runs the
// `pytorch_fixtures` test (FIXTURES_SETUP) before this `pytorch_parity` executable.
// Directory: $LOWBIT_PYTORCH_FIXTURES, else the compile-time default
// LOWBIT_PYTORCH_FIXTURES_DIR (<build>/pytorch_fixtures). Missing fixtures are a failure.
//
// Metric, per compared tensor (output, updated running stat, or gradient):
//     rel_err = max_i |lowbit_i - torch_i| / max(max_i |torch_i|, 1e-30)  <=  1e-4
// with shapes required to match exactly and any NaN counted as a failure.
#include <catch2/catch.hpp>
#include <lowbit/lowbit.hpp>
#include <lowbit/ops/conv.hpp>
#include <nlohmann/json.hpp>

#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <map>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#ifndef LOWBIT_PYTORCH_FIXTURES_DIR
#define LOWBIT_PYTORCH_FIXTURES_DIR ""
#endif

using namespace lowbit;
using F = Tensor<float>;
using json = nlohmann::json;

namespace {

constexpr double kTolerance = 1e-4;
constexpr double kTiny = 1e-30;

std::string fixture_dir() {
  const char* env = std::getenv("LOWBIT_PYTORCH_FIXTURES");
  return (env && *env) ? std::string(env) : std::string(LOWBIT_PYTORCH_FIXTURES_DIR);
}

std::string how_to_generate(const std::string& dir) {
  return "Generate them with\n    /usr/bin/python3 tests/pytorch/make_fixtures.py " +
         (dir.empty() ? std::string("<dir>") : dir) +
         "\n(needs PyTorch: Debian package python3-torch, see scripts/install_deps.sh), or run "
         "`ctest -R pytorch` in the build directory, which does that first. Point "
         "LOWBIT_PYTORCH_FIXTURES at another directory to use fixtures from there.";
}

// One case: its attributes and named float32 tensors.
struct Fixture {
  std::string name, op;
  json attrs;
  std::map<std::string, F> tensors;
  std::set<std::string> compared;

  bool has(const std::string& k) const { return tensors.count(k) != 0; }
  // A fresh copy (the fixture's own data is never handed to lowbit).
  F get(const std::string& k) const {
    auto it = tensors.find(k);
    if (it == tensors.end()) FAIL("case " << name << ": fixture has no tensor '" << k << "'");
    return it->second.clone();
  }
  F leaf(const std::string& k) const { return get(k).set_requires_grad(); }
  F optional_leaf(const std::string& k) const { return has(k) ? leaf(k) : F(); }
};

bool little_endian() {
  const uint32_t one = 1;
  unsigned char b;
  std::memcpy(&b, &one, 1);
  return b == 1;
}

Fixture load_fixture(const std::string& dir, const std::string& name) {
  const std::string path = dir + "/" + name + ".bin";
  std::ifstream in(path, std::ios::binary);
  if (!in) FAIL("cannot open fixture file " << path << " listed in the manifest. " << how_to_generate(dir));
  std::string header_line;
  std::getline(in, header_line);
  json header;
  try {
    header = json::parse(header_line);
  } catch (const std::exception& e) {
    FAIL("fixture " << path << ": first line is not JSON (" << e.what() << ")");
  }
  Fixture fx;
  fx.name = header.at("name").get<std::string>();
  fx.op = header.at("op").get<std::string>();
  fx.attrs = header.at("attrs");
  for (const auto& t : header.at("tensors")) {
    Shape shape = t.at("shape").get<Shape>();
    F tensor = F::zeros(shape);
    in.read(reinterpret_cast<char*>(tensor.data()), static_cast<std::streamsize>(tensor.numel() * sizeof(float)));
    if (!in) FAIL("fixture " << path << ": file ends inside tensor '" << t.at("name").get<std::string>() << "'");
    fx.tensors.emplace(t.at("name").get<std::string>(), tensor);
  }
  if (in.peek() != std::char_traits<char>::eof())
    FAIL("fixture " << path << ": trailing bytes after the last tensor (header and data disagree)");
  return fx;
}

// All fixtures of one op, in manifest order. FAILs (never skips) when there are none.
std::vector<Fixture> load_op(const std::string& op) {
  REQUIRE(little_endian());  // the fixtures are little-endian float32
  const std::string dir = fixture_dir();
  const std::string manifest_path = dir + "/manifest.json";
  std::ifstream in(manifest_path);
  if (!in)
    FAIL("PyTorch parity fixtures not found: no " << manifest_path
         << (dir.empty() ? " (LOWBIT_PYTORCH_FIXTURES is unset and no default directory was compiled in)" : "")
         << ". " << how_to_generate(dir));
  json manifest = json::parse(in);
  std::vector<Fixture> out;
  for (const auto& name : manifest.at("cases")) {
    Fixture fx = load_fixture(dir, name.get<std::string>());
    if (fx.op == op) out.push_back(std::move(fx));
  }
  if (out.empty()) FAIL("no fixtures for op '" << op << "' in " << manifest_path << ". " << how_to_generate(dir));
  return out;
}

// The metric in the file comment. Returns the relative error (NaN stays NaN).
double rel_err(const F& got, const F& want) {
  double diff = 0, scale = 0;
  for (int64_t i = 0; i < want.numel(); ++i) {
    const double a = got.data()[i], b = want.data()[i];
    const double d = std::abs(a - b);
    if (std::isnan(d)) return d;
    diff = std::max(diff, d);
    scale = std::max(scale, std::abs(b));
  }
  return diff / std::max(scale, kTiny);
}

// Compares lowbit's `got` with the fixture tensor `key`.
void expect_close(Fixture& fx, const std::string& key, const F& got, double tolerance = kTolerance) {
  INFO("case " << fx.name << " (" << fx.op << "), tensor " << key);
  fx.compared.insert(key);
  REQUIRE(fx.has(key));
  const F& want = fx.tensors.at(key);
  REQUIRE(got.defined());
  REQUIRE(shape_str(got.shape()) == shape_str(want.shape()));
  const double err = rel_err(got, want);
  INFO("relative error " << err << " (max |lowbit - torch| / max |torch|), tolerance " << tolerance);
  CHECK(err <= tolerance);
}

// Every output and gradient PyTorch produced must have been compared.
void expect_all_compared(const Fixture& fx) {
  for (const auto& kv : fx.tensors) {
    const std::string& k = kv.first;
    const bool is_result = k == "y" || k.rfind("grad_", 0) == 0 ||
                           (k.size() > 4 && k.compare(k.size() - 4, 4, "_out") == 0);
    INFO("case " << fx.name << ": PyTorch result '" << k << "' was never compared with lowbit");
    if (is_result) CHECK(fx.compared.count(k) == 1);
  }
}

// Runs y.backward(cotangent), then compares y and the gradients of the given leaves.
void backward_and_compare(Fixture& fx, const F& y, const std::vector<std::pair<std::string, F>>& leaves) {
  expect_close(fx, "y", y);
  y.backward(fx.get("cotangent"));
  for (const auto& kv : leaves)
    if (kv.second.defined()) expect_close(fx, "grad_" + kv.first, kv.second.grad());
  expect_all_compared(fx);
}

double attr(const Fixture& fx, const char* k) { return fx.attrs.at(k).get<double>(); }
int64_t iattr(const Fixture& fx, const char* k) { return fx.attrs.at(k).get<int64_t>(); }

// The unary ops whose lowbit call takes only x (and attributes).
template <class Fn>
void unary_cases(const std::string& op, Fn fn) {
  for (Fixture& fx : load_op(op)) {
    F x = fx.leaf("x");
    backward_and_compare(fx, fn(fx, x), {{"x", x}});
  }
}

}  // namespace

TEST_CASE("pytorch parity: conv2d", "[pytorch][conv]") {
  for (Fixture& fx : load_op("conv2d")) {
    F x = fx.leaf("x"), w = fx.leaf("w"), b = fx.optional_leaf("b");
    Conv2dOptions opt{iattr(fx, "stride_h"), iattr(fx, "stride_w"), iattr(fx, "pad_h"), iattr(fx, "pad_w")};
    backward_and_compare(fx, conv2d(x, w, b, opt), {{"x", x}, {"w", w}, {"b", b}});
  }
}

TEST_CASE("pytorch parity: linear", "[pytorch][linear]") {
  for (Fixture& fx : load_op("linear")) {
    F x = fx.leaf("x"), w = fx.leaf("w"), b = fx.optional_leaf("b");
    backward_and_compare(fx, linear(x, w, b), {{"x", x}, {"w", w}, {"b", b}});
  }
}

TEST_CASE("pytorch parity: batch_norm (2-d and 4-d, training and eval, running stats)", "[pytorch][batch_norm]") {
  for (Fixture& fx : load_op("batch_norm")) {
    F x = fx.leaf("x"), gamma = fx.optional_leaf("gamma"), beta = fx.optional_leaf("beta");
    F running_mean = fx.get("running_mean"), running_var = fx.get("running_var");
    BatchNormOptions opt{fx.attrs.at("training").get<bool>(), attr(fx, "momentum"), attr(fx, "eps")};
    F y = batch_norm(x, gamma, beta, running_mean, running_var, opt);
    // Updated in place in training, untouched in eval; PyTorch's values either way.
    expect_close(fx, "running_mean_out", running_mean);
    expect_close(fx, "running_var_out", running_var);
    backward_and_compare(fx, y, {{"x", x}, {"gamma", gamma}, {"beta", beta}});
  }
}

TEST_CASE("pytorch parity: max_pool2d", "[pytorch][pool]") {
  unary_cases("max_pool2d", [](const Fixture& fx, const F& x) {
    return max_pool2d(x, iattr(fx, "kh"), iattr(fx, "kw"), iattr(fx, "sh"), iattr(fx, "sw"));
  });
}

TEST_CASE("pytorch parity: avg_pool2d", "[pytorch][pool]") {
  unary_cases("avg_pool2d", [](const Fixture& fx, const F& x) {
    return avg_pool2d(x, iattr(fx, "kh"), iattr(fx, "kw"), iattr(fx, "sh"), iattr(fx, "sw"));
  });
}

TEST_CASE("pytorch parity: global_avg_pool2d", "[pytorch][pool]") {
  unary_cases("global_avg_pool2d", [](const Fixture&, const F& x) { return global_avg_pool2d(x); });
}

TEST_CASE("pytorch parity: relu", "[pytorch][activation]") {
  unary_cases("relu", [](const Fixture&, const F& x) { return relu(x); });
}

TEST_CASE("pytorch parity: hardtanh (gradient 0 on the boundaries)", "[pytorch][activation]") {
  unary_cases("hardtanh", [](const Fixture& fx, const F& x) {
    return hardtanh(x, static_cast<float>(attr(fx, "lo")), static_cast<float>(attr(fx, "hi")));
  });
}

TEST_CASE("pytorch parity: clamp (gradient 1 on the boundaries)", "[pytorch][activation]") {
  unary_cases("clamp", [](const Fixture& fx, const F& x) {
    return clamp(x, static_cast<float>(attr(fx, "lo")), static_cast<float>(attr(fx, "hi")));
  });
}

TEST_CASE("pytorch parity: softmax", "[pytorch][softmax]") {
  unary_cases("softmax", [](const Fixture& fx, const F& x) { return softmax(x, iattr(fx, "axis")); });
}

TEST_CASE("pytorch parity: log_softmax", "[pytorch][softmax]") {
  unary_cases("log_softmax", [](const Fixture& fx, const F& x) { return log_softmax(x, iattr(fx, "axis")); });
}

TEST_CASE("pytorch parity: cross_entropy (mean, label smoothing)", "[pytorch][cross_entropy]") {
  for (Fixture& fx : load_op("cross_entropy")) {
    F logits = fx.leaf("logits");
    const auto labels = fx.attrs.at("labels").get<std::vector<int64_t>>();
    backward_and_compare(fx, cross_entropy(logits, labels, attr(fx, "label_smoothing")), {{"logits", logits}});
  }
}

// Negative control: the fixtures really contain the boundary values where hardtanh's and
// clamp's gradients differ, and the metric notices. lowbit's hardtanh on the clamp cases
// must be far outside the tolerance in the gradient (and equal in the forward output).
TEST_CASE("pytorch parity: the comparison detects a hardtanh/clamp boundary mix-up", "[pytorch][activation]") {
  for (Fixture& fx : load_op("clamp")) {
    INFO("case " << fx.name);
    F x = fx.leaf("x");
    F y = hardtanh(x, static_cast<float>(attr(fx, "lo")), static_cast<float>(attr(fx, "hi")));
    CHECK(rel_err(y, fx.tensors.at("y")) <= kTolerance);
    y.backward(fx.get("cotangent"));
    CHECK(rel_err(x.grad(), fx.tensors.at("grad_x")) > 100 * kTolerance);
  }
}

// The whole model at the trainer's shapes: a ResNet-20 (option A) training step at batch 128
// on 32x32 inputs, from PyTorch's parameters and running statistics. Compared: the logits,
// the mean cross-entropy, every parameter's gradient and every BN's updated running
// statistics. The reference is PyTorch in float64 and each tensor has its own tolerance
// (see model_cases in make_fixtures.py: 1e-4 on the forward results; the weight gradients
// of a whole step are ill-conditioned in float32, so theirs are looser).
TEST_CASE("pytorch parity: a ResNet-20 training step at batch 128 (every gradient, running stats)",
          "[pytorch][model]") {
  for (Fixture& fx : load_op("resnet20_step")) {
    Generator gen(0);
    auto model = nn::resnet20(gen);
    nn::StateDict sd;
    for (auto& kv : model->named_parameters()) sd.emplace(kv.first, fx.get("param." + kv.first));
    for (auto& kv : model->named_buffers()) sd.emplace(kv.first, fx.get("buffer." + kv.first));
    model->load_state_dict(sd);
    model->train();
    const auto labels = fx.attrs.at("labels").get<std::vector<int64_t>>();
    F logits = (*model)(fx.get("x"));
    F loss = cross_entropy(logits, labels);
    loss.backward();

    const json& tol = fx.attrs.at("tolerance");
    auto compare = [&](const std::string& key, const F& got) {
      expect_close(fx, key, got, tol.at(key).get<double>());
    };
    compare("y", logits);
    compare("loss_out", reshape(loss, {1}));
    for (auto& kv : model->named_parameters()) compare("grad_" + kv.first, kv.second.grad());
    for (auto& kv : model->named_buffers()) compare("buffer." + kv.first + "_out", kv.second);
    expect_all_compared(fx);
  }
}
