// Inference benchmark of exported models (issue 31): images/s of the low-bit inference path
// (infer/model.hpp), of lowbit's FP32 model of the same architecture and of the
// fake-quantized evaluation (train_cifar --eval), measured side by side in one process.
// benchmarks/compare_infer.sh runs it per row beside PyTorch (docs/performance.md).
//
//   bench_infer --write-models DIR                 one random-init export per model and row:
//                                                  DIR/<model>_<row>.lbq (speed does not depend
//                                                  on the values)
//   bench_infer --file DIR/x.lbq --threads T --batch B [--reps R] [--profile]
//   bench_infer --model resnet20 --threads T --batch B     the FP32 row
//   bench_infer --list                             the rows
//
// Prints one JSON object: model, method, w_bits, a_bits, threads, batch, lowbit_img_s,
// lowbit_fp32_img_s, fake_quant_img_s, lowbit_unfused_img_s (binary layers not fused,
// infer/binary_chain.hpp), model_bytes, peak_rss_mb (of this process after the
// inference model alone ran: measured before the FP32 and fake-quantized models are built),
// kernels (layers per kernel) and, with --profile, profile (forward seconds per module type of
// one batch through the inference model).
#include <sys/resource.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <lowbit/lowbit.hpp>
#include <string>
#include <vector>

using namespace lowbit;
using json = nlohmann::json;

namespace {

// The rows: method, w_bits, a_bits (the list: DoReFa 1/1, 2/2, 4/4, SLB, APoT, ALQ).
struct RowSpec {
  const char* row;
  const char* method;
  int w, a;
};
const std::vector<RowSpec> kRows = {{"dorefa_1_1", "ste", 1, 1}, {"dorefa_2_2", "ste", 2, 2}, {"dorefa_4_4", "ste", 4, 4},
                                    {"slb_2_2", "slb", 2, 2},      {"apot_2_2", "apot", 2, 2},  {"alq_2_2", "alq", 2, 2}};
const std::vector<std::string> kModels = {"resnet20", "vgg_small"};

json row_config(const std::string& model, const RowSpec& r) {
  json given = {{"model", model}, {"method", r.method}, {"w_bits", r.w}, {"a_bits", r.a}, {"seed", 1}};
  // ALQ's epoch plan fixes the run's length (its default pipeline: 225 epochs), which a stored
  // config must agree with to load.
  if (std::string(r.method) == "alq") given["epochs"] = 225;
  return train::resolve_config(given);
}

// Median seconds of one forward of x (after a warm-up); batch 1 runs several per timing.
double seconds_per_batch(nn::Module& model, const nn::Tensorf& x, int reps) {
  NoGradGuard no_grad;
  model.eval();
  model(x);
  const int per = std::max<int>(1, static_cast<int>(64 / x.shape()[0]));
  std::vector<double> t;
  for (int r = 0; r < reps; ++r) {
    const auto t0 = std::chrono::steady_clock::now();
    for (int i = 0; i < per; ++i) model(x);
    t.push_back(std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count() / per);
  }
  std::sort(t.begin(), t.end());
  return t[t.size() / 2];
}

double peak_rss_mb() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  return static_cast<double>(u.ru_maxrss) / 1024.0;  // Linux: kilobytes
}

int write_models(const std::string& dir) {
  std::filesystem::create_directories(dir);
  const train::DataInfo info;  // CIFAR-10's shape
  for (const std::string& model : kModels)
    for (const RowSpec& r : kRows) {
      const json cfg = row_config(model, r);
      const auto m = train::build_model(cfg, info);
      const std::string path = dir + "/" + model + "_" + r.row + ".lbq";
      quant::export_quantized(*m, path, {{"format", train::kRunFormat}, {"config", cfg},
                                         {"spec", train::quant_spec(cfg).to_json()}, {"data_info", info.to_json()}});
      std::printf("%s\n", path.c_str());
    }
  return 0;
}

