// Optimizers against their update formulas, schedules at chosen steps, checkpoint files
// (round trip, truncation, wrong files) and typed config overrides.
#include <catch2/catch.hpp>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <lowbit/io/checkpoint.hpp>
#include <lowbit/lowbit.hpp>
#include <lowbit/optim/adam.hpp>
#include <lowbit/optim/schedule.hpp>
#include <lowbit/optim/sgd.hpp>

using namespace lowbit;
using Catch::Matchers::Contains;
namespace fs = std::filesystem;
using json = nlohmann::json;

namespace {
fs::path temp_dir(const std::string& tag) {
  fs::path d = fs::temp_directory_path() / ("lowbit_test_" + tag + "_" + std::to_string(::getpid()));
  fs::create_directories(d);
  return d;
}
}  // namespace

TEST_CASE("Adam, AMSGrad and AdamW follow PyTorch's update", "[optim]") {
  for (int variant = 0; variant < 3; ++variant) {
    const bool ams = variant == 1, decoupled = variant == 2;
    auto p = Tensor<float>({3}, {1.0f, -0.5f, 2.0f}).set_requires_grad();
    optim::Adam opt({{{{"p", p}}, 0.01, 0.1}}, {0.9, 0.999, 1e-8, ams, decoupled});
    std::vector<double> w = {1.0, -0.5, 2.0}, m(3, 0), v(3, 0), vmax(3, 0);
    for (int t = 1; t <= 3; ++t) {
      opt.zero_grad();
      // Gradient of sum(p^3) = 3 p^2: a gradient that changes sign pattern-free but size.
      sum(p * p * p).backward();
      opt.step();
      for (int i = 0; i < 3; ++i) {
        double g = 3 * w[i] * w[i];
        if (decoupled) w[i] *= 1 - 0.01 * 0.1;
        else g += 0.1 * w[i];
        m[i] = 0.9 * m[i] + 0.1 * g;
        v[i] = 0.999 * v[i] + 0.001 * g * g;
        vmax[i] = std::max(vmax[i], v[i]);
        const double denom = std::sqrt(ams ? vmax[i] : v[i]) / std::sqrt(1 - std::pow(0.999, t)) + 1e-8;
        w[i] -= 0.01 / (1 - std::pow(0.9, t)) * m[i] / denom;
      }
    }
    for (int i = 0; i < 3; ++i) CHECK(p.data()[i] == Approx(w[i]).epsilon(1e-5));
    CHECK(opt.state().at("p.step").item() == 3.0f);
    CHECK(opt.state().count("p.max_exp_avg_sq") == (ams ? 1u : 0u));
  }
}

TEST_CASE("optimizer state of the wrong shape from a checkpoint is an error, not a write past its end", "[optim][errors]") {
  // A flipped bit in a checkpoint's header turned a momentum of shape [16,3,3,3] into
  // [16,3,3,1]; the step then read and wrote 3x past the buffer (a heap overflow under ASan).
  Generator g(1);
  auto p = Tensor<float>::randn({16, 3, 3, 3}, g).set_requires_grad();
  optim::SGD sgd({{{{"conv.weight", p}}, 0.1, 0.0}}, optim::SgdOptions{0.9, 0.0, true});
  sgd.load_state({{"conv.weight.momentum", Tensor<float>::zeros({16, 3, 3, 1})}});
  sum(p * p).backward();
  CHECK_THROWS_WITH(sgd.step(), Contains("'conv.weight.momentum' has shape [16, 3, 3, 1]") &&
                                    Contains("needs [16, 3, 3, 3]"));
  optim::Adam adam({{{{"conv.weight", p}}, 0.1, 0.0}});
  adam.load_state({{"conv.weight.step", Tensor<float>::zeros({1})}, {"conv.weight.exp_avg", Tensor<float>::zeros({16})}});
  CHECK_THROWS_WITH(adam.step(), Contains("'conv.weight.exp_avg' has shape [16]"));
}

