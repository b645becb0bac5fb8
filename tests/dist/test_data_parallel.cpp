// Data-parallel training over MPI (dist/, docs/distributed.md), run by ctest as
//   mpirun -np 2 --oversubscribe test_data_parallel
// Every process runs every TEST_CASE in the same order (the collectives must match).
//   * the communicator's collectives give every process the same bits;
//   * for each method (fp32, DoReFa, PACT, APoT, SLB with state batch-norm, ALQ through all its
//     phases) N = 2 processes with batch B and sync_bn train like one process with batch B:
//     losses, weights, BN statistics and optimizer state after several steps and epoch ends
//     agree within the tolerances below (float rounding of the shards' sums; they are not
//     bit-identical because one process adds a batch's gradient in another order);
//   * without sync_bn the replicas stay identical (the gradient sums and rank 0's state).
// Each process also trains the one-process reference itself (same seed), so both sides of
// every comparison are in one process.
#define CATCH_CONFIG_RUNNER
#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <map>
#include <lowbit/dist/data_parallel.hpp>
#include <lowbit/dist/mpi.hpp>
#include <lowbit/lowbit.hpp>
#include <memory>
#include <random>
#include <string>
#include <vector>

using namespace lowbit;
using json = nlohmann::json;
using nn::Tensorf;

namespace {

std::shared_ptr<const dist::Communicator> g_comm;  // set in main(), before any test runs

// 32 random 32x32 RGB images of 10 classes.
std::shared_ptr<const data::Dataset> synthetic_data() {
  auto ds = std::make_shared<data::Dataset>();
  std::mt19937 gen(7);
  const int64_t n = 32;
  ds->images.resize(static_cast<size_t>(n * 3 * 32 * 32));
  for (auto& v : ds->images) v = static_cast<uint8_t>(gen() % 256);
  for (int64_t i = 0; i < n; ++i) ds->labels.push_back(i % 10);
  ds->class_names = data::cifar10_class_names();
  ds->source = "synthetic";
  return ds;
}

// One replica of a run: model, method hooks, optimizer, schedule, loader, as train_cifar builds them.
struct Replica {
  json cfg;
  std::shared_ptr<const dist::Communicator> comm;
  std::shared_ptr<nn::Module> model;
  std::unique_ptr<quant::MethodHooks> hooks;
  std::unique_ptr<optim::Optimizer> opt;
  std::unique_ptr<dist::DataParallel> dp;
  std::unique_ptr<data::DataLoader> loader;
  std::shared_ptr<const data::Dataset> ds;
  std::vector<double> losses;
  bool reverse = false;  // every batch's images in reverse order (the same images, other float sums)

  Replica(const json& given, std::shared_ptr<const dist::Communicator> c) : comm(std::move(c)) {
    cfg = train::resolve_config(given);
    train::check_config(cfg);
    ds = synthetic_data();
    model = train::build_model(cfg, train::named_data_info(cfg));
    model->train();
    dp = std::make_unique<dist::DataParallel>(comm, *model, cfg.at("sync_bn").get<bool>());
    hooks = quant::make_hooks(quant::resolve(train::quant_spec(cfg)));
    opt = train::make_optimizer(*model, cfg, *hooks);
    data::LoaderOptions lo;
    lo.batch_size = cfg.at("batch");
    lo.seed = cfg.at("seed");
    lo.shard = comm->rank(), lo.shards = comm->size();
    loader = std::make_unique<data::DataLoader>(ds, lo);
  }

  data::Batch reversed(data::Batch b) const {
    if (!reverse) return b;
    const int64_t n = b.size(), per = b.images.numel() / std::max<int64_t>(n, 1);
    Tensorf r = Tensorf::empty(b.images.shape());
    for (int64_t i = 0; i < n; ++i) std::copy(b.images.data() + i * per, b.images.data() + (i + 1) * per, r.data() + (n - 1 - i) * per);
    b.images = r;
    std::reverse(b.labels.begin(), b.labels.end());
    return b;
  }