int bench(const std::string& file, const std::string& fp32_model, int threads, int64_t batch, int reps, bool profile) {
  set_num_threads(threads);
  Generator g(7);
  const nn::Tensorf x = nn::Tensorf::randn({batch, 3, 32, 32}, g);
  json out;
  double t_low = 0;
  if (!file.empty()) {
    const infer::Model m = infer::load_model(file);
    t_low = seconds_per_batch(*m.model, x, reps);
    out = {{"model", m.cfg.at("model")}, {"method", m.cfg.at("method")}, {"w_bits", m.cfg.at("w_bits")},
           {"a_bits", m.cfg.at("a_bits")}, {"model_bytes", m.file_bytes}, {"peak_rss_mb", peak_rss_mb()}};
    json kernels = json::object();
    for (const infer::LayerPlan& l : m.layers) kernels[infer::conv_kernel_name(l.kernel)] = kernels.value(infer::conv_kernel_name(l.kernel), 0) + 1;
    out["kernels"] = kernels;
    if (profile) {
      OpProfile p;
      {
        ProfileScope scope(p);
        NoGradGuard no_grad;
        (*m.model)(x);
      }
      json prof = json::object();
      for (auto& [name, e] : p.forward) prof[name] = e.seconds;
      out["profile"] = prof;
    }
  }
  const std::string arch = file.empty() ? fp32_model : out.at("model").get<std::string>();
  const json fcfg = train::resolve_config({{"model", arch}, {"method", "fp32"}, {"seed", 1}});
  const auto fp32 = train::build_model(fcfg, train::DataInfo());
  const double t_fp32 = seconds_per_batch(*fp32, x, reps);
  if (file.empty()) {
    int64_t params = 0;
    for (auto& kv : fp32->named_parameters()) params += kv.second.numel();
    out = {{"model", arch}, {"method", "fp32"}, {"w_bits", 32}, {"a_bits", 32}, {"model_bytes", params * 4},
           {"peak_rss_mb", peak_rss_mb()}};
    t_low = t_fp32;
  } else {
    const train::TrainedModel fake = train::load_trained(file, {});
    out["fake_quant_img_s"] = static_cast<double>(batch) / seconds_per_batch(*fake.model, x, reps);
    const infer::Model alone = infer::load_model(file, {}, infer::LoadOptions{false});
    out["lowbit_unfused_img_s"] = static_cast<double>(batch) / seconds_per_batch(*alone.model, x, reps);
  }
  out["threads"] = max_threads();
  out["batch"] = batch;
  out["lowbit_img_s"] = static_cast<double>(batch) / t_low;
  out["lowbit_fp32_img_s"] = static_cast<double>(batch) / t_fp32;
  std::printf("%s\n", out.dump().c_str());
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  try {
    std::string file, model, write_dir;
    int threads = 1, reps = 5;
    int64_t batch = 128;
    bool profile = false;
    for (int i = 1; i < argc; ++i) {
      const std::string arg = argv[i];
      auto value = [&]() -> std::string {
        LOWBIT_CHECK(i + 1 < argc, "argument ", arg, " needs a value");
        return argv[++i];
      };
      auto number = [&](int64_t lo) {
        const std::string v = value();
        char* end = nullptr;
        const long long n = std::strtoll(v.c_str(), &end, 10);
        LOWBIT_CHECK(!v.empty() && *end == '\0' && n >= lo, arg, " expects an integer >= ", lo, ", got '", v, "'");
        return static_cast<int64_t>(n);
      };
      if (arg == "--file") file = value();
      else if (arg == "--model") model = value();
      else if (arg == "--write-models") write_dir = value();
      else if (arg == "--threads") threads = static_cast<int>(number(1));
      else if (arg == "--batch") batch = number(1);
      else if (arg == "--reps") reps = static_cast<int>(number(1));
      else if (arg == "--profile") profile = true;
      else if (arg == "--list") {
        for (const RowSpec& r : kRows) std::printf("%s %s w%d a%d\n", r.row, r.method, r.w, r.a);
        return 0;
      } else lowbit::detail::fail("unknown argument '", arg, "' (see the top of benchmarks/bench_infer.cpp)");
    }
    if (!write_dir.empty()) return write_models(write_dir);
    LOWBIT_CHECK(file.empty() != model.empty(), "give --file X.lbq (a quantized row) or --model resnet20|vgg_small (FP32)");
    LOWBIT_CHECK(model.empty() || std::find(kModels.begin(), kModels.end(), model) != kModels.end(), "--model '", model,
                 "': expected resnet20 or vgg_small");
    return bench(file, model, threads, batch, reps, profile);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "bench_infer: error: %s\n", e.what());
    return 2;
  }
}
