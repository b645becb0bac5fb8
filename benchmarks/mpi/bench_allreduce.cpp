// The gradient sum of data-parallel training (dist/data_parallel.hpp), timed:
//   mpirun -np N build/bin/bench_allreduce [--model resnet20|vgg_small|...] [--reps R]
// Every process builds the model, gives each parameter a gradient and times
// DataParallel::sum_gradients (reduce-scatter + all-gather in buckets, dist/mpi.hpp) over R
// repetitions after one warm-up; process 0 prints one JSON object: the model, its parameter
// count, the processes and the median milliseconds per sum. docs/distributed.md uses it for
// the cost of a step's communication on this machine (shared memory between processes).
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <lowbit/dist/data_parallel.hpp>
#include <lowbit/dist/mpi.hpp>
#include <lowbit/lowbit.hpp>
#include <string>
#include <vector>

using namespace lowbit;

int main(int argc, char** argv) {
  dist::MpiSession session(&argc, &argv);
  auto comm = std::make_shared<dist::MpiCommunicator>();
  std::string model_name = "resnet20";
  int reps = 20;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--model" && i + 1 < argc) model_name = argv[++i];
    else if (a == "--reps" && i + 1 < argc) reps = std::max(1, std::atoi(argv[++i]));
    else {
      if (comm->rank() == 0) std::fprintf(stderr, "usage: bench_allreduce [--model NAME] [--reps R]; got '%s'\n", a.c_str());
      return 2;
    }
  }
  try {
    nlohmann::json given = {{"model", model_name}};
    const nlohmann::json cfg = train::resolve_config(given);
    auto model = train::build_model(cfg);
    const dist::DataParallel dp(comm, *model, false);
    int64_t params = 0;
    for (auto& p : model->parameters()) params += p.numel();
    std::vector<double> ms;
    for (int r = 0; r <= reps; ++r) {
      for (auto& p : model->parameters()) p.set_grad(nn::Tensorf::ones(p.shape()));
      comm->barrier();
      const auto t0 = std::chrono::steady_clock::now();
      dp.sum_gradients(*model);
      const double t = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
      if (r > 0) ms.push_back(t);  // the first is the warm-up
    }
    std::sort(ms.begin(), ms.end());
    if (comm->rank() == 0)
      std::printf("{\"model\": \"%s\", \"parameters\": %lld, \"processes\": %d, \"reps\": %d, \"median_ms\": %.3f, \"min_ms\": %.3f}\n",
                  model_name.c_str(), (long long)params, comm->size(), reps, ms[ms.size() / 2], ms.front());
  } catch (const std::exception& e) {
    std::fprintf(stderr, "bench_allreduce: error: %s\n", e.what());
    dist::MpiSession::abort(2);
  }
  return 0;
}