  // The first batch's gradients (summed over the processes), without a step.
  std::map<std::string, Tensorf> first_gradients() {
    data::Batch b;
    REQUIRE(loader->next(b));
    b = reversed(b);
    const optim::Schedule sched = train::make_schedule(cfg, loader->batches_per_epoch());
    hooks->begin_step(*model, {0, sched.total_steps, loader->batches_per_epoch(), 0});
    backward(cross_entropy((*model)(b.images), b.labels), b.size());
    std::map<std::string, Tensorf> g;
    for (auto& [name, p] : model->named_parameters())
      if (p.grad().defined()) g.emplace(name, p.grad().clone());
    return g;
  }

  // Backward of this process's loss; returns the whole batch's mean loss.
  double backward(const Tensorf& loss, int64_t images) {
    std::vector<double> sums = {loss.item() * static_cast<double>(images), static_cast<double>(images)};
    if (comm->size() > 1) {
      dp->sum(sums);
      (loss * static_cast<float>(dist::DataParallel::loss_weight(images, static_cast<int64_t>(sums[1])))).backward();
      dp->sum_gradients(*model);
    } else {
      Tensorf(loss).backward();
    }
    return sums[0] / sums[1];
  }

  // train_cifar's loop (examples/train_cifar.cpp), without its logging and checks.
  // max_steps > 0: stop after that many steps (hooks included), before the epoch's end.
  void train(int64_t epochs, int64_t max_steps = 0) {
    const int64_t spe = loader->batches_per_epoch(), batch = cfg.at("batch");
    const optim::Schedule sched = train::make_schedule(cfg, spe);
    int64_t step = 0;
    for (int64_t epoch = 0; epoch < epochs; ++epoch) {
      data::Batch b;
      while (loader->next(b)) {
        b = reversed(b);
        const quant::StepContext ctx{step, sched.total_steps, spe, epoch};
        opt->set_lr(sched.lr_at(step));
        hooks->begin_step(*model, ctx);
        losses.push_back(backward(cross_entropy((*model)(b.images), b.labels), b.size()));
        opt->step();
        opt->zero_grad(true);
        hooks->end_step(*model, b.images, ctx);
        if (++step == max_steps) return;
      }
      hooks->end_epoch(*model, train::unaugmented_batches(ds, batch, data::Normalize::cifar10(), comm->rank(), comm->size()),
                       epoch);
      if (comm->size() > 1) {
        dp->broadcast_state(*model, *hooks);
        dp->check_replicas(*model);
      }
    }
  }
};

double max_abs(const Tensorf& t) {
  double m = 0;
  for (int64_t i = 0; i < t.numel(); ++i) m = std::max(m, std::fabs(static_cast<double>(t.data()[i])));
  return m;
}

// ||a - b|| / ||a|| (Euclidean, over the tensor; 0 for two zero tensors).
double rel_diff(const Tensorf& a, const Tensorf& b) {
  double d = 0, n = 0;
  for (int64_t i = 0; i < a.numel(); ++i) {
    const double x = a.data()[i], y = b.data()[i];
    d += (x - y) * (x - y), n += x * x;
  }
  return n > 0 ? std::sqrt(d / n) : std::sqrt(d);
}

// How far two sets of named tensors are apart: the largest rel_diff of a tensor, and the
// rel_diff of all of them as one vector.
struct Distance {
  double worst = 0, all = 0;
  std::string where;
  Distance(const std::map<std::string, Tensorf>& a, const std::map<std::string, Tensorf>& b, const std::string& what) {
    REQUIRE(a.size() == b.size());
    double d2 = 0, n2 = 0;
    for (auto& [name, t] : b) {
      REQUIRE(a.count(name) == 1);
      const Tensorf& u = a.at(name);
      const double d = rel_diff(t, u);
      if (d > worst) worst = d, where = what + name;
      for (int64_t i = 0; i < t.numel(); ++i) {
        const double x = t.data()[i], y = u.data()[i];
        d2 += (x - y) * (x - y), n2 += x * x;
      }
    }
    all = std::sqrt(d2 / std::max(n2, 1e-300));
  }
};

// The two-process result against the one-process one. Float rounding alone moves these
// results by more than one ulp: the two add a BN layer's statistics in another order and
// round them to float at another point, and the one-process FP32 ResNet-20 of this test at
// initialization amplifies such differences (measured: its first gradients from a -O1 and a
// -O3 build of the same code differ by 3e-3 overall, 5e-3 in one BN layer's gamma; two
// processes against one: 6.6e-4 and 3.1e-3). Merely reordering the batch's images (the
// same BN sums, other order; `reorder`, printed beside) moves them far less (5e-7) and is no
// bound for that. So the bound is either: within 10x the reordering's distance (what every
// quantized method here meets, at 1e-6), or within 1e-3 overall and 1e-2 for every tensor --
// while a missed, doubled or misweighted sum is off by tens of percent.
void check_close(const Distance& two, const Distance& reorder, const char* stage) {
  if (g_comm->rank() == 0)
    std::printf("  %s: 2 processes within %.3g (farthest tensor %.3g, %s); the reordered batch within %.3g (%.3g)\n", stage,
                two.all, two.worst, two.where.c_str(), reorder.all, reorder.worst);
  INFO(stage << ": farthest tensor " << two.where << " " << two.worst << ", reordered " << reorder.worst);
  CHECK(two.all <= std::max(10 * reorder.all, 1e-3));
  CHECK(two.worst <= std::max(10 * reorder.worst, 1e-2));
}

std::map<std::string, Tensorf> everything(Replica& r) {  // weights, buffers, optimizer state
  std::map<std::string, Tensorf> m;
  for (auto& [n, t] : r.model->state_dict()) m.emplace(n, t);
  for (auto& [n, t] : r.opt->state()) m.emplace("optimizer " + n, t);
  return m;
}

// The data-parallel run (2 processes, sync_bn) against one process with the same batch, in
// three stages:
//  1. the first batch's summed gradients, within check_close's bounds: the equal-work check;
//  2. one whole step with the method's hooks (SLB's discrete pass, ...): weights, buffers and
//     optimizer state, likewise;
//  3. `epochs` epochs (every epoch end: BN broadcast, method phases such as ALQ's): losses
//     within loss_tol. Quantized weights and activations make training a discontinuous
//     function: a rounding difference moves a few values across a level and the difference
//     grows from step to step. One process with batch B is no more "right" than two with
//     B/2 each there: the same process with the batch's images reordered drifts as far
//     (measured over these runs: SLB 2/2 1.6e-2 for two processes, 6.2e-3 reordered; ALQ
//     3.6e-3 and 1.8e-3; FP32, DoReFa, PACT, APoT <= 2e-5, printed for each run).
void expect_same_training(json given, int64_t epochs, double loss_tol) {
  given["sync_bn"] = true;
  const auto one_process = std::make_shared<dist::SingleProcess>();
  if (g_comm->rank() == 0) std::printf("%s\n", given.dump().c_str());
  {
    Replica dp(given, g_comm), one(given, one_process), rev(given, one_process);
    rev.reverse = true;
    const auto g = one.first_gradients();
    check_close(Distance(dp.first_gradients(), g, "gradient of "), Distance(rev.first_gradients(), g, "gradient of "),
                "the first step's gradients");
  }
  {
    Replica dp(given, g_comm), one(given, one_process), rev(given, one_process);
    rev.reverse = true;
    dp.train(1, 1), one.train(1, 1), rev.train(1, 1);
    check_close(Distance(everything(dp), everything(one), ""), Distance(everything(rev), everything(one), ""),
                "weights, buffers and optimizer state after one step");
  }
  Replica dp(given, g_comm), one(given, one_process), rev(given, one_process);
  rev.reverse = true;
  dp.train(epochs), one.train(epochs), rev.train(epochs);
  REQUIRE(dp.losses.size() == one.losses.size());
  double two = 0, reorder = 0;
  for (size_t i = 0; i < dp.losses.size(); ++i) {
    two = std::max(two, std::fabs(dp.losses[i] - one.losses[i]) / std::fabs(one.losses[i]));
    reorder = std::max(reorder, std::fabs(rev.losses[i] - one.losses[i]) / std::fabs(one.losses[i]));
  }
  if (g_comm->rank() == 0)
    std::printf("  %zu steps, %lld epochs: losses of 2 processes within %.3g, of the reordered batches %.3g\n", dp.losses.size(),
                (long long)epochs, two, reorder);
  CHECK(two <= loss_tol);
}

json base(const std::string& method, int w, int a) {
  return {{"model", "resnet20"}, {"method", method}, {"w_bits", w}, {"a_bits", a}, {"batch", 16}, {"lr", 0.01},
          {"warmup_epochs", 0}, {"train_per_class", 0}, {"threads", 1}, {"seed", 3}, {"augment", true}};
}

}  // namespace

