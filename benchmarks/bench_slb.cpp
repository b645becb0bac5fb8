// bench_slb: images/s and peak RSS of a whole ResNet-20 training step with a quantization
// method and its hooks, i.e. what train_cifar does per step minus data loading:
//   hooks.begin_step (SLB: temperature; SBN swap), forward, cross-entropy, backward, SGD step,
//   zero_grad (set_to_none), hooks.end_step (SLB with SBN: the discrete no-grad forward).
// It measures SLB's extra work (softmax over 2^q values per weight, the SBN pass) against
// lowbit's own FP32 step (docs/performance.md, "SLB: the cost of the search"). One
// configuration per process, so the peak RSS is its own;
// benchmarks/bench_slb.sh runs the configurations side by side.
//
//   bench_slb [--method fp32|ste|slb] [--w-bits N] [--a-bits N] [--sbn 0|1] [--integer 0|1]
//             [--threads N] [--batch 128] [--steps 5] [--warmup 1] [--profile]
// Prints one JSON line: {"method", "w_bits", "a_bits", "sbn", "integer_pass", "threads", "batch", "img_s",
// "step_ms" (median), "peak_rss_mb"}.
#include <sys/resource.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <lowbit/lowbit.hpp>
#include <map>
#include <memory>
#include <string>
#include <vector>

using namespace lowbit;

namespace {
[[noreturn]] void usage(const std::string& why) {
  std::fprintf(stderr,
               "bench_slb: %s\nusage: bench_slb [--method fp32|ste|slb] [--w-bits N] [--a-bits N] [--sbn 0|1] "
               "[--integer 0|1] [--threads N] [--batch B] [--steps S] [--warmup W] [--profile]\n",
               why.c_str());
  std::exit(2);
}
int64_t parse_int(const std::string& flag, const char* v, int64_t lo) {
  char* end = nullptr;
  const long long x = std::strtoll(v, &end, 10);
  if (!*v || *end || x < lo) usage(flag + " expects an integer >= " + std::to_string(lo) + ", got '" + v + "'");
  return x;
}
}  // namespace

int main(int argc, char** argv) {
  quant::QuantSpec spec;
  int64_t threads = max_threads(), batch = 128, steps = 5, warmup = 1, sbn = 1, integer = 1;
  bool profile = false;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    auto next = [&]() -> const char* {
      if (i + 1 >= argc) usage(a + " needs a value");
      return argv[++i];
    };
    if (a == "--method") spec.method = next();
    else if (a == "--w-bits") spec.w_bits = static_cast<int>(parse_int(a, next(), 1));
    else if (a == "--a-bits") spec.a_bits = static_cast<int>(parse_int(a, next(), 1));
    else if (a == "--sbn") sbn = parse_int(a, next(), 0);
    else if (a == "--integer") integer = parse_int(a, next(), 0);
    else if (a == "--threads") threads = parse_int(a, next(), 1);
    else if (a == "--batch") batch = parse_int(a, next(), 2);
    else if (a == "--steps") steps = parse_int(a, next(), 1);
    else if (a == "--warmup") warmup = parse_int(a, next(), 0);
    else if (a == "--profile") profile = true;
    else usage("unknown argument '" + a + "'");
  }
  if (spec.method == "slb") spec.options["sbn"] = sbn != 0, spec.options["integer_pass"] = integer != 0;
  try {
    spec = quant::resolve(spec);
  } catch (const lowbit::Error& e) {
    usage(e.what());
  }
  set_num_threads(static_cast<int>(threads));

  Generator gen(0);
  auto net = nn::resnet20(gen, nn::Shortcut::A, quant::make_factory(spec));
  net->train();
  auto hooks = quant::make_hooks(spec);
  optim::ParamGroup group;
  group.params = net->named_parameters();
  group.lr = 0.01;
  group.weight_decay = 5e-4;
  optim::SGD opt({group}, {0.9, 0.0, false});

  auto x = Tensor<float>::randn({batch, 3, 32, 32}, gen);
  std::vector<int64_t> labels(static_cast<size_t>(batch));
  for (auto& l : labels) l = static_cast<int64_t>(gen.randint(10));

  std::vector<double> ms;
  OpProfile prof;
  const int64_t total = warmup + steps;
  for (int64_t s = 0; s < total; ++s) {
    std::unique_ptr<ProfileScope> scope;
    if (profile && s >= warmup) scope = std::make_unique<ProfileScope>(prof);
    const quant::StepContext ctx{s, total, total, 0};
    const auto t0 = std::chrono::steady_clock::now();
    hooks->begin_step(*net, ctx);
    Tensor<float> loss = cross_entropy((*net)(x), labels);
    loss.backward();
    opt.step();
    opt.zero_grad(/*set_to_none=*/true);  // right after the step, as train_cifar
    {
      ProfileTimer timer(true, "hooks.end_step (SBN discrete pass)");
      hooks->end_step(*net, x, ctx);
    }
    const auto t1 = std::chrono::steady_clock::now();
    if (s >= warmup) ms.push_back(std::chrono::duration<double, std::milli>(t1 - t0).count());
  }
  std::vector<double> sorted = ms;
  std::sort(sorted.begin(), sorted.end());
  const double median_ms = sorted[sorted.size() / 2];
  if (profile) {
    std::vector<std::pair<double, std::string>> rows;
    for (auto& [name, e] : prof.forward) rows.push_back({e.seconds, "forward  " + name});
    for (auto& [name, e] : prof.backward) rows.push_back({e.seconds, "backward " + name});
    std::sort(rows.rbegin(), rows.rend());
    for (auto& [sec, name] : rows)
      std::fprintf(stderr, "  %-50s %8.1f ms/step\n", name.c_str(), 1000.0 * sec / static_cast<double>(ms.size()));
  }
  rusage ru{};
  getrusage(RUSAGE_SELF, &ru);
  std::printf("{\"method\": \"%s\", \"w_bits\": %d, \"a_bits\": %d, \"sbn\": %s, \"integer_pass\": %s, \"threads\": %lld, \"batch\": %lld, "
              "\"img_s\": %.2f, \"step_ms\": %.2f, \"peak_rss_mb\": %.1f}\n",
              spec.method.c_str(), spec.w_bits, spec.a_bits, spec.method == "slb" && sbn ? "true" : "false",
              spec.method == "slb" && sbn && integer ? "true" : "false",
              static_cast<long long>(threads), static_cast<long long>(batch),
              static_cast<double>(batch) * 1000.0 / median_ms, median_ms, static_cast<double>(ru.ru_maxrss) / 1024.0);
  return 0;
}
