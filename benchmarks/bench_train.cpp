// bench_train: images/s of a whole training step for ResNet-20 or VGG-Small at CIFAR shapes,
// plus peak RSS: the step train_cifar takes (learning rate set, the method's begin_step,
// forward, cross-entropy, backward, optimizer step, zero_grad, the method's end_step), for
// any registered method at any bits, with the run's optimizer and parameter groups
// (train/optim.hpp). benchmarks/compare_pytorch.sh puts it beside benchmarks/pytorch_train.py
// (FP32) and benchmarks/pytorch_quant_train.py (the quantized methods).
//
//   bench_train --model resnet20|vgg_small [--method M] [--w-bits W] [--a-bits A]
//               [--set key=value ...] [--epoch E] [--threads N] [--batch 128] [--steps 10]
//               [--warmup 2] [--json] [--profile] [--check-finite]
//               [--print-config-json] [--dump-forward FILE.safetensors]
// The run config is train_cifar's defaults with model, method, w_bits, a_bits, batch and the
// --set overrides (train/config.hpp; e.g. --set slb.sbn=false). --epoch E makes the steps
// those of epoch E (0-based) of the config's run, for methods whose step depends on the
// epoch (ALQ's basis / coordinate / STE epochs). --print-config-json prints the resolved
// config and exits. --dump-forward writes the model's state dict (lowbit's names), the
// input batch ("input") and the logits of the first training-mode forward ("logits"), with
// the config in the metadata, and exits: pytorch_quant_train.py --check-forward computes
// the same forward from it (docs/performance.md, "Quantized training against PyTorch").
// --profile prints where the time of the measured steps goes: forward per leaf-module type,
// backward per op, the optimizer step and the method's hooks (autograd/profiler.hpp).
// --check-finite adds train_cifar's per-step NaN/inf checks of every gradient and weight
// (train/finite.hpp), to measure what they cost. Like train_cifar, it runs with
// OMP_WAIT_POLICY=passive unless the environment sets a policy (kernels/omp_wait.hpp):
// GOMP_SPINCOUNT=300000 gives libgomp's default.
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
using json = nlohmann::json;