TEST_CASE("dist: sums, gathers and broadcasts give every process the same bits", "[dist]") {
  const auto& c = *g_comm;
  REQUIRE(c.size() == 2);
  std::vector<float> v(1001);
  for (size_t i = 0; i < v.size(); ++i) v[i] = 0.1f * static_cast<float>(i) + static_cast<float>(c.rank()) / 3.0f;
  c.sum(v.data(), v.size());
  for (size_t i = 0; i < v.size(); ++i) CHECK(v[i] == Approx(0.2 * i + 1.0 / 3.0).epsilon(1e-6));
  std::vector<double> theirs(2 * v.size());
  std::vector<double> mine(v.begin(), v.end());
  c.gather_all(mine.data(), mine.size(), theirs.data());
  CHECK(std::equal(theirs.begin(), theirs.begin() + 1001, theirs.begin() + 1001));  // identical bits after sum
  double r[1] = {static_cast<double>(c.rank())}, both[2];
  c.gather_all(r, 1, both);
  CHECK(both[0] == 0.0);
  CHECK(both[1] == 1.0);
  std::string s = c.rank() == 0 ? std::string("rank 0's state \0 with a zero byte", 33) : std::string("other");
  c.broadcast(s);
  CHECK(s == std::string("rank 0's state \0 with a zero byte", 33));
  float f[3] = {1.f * static_cast<float>(c.rank()), 2.f, 3.f};
  c.broadcast(f, 3);
  CHECK(f[0] == 0.f);
}

