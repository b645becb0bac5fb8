// bench_train: images/s of a whole training step (zero_grad, forward, cross-entropy,
// backward, SGD step) for ResNet-20 or VGG-Small at CIFAR shapes, plus peak RSS. The same
// step as benchmarks/pytorch_train.py, so benchmarks/compare_pytorch.sh can put them side
// by side.
//
//   bench_train --model resnet20|vgg_small [--threads N] [--batch 128] [--steps 10]
//               [--warmup 2] [--json] [--profile] [--check-finite]
// --profile prints where the time of the measured steps goes: forward per leaf-module type,
// backward per op, and the optimizer step (autograd/profiler.hpp). --check-finite adds
// train_cifar's per-step NaN/inf checks of every gradient and weight (train/finite.hpp), to
// measure what they cost. Like train_cifar, it runs with OMP_WAIT_POLICY=passive unless the
// environment sets a policy (kernels/omp_wait.hpp): GOMP_SPINCOUNT=300000 gives libgomp's default.
#include <sys/resource.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <memory>
#include <lowbit/lowbit.hpp>
#include <string>
#include <vector>

using namespace lowbit;

namespace {
[[noreturn]] void usage(const std::string& why) {
  std::fprintf(stderr,
               "bench_train: %s\nusage: bench_train --model resnet20|vgg_small [--threads N] [--batch B] "
               "[--steps S] [--warmup W] [--json] [--profile] [--check-finite]\n",
               why.c_str());
  std::exit(2);
}
int64_t parse_int(const char* flag, const char* v, int64_t lo) {
  char* end = nullptr;
  const long long x = std::strtoll(v, &end, 10);
  if (!*v || *end || x < lo) usage(std::string(flag) + " expects an integer >= " + std::to_string(lo) + ", got '" + v + "'");
  return x;
}
double peak_rss_mb() {
  rusage ru{};
  getrusage(RUSAGE_SELF, &ru);
  return static_cast<double>(ru.ru_maxrss) / 1024.0;  // ru_maxrss is in KiB on Linux
}
}  // namespace

int main(int argc, char** argv) {
  const std::string omp_wait = use_passive_omp_wait(argv);
  std::string model = "resnet20";
  int64_t threads = max_threads(), batch = 128, steps = 10, warmup = 2;
  bool json = false, profile = false, check_finite = false;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    auto next = [&]() -> const char* {
      if (i + 1 >= argc) usage(a + " needs a value");
      return argv[++i];
    };
    if (a == "--model") model = next();
    else if (a == "--threads") threads = parse_int("--threads", next(), 1);
    else if (a == "--batch") batch = parse_int("--batch", next(), 1);
    else if (a == "--steps") steps = parse_int("--steps", next(), 1);
    else if (a == "--warmup") warmup = parse_int("--warmup", next(), 0);
    else if (a == "--json") json = true;
    else if (a == "--profile") profile = true;
    else if (a == "--check-finite") check_finite = true;
    else usage("unknown argument '" + a + "'");
  }
  set_num_threads(static_cast<int>(threads));

  Generator gen(0);
  std::shared_ptr<nn::Module> net;
  if (model == "resnet20") net = nn::resnet20(gen);
  else if (model == "vgg_small") net = nn::vgg_small(gen);
  else usage("--model must be resnet20 or vgg_small, got '" + model + "'");
  net->train();

  optim::ParamGroup group;
  group.params = net->named_parameters();
  group.lr = 0.01;
  group.weight_decay = 5e-4;
  optim::SGD opt({group}, {0.9, 0.0, false});
  const train::FiniteCheck finite(*net);

  auto x = Tensor<float>::randn({batch, 3, 32, 32}, gen);
  std::vector<int64_t> labels(static_cast<size_t>(batch));
  for (auto& l : labels) l = static_cast<int64_t>(gen.randint(10));

  std::vector<double> ms;
  float loss_value = 0;
  OpProfile prof;
  for (int64_t s = 0; s < warmup + steps; ++s) {
    std::unique_ptr<ProfileScope> scope;
    if (profile && s >= warmup) scope = std::make_unique<ProfileScope>(prof);
    const auto t0 = std::chrono::steady_clock::now();
    opt.zero_grad(/*set_to_none=*/true);  // as train_cifar and pytorch_train.py
    Tensor<float> loss = cross_entropy((*net)(x), labels);
    loss.backward();
    if (check_finite) finite.gradients("in bench_train");
    {
      ProfileTimer timer(true, "optimizer step (SGD)");
      opt.step();
    }
    if (check_finite) finite.weights("in bench_train");
    const auto t1 = std::chrono::steady_clock::now();
    loss_value = loss.item();
    if (s >= warmup) ms.push_back(std::chrono::duration<double, std::milli>(t1 - t0).count());
  }
  std::vector<double> sorted = ms;
  std::sort(sorted.begin(), sorted.end());
  const double median_ms = sorted[sorted.size() / 2];
  const double img_s = static_cast<double>(batch) * 1000.0 / median_ms;
  if (profile) {
    double total = 0;
    for (double m : ms) total += m;
    std::printf("where the time goes (%s, batch %lld, %lld threads, mean over %zu steps; step %.1f ms)\n",
                model.c_str(), static_cast<long long>(batch), static_cast<long long>(threads), ms.size(),
                total / static_cast<double>(ms.size()));
    double covered = 0;
    auto table = [&](const char* what, const std::map<std::string, OpProfile::Entry>& m) {
      std::vector<std::pair<double, std::string>> rows;
      for (auto& [name, e] : m) rows.push_back({e.seconds, name});
      std::sort(rows.rbegin(), rows.rend());
      for (auto& [sec, name] : rows) {
        const double per_step = 1000.0 * sec / static_cast<double>(ms.size());
        covered += per_step;
        std::printf("  %-9s %-28s %8.1f ms  %5.1f%%\n", what, name.c_str(), per_step,
                    100.0 * per_step / (total / static_cast<double>(ms.size())));
      }
    };
    table("forward", prof.forward);
    table("backward", prof.backward);
    const double step_ms = total / static_cast<double>(ms.size());
    std::printf("  %-9s %-28s %8.1f ms  %5.1f%%\n", "other", "(unprofiled ops, allocation)", step_ms - covered,
                100.0 * (step_ms - covered) / step_ms);
  }
  if (json) {
    std::printf("{\"model\": \"%s\", \"threads\": %lld, \"batch\": %lld, \"img_s\": %.2f, \"step_ms\": %.2f, "
                "\"peak_rss_mb\": %.1f, \"check_finite\": %s, \"omp_wait\": \"%s\"}\n",
                model.c_str(), static_cast<long long>(threads), static_cast<long long>(batch), img_s, median_ms,
                peak_rss_mb(), check_finite ? "true" : "false", omp_wait.c_str());
  } else {
    std::printf("%s  batch %lld  threads %lld%s: median step %.1f ms, %.1f images/s, peak RSS %.0f MB (loss %.3f); "
                "OpenMP wait: %s\n",
                model.c_str(), static_cast<long long>(batch), static_cast<long long>(threads),
                check_finite ? "  check-finite" : "", median_ms, img_s, peak_rss_mb(), loss_value, omp_wait.c_str());
  }
  return 0;
}