TEST_CASE("schedules are pure functions of the step", "[optim][schedule]") {
  optim::Schedule cos;
  cos.kind = optim::Schedule::Kind::Cosine;
  cos.base_lr = 0.1;
  cos.warmup_steps = 10;
  cos.total_steps = 110;
  CHECK(cos.lr_at(0) == Approx(0.01));   // first warmup step: base * 1/10
  CHECK(cos.lr_at(9) == Approx(0.1));    // warmup reaches the base rate
  CHECK(cos.lr_at(10) == Approx(0.1));   // cosine starts at the base rate
  CHECK(cos.lr_at(60) == Approx(0.05));  // halfway: (1 + cos(pi/2)) / 2
  CHECK(cos.lr_at(110) == Approx(0.0).margin(1e-12));
  optim::Schedule ms;
  ms.kind = optim::Schedule::Kind::MultiStep;
  ms.base_lr = 1.0;
  ms.milestones = {5, 8};
  ms.gamma = 0.1;
  CHECK(ms.lr_at(4) == 1.0);
  CHECK(ms.lr_at(5) == Approx(0.1));
  CHECK(ms.lr_at(8) == Approx(0.01));
  optim::Schedule ex;
  ex.kind = optim::Schedule::Kind::Exponential;
  ex.base_lr = 2.0;
  ex.gamma = 0.5;
  ex.steps_per_decay = 3;
  CHECK(ex.lr_at(2) == 2.0);
  CHECK(ex.lr_at(3) == 1.0);
  CHECK(ex.lr_at(7) == 0.5);
  CHECK_THROWS_WITH(optim::Schedule::parse_kind("linear"), Contains("'linear'") && Contains("cosine"));
}

TEST_CASE("checkpoints round-trip and refuse truncated or foreign files", "[io][checkpoint]") {
  const fs::path dir = temp_dir("ckpt");
  const std::string path = (dir / "c.ckpt").string();
  Generator g(1);
  io::Checkpoint ck;
  ck.meta = {{"epoch", 3}, {"rng", g.state_string()}};
  ck.tensors.emplace("a.weight", Tensor<float>::randn({2, 3}, g));
  ck.tensors.emplace("b", Tensor<float>::scalar(4.0f));
  io::save_checkpoint(path, ck);
  CHECK(!fs::exists(path + ".tmp"));
  auto back = io::load_checkpoint(path);
  CHECK(back.meta.at("epoch") == 3);
  CHECK(allclose(back.tensors.at("a.weight"), ck.tensors.at("a.weight"), 0, 0));
  CHECK(back.tensors.at("b").item() == 4.0f);

  // Truncated copy.
  const std::string cut = (dir / "cut.ckpt").string();
  {
    std::ifstream in(path, std::ios::binary);
    std::string bytes((std::istreambuf_iterator<char>(in)), {});
    std::ofstream out(cut, std::ios::binary);
    out.write(bytes.data(), static_cast<std::streamsize>(bytes.size() - 5));
  }
  CHECK_THROWS_WITH(io::load_checkpoint(cut), Contains(cut) && Contains("truncated"));
  const std::string foreign = (dir / "foreign.ckpt").string();
  std::ofstream(foreign) << "hello, not a checkpoint";
  CHECK_THROWS_WITH(io::load_checkpoint(foreign), Contains(foreign) && Contains("not a safetensors file"));
  CHECK_THROWS_WITH(io::load_checkpoint((dir / "none.ckpt").string()), Contains("cannot open"));
  // A safetensors file that is not a lowbit checkpoint (PyTorch's weights, an export) is
  // refused naming its format; one without lowbit's checksums too.
  const std::string plain = (dir / "plain.safetensors").string();
  io::write_safetensors(plain, {io::SafetensorsTensor::from_float("w", Tensor<float>::zeros({2}))}, {{"format", "pt"}});
  CHECK_THROWS_WITH(io::load_checkpoint(plain),
                    Contains(plain) && Contains("not a lowbit checkpoint: its safetensors metadata has lowbit.format = "
                                                "'(none)', expected 'lowbit.checkpoint'"));
  // The earlier framed format (magic LOWBITCK, no checksum) still loads.
  const std::string framed = (dir / "framed.ckpt").string();
  std::string data;
  json table = json::array();
  for (auto& [name, t] : ck.tensors) {
    table.push_back({{"name", name}, {"shape", t.shape()}, {"offset", data.size()}});
    data.append(reinterpret_cast<const char*>(t.data()), static_cast<size_t>(t.numel()) * sizeof(float));
  }
  io::write_framed(framed, io::kCheckpointMagic, io::kCheckpointVersion, {{"meta", ck.meta}, {"tensors", table}}, data,
                   "test");
  const io::Checkpoint old = io::load_checkpoint(framed);
  CHECK(old.meta == ck.meta);
  REQUIRE(old.tensors.size() == 2);
  CHECK(old.tensors.at("a.weight").to_vector() == ck.tensors.at("a.weight").to_vector());
  // Saving over an existing checkpoint replaces it whole.
  ck.meta["epoch"] = 4;
  io::save_checkpoint(path, ck);
  CHECK(io::load_checkpoint(path).meta.at("epoch") == 4);
  fs::remove_all(dir);
}