TEST_CASE("dist: fp32 ResNet-20 on 2 processes with sync_bn trains like one process", "[dist]") {
  expect_same_training(base("fp32", 32, 32), 2, 1e-4);
}

TEST_CASE("dist: DoReFa 2/2 and PACT 2/2 on 2 processes train like one process", "[dist]") {
  expect_same_training(base("ste", 2, 2), 2, 0.03);
  json pact = base("ste", 2, 2);
  pact["ste"] = {{"a_quant", "pact"}};
  expect_same_training(pact, 2, 0.03);
}

TEST_CASE("dist: APoT 4/4 on 2 processes trains like one process (alpha gradients summed)", "[dist]") {
  expect_same_training(base("apot", 4, 4), 2, 0.03);
}

TEST_CASE("dist: SLB 2/2 with state batch-norm on 2 processes trains like one process", "[dist]") {
  expect_same_training(base("slb", 2, 2), 2, 0.03);
}

TEST_CASE("dist: ALQ through basis, coordinate, pruning and STE epochs on 2 processes trains like one process", "[dist]") {
  json alq = base("alq", 4, 32);
  alq["epochs"] = 4;
  alq["alq"] = {{"rounds", 1}, {"epoch_basis", 1}, {"epoch_coord", 1}, {"epoch_prune", 1}, {"ste_epochs", 1},
                {"final_coord_epochs", 0}, {"target_bits", 2.0}, {"top_k", 0.5}};
  expect_same_training(alq, 4, 0.03);
}

TEST_CASE("dist: without sync_bn every process keeps an identical replica", "[dist]") {
  json given = base("slb", 2, 2);
  Replica r(given, g_comm);
  r.train(2);  // check_replicas after every epoch throws if the weights differ
  // Rank 0's BN statistics and SLB state reached every process.
  const auto bufs = r.model->named_buffers();
  std::vector<double> mine, all;
  for (auto& [name, t] : bufs) mine.push_back(max_abs(t));
  all.resize(2 * mine.size());
  g_comm->gather_all(mine.data(), mine.size(), all.data());
  CHECK(std::equal(all.begin(), all.begin() + static_cast<std::ptrdiff_t>(mine.size()),
                   all.begin() + static_cast<std::ptrdiff_t>(mine.size())));
  std::string state = r.hooks->state().dump(), zero = state;
  g_comm->broadcast(zero);
  CHECK(state == zero);
}

int main(int argc, char** argv) {
  dist::MpiSession mpi(&argc, &argv);
  g_comm = std::make_shared<dist::MpiCommunicator>();
  const int status = Catch::Session().run(argc, argv);
  g_comm.reset();
  return status;
}