namespace {
[[noreturn]] void usage(const std::string& why) {
  std::fprintf(stderr,
               "bench_train: %s\nusage: bench_train --model resnet20|vgg_small [--method M] [--w-bits W] [--a-bits A] "
               "[--set key=value ...] [--epoch E] [--threads N] [--batch B] [--steps S] [--warmup W] [--json] "
               "[--profile] [--check-finite] [--print-config-json] [--dump-forward FILE.safetensors]\n",
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
// --dump-forward's file: everything pytorch_quant_train.py --check-forward needs to recompute the logits.
void dump_forward(const std::string& path, nn::Module& net, const Tensor<float>& x, const Tensor<float>& logits, const json& cfg) {
  std::vector<io::SafetensorsTensor> tensors;
  for (auto& [name, t] : net.state_dict()) tensors.push_back(io::SafetensorsTensor::from_float(name, t));
  tensors.push_back(io::SafetensorsTensor::from_float("input", x));
  tensors.push_back(io::SafetensorsTensor::from_float("logits", logits));
  io::write_safetensors(path, tensors, {{"config", cfg.dump()}, {"what", "bench_train --dump-forward: the state dict "
                                        "before the first step, its input and the logits of its training-mode forward"}});
}
}  // namespace

int main(int argc, char** argv) try {
  const std::string omp_wait = use_passive_omp_wait(argv);
  json given = {{"model", "resnet20"}, {"batch", 128}};
  int64_t threads = max_threads(), steps = 10, warmup = 2, epoch = 0;
  bool json_out = false, profile = false, check_finite = false, print_config = false;
  std::string dump_path;
  std::vector<std::string> sets;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    auto next = [&]() -> const char* {
      if (i + 1 >= argc) usage(a + " needs a value");
      return argv[++i];
    };
    if (a == "--model") given["model"] = next();
    else if (a == "--method") given["method"] = next();
    else if (a == "--w-bits") given["w_bits"] = parse_int("--w-bits", next(), 1);
    else if (a == "--a-bits") given["a_bits"] = parse_int("--a-bits", next(), 1);
    else if (a == "--set") sets.push_back(next());
    else if (a == "--epoch") epoch = parse_int("--epoch", next(), 0);
    else if (a == "--threads") threads = parse_int("--threads", next(), 1);
    else if (a == "--batch") given["batch"] = parse_int("--batch", next(), 1);
    else if (a == "--steps") steps = parse_int("--steps", next(), 1);
    else if (a == "--warmup") warmup = parse_int("--warmup", next(), 0);
    else if (a == "--json") json_out = true;
    else if (a == "--profile") profile = true;
    else if (a == "--check-finite") check_finite = true;
    else if (a == "--print-config-json") print_config = true;
    else if (a == "--dump-forward") dump_path = next();
    else usage("unknown argument '" + a + "'");
  }
  const std::string model = given.at("model");
  if (model != "resnet20" && model != "vgg_small") usage("--model must be resnet20 or vgg_small, got '" + model + "'");
  json cfg;
  try {
    for (auto& kv : sets) train::apply_override(given, kv);
    cfg = train::resolve_config(given);
    train::check_config(cfg);
  } catch (const Error& e) {
    usage(e.what());
  }
  if (print_config) {
    std::printf("%s\n", cfg.dump().c_str());
    return 0;
  }
  const int64_t batch = cfg.at("batch"), epochs = cfg.at("epochs");
  if (epoch >= epochs) usage("--epoch " + std::to_string(epoch) + ": the config's run has " + std::to_string(epochs) +
                             " epochs (0-based index expected)");
  set_num_threads(static_cast<int>(threads));

  std::shared_ptr<nn::Module> net = train::build_model(cfg);  // CIFAR-10 shapes, the config's seed
  net->train();
  const quant::QuantSpec spec = quant::resolve(train::quant_spec(cfg));
  auto hooks = quant::make_hooks(spec);
  auto opt = train::make_optimizer(*net, cfg, *hooks);
  // The steps of epoch `epoch` of a run over CIFAR-10's 50,000 training images.
  const int64_t steps_per_epoch = (50000 + batch - 1) / batch;
  const optim::Schedule sched = train::make_schedule(cfg, steps_per_epoch);
  const train::FiniteCheck finite(*net);

  Generator gen(1);  // the input, apart from the model's draws
  auto x = Tensor<float>::randn({batch, 3, 32, 32}, gen);
  std::vector<int64_t> labels(static_cast<size_t>(batch));
  for (auto& l : labels) l = static_cast<int64_t>(gen.randint(10));

  std::vector<double> ms;
  float loss_value = 0;
  OpProfile prof, hooks_prof;
  for (int64_t s = 0; s < warmup + steps; ++s) {
    std::unique_ptr<ProfileScope> scope;
    if (profile && s >= warmup) scope = std::make_unique<ProfileScope>(prof);
    const int64_t step = epoch * steps_per_epoch + s % steps_per_epoch;
    const quant::StepContext ctx{step, sched.total_steps, steps_per_epoch, epoch};
    if (!dump_path.empty()) {
      nn::StateDict before;  // copies: state_dict() hands out the live tensors, which the forward updates
      for (auto& [name, t] : net->state_dict()) before[name] = t.clone();
      hooks->begin_step(*net, ctx);
      Tensor<float> logits;
      {
        NoGradGuard no_grad;  // what the forward updates (BN statistics, ALQ's activation fit) is put back
        logits = (*net)(x);
      }
      net->load_state_dict(before);
      dump_forward(dump_path, *net, x, logits, cfg);
      std::printf("wrote %s (%s %s w%d a%d)\n", dump_path.c_str(), model.c_str(), spec.method.c_str(), spec.w_bits,
                  spec.a_bits);
      return 0;
    }
    const auto t0 = std::chrono::steady_clock::now();
    opt->set_lr(sched.lr_at(step));
    {  // the hooks' own forwards (SLB's discrete pass) go to a table of their own
      ProfileTimer timer(false, "method hooks: begin_step");
      const auto inside = scope ? std::make_unique<ProfileScope>(hooks_prof) : nullptr;
      hooks->begin_step(*net, ctx);
    }
    Tensor<float> loss = cross_entropy((*net)(x), labels);
    loss.backward();
    if (check_finite) finite.gradients("in bench_train");
    {
      ProfileTimer timer(true, "optimizer step");
      opt->step();
    }
    opt->zero_grad(/*set_to_none=*/true);  // as train_cifar: no gradient is alive during end_step
    {
      ProfileTimer timer(false, "method hooks: end_step");
      const auto inside = scope ? std::make_unique<ProfileScope>(hooks_prof) : nullptr;
      hooks->end_step(*net, x, ctx);
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
        std::printf("  %-9s %-40s %8.1f ms  %5.1f%%\n", what, name.c_str(), per_step,
                    100.0 * per_step / (total / static_cast<double>(ms.size())));
      }
    };
    table("forward", prof.forward);
    table("backward", prof.backward);
    const double step_ms = total / static_cast<double>(ms.size());
    std::printf("  %-9s %-40s %8.1f ms  %5.1f%%\n", "other", "(unprofiled ops, allocation)", step_ms - covered,
                100.0 * (step_ms - covered) / step_ms);
    if (!hooks_prof.forward.empty()) {  // what the hooks' time is made of (already counted above)
      std::printf("  inside the method hooks (already counted in their rows):\n");
      for (auto& [name, e] : hooks_prof.forward)
        std::printf("  %-9s %-40s %8.1f ms\n", "hooks", name.c_str(), 1000.0 * e.seconds / static_cast<double>(ms.size()));
    }
    if (prof.backward.count("conv2d_requantized"))
      std::printf("  (conv2d_requantized's backward includes its input quantizer's second forward and backward,\n"
                  "   which are also listed under their own names, so \"other\" is low or negative:\n"
                  "   include/lowbit/quant/requant_conv.hpp)\n");
  }
  if (json_out) {
    std::printf("{\"model\": \"%s\", \"method\": \"%s\", \"w_bits\": %d, \"a_bits\": %d, \"epoch\": %lld, "
                "\"threads\": %lld, \"batch\": %lld, \"img_s\": %.2f, \"step_ms\": %.2f, \"peak_rss_mb\": %.1f, "
                "\"loss\": %.6g, \"check_finite\": %s, \"omp_wait\": \"%s\"}\n",
                model.c_str(), spec.method.c_str(), spec.w_bits, spec.a_bits, static_cast<long long>(epoch),
                static_cast<long long>(threads), static_cast<long long>(batch), img_s, median_ms, peak_rss_mb(),
                loss_value, check_finite ? "true" : "false", omp_wait.c_str());
  } else {
    std::printf("%s %s w%d a%d  batch %lld  threads %lld%s: median step %.1f ms, %.1f images/s, peak RSS %.0f MB "
                "(loss %.3f); OpenMP wait: %s\n",
                model.c_str(), spec.method.c_str(), spec.w_bits, spec.a_bits, static_cast<long long>(batch),
                static_cast<long long>(threads),
                check_finite ? "  check-finite" : "", median_ms, img_s, peak_rss_mb(), loss_value, omp_wait.c_str());
  }
  return 0;
} catch (const Error& e) {  // a config the model or method refuses, an unwritable --dump-forward file
  std::fprintf(stderr, "bench_train: %s\n", e.what());
  return 2;
}
