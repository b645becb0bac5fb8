// train_cifar: trains a CNN on (a subset of) CIFAR-10 -- or CIFAR-100, MNIST or your own
// image folders ("dataset") -- with any registered quantization method and writes what a
// script needs to read the result. The README's first command
// runs it with examples/configs/quickstart.json. It reads top to bottom: config -> data ->
// model -> optimizer -> loop -> evaluation -> save; everything else is library code
// (include/lowbit/train/: config, data, model, optimizer, checkpoint, evaluation, summary).
//
// Output folder (config key "out"):
//   metrics.jsonl   one JSON object per epoch (losses, accuracies, lr, images/s, the method's log)
//   metrics.csv     the same table as CSV
//   steps.jsonl     one JSON object per training step (loss, lr): what the resume test compares
//   config.json     the resolved config (what --print-config shows)
//   summary.json    the run's result (model, method, bits, accuracy, time, size)
//   checkpoint.bin  everything needed to resume bit-exactly (train/checkpoint.hpp)
//   best_checkpoint.bin  with val_images > 0: the checkpoint of the epoch with the best
//                   validation accuracy (--eval takes it)
//   model.lbq       method != fp32: the trained quantized model (quant/export.hpp); --eval takes it
//   model.safetensors  method == fp32: the weights under PyTorch's names (train/state_file.hpp),
//                   for PyTorch's load_state_dict; --eval and --init-from take it
//   report.html     curves, the method's plots, bits per layer, the config (tools/report)
// checkpoint.bin, best_checkpoint.bin and model.lbq are safetensors files with lowbit's
// checksums (docs/safetensors.md); files of the earlier framed format still load.
//
// Several processes: `mpirun -np N build/bin/train_cifar ...` (a build with LOWBIT_MPI) trains
// one model data-parallel, each process on its shard of every batch, with the same batches
// and steps as one process (dist/data_parallel.hpp, docs/distributed.md); process 0 alone
// prints and writes the files above.
//
// Bad input (config, data, checkpoint) prints one line naming the file or key and exits
// with status 2, leaving existing files untouched. A folder without checkpoint.bin (a run
// that stopped in its first epoch) is started over, by --resume OUT or by a new run into it.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <lowbit/dist/data_parallel.hpp>
#include <lowbit/lowbit.hpp>
#include <memory>
#include <string>
#include <vector>

#include "report/report.hpp"
#if LOWBIT_WITH_MPI
#include <lowbit/dist/mpi.hpp>
#endif

using namespace lowbit;
using json = nlohmann::json;
namespace fs = std::filesystem;

namespace {

const char* kUsage =
    "usage: train_cifar [--config FILE.json]... [--set key=value]... [--data DIR] [--out DIR] [--init-from FILE]\n"
    "       train_cifar --resume OUT [--set epochs=N] [--stop-after-epochs K]\n"
    "       train_cifar --eval FILE [--tta flip] [--json] [--set data=DIR]\n"
    "       train_cifar --export-state FILE OUT.safetensors\n"
    "       mpirun -np N train_cifar ...   data-parallel training in N processes (a build with MPI; docs/distributed.md)\n"
    "  --config FILE      JSON object of config keys (examples/configs/); a method's options in its block\n"
    "  --set k=v          override one key (repeatable), e.g. --set lr=0.05 or --set slb.schedule=sin\n"
    "  --data DIR, --out DIR, --init-from FILE   short for --set data=DIR / out=DIR / init_from=FILE\n"
    "                     (--init-from: start from another run's checkpoint.bin, model.lbq or a .safetensors state\n"
    "                     file, quant/init_from.hpp)\n"
    "  --resume OUT       continue the run in folder OUT from its checkpoint.bin (bit-exactly)\n"
    "  --stop-after-epochs K  stop after K epochs as if interrupted (resume later)\n"
    "  --eval FILE        test accuracy of a checkpoint.bin, model.lbq or .safetensors state file (PyTorch's:\n"
    "                     --set model=... [--set shortcut=B]); --tta flip adds flip TTA\n"
    "  --json             with --eval: print one JSON object (accuracy, loss, per-class accuracy, confusion matrix)\n"
    "  --export-state FILE OUT.safetensors   write an FP32 checkpoint's weights under PyTorch's names (docs/pytorch.md)\n"
    "  --print-config     print the resolved config of the run described so far and exit\n"
    "  --help-config      every key of the run and of every method, with type, default and doc\n"
    "  --version          print lowbit's version\n";

std::string slurp_file(const std::string& path) {
  LOWBIT_CHECK(fs::is_regular_file(path), "'", path, "' is not a regular file");
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

struct Args {
  json given = json::object();  // --config files and --set values, unresolved
  std::vector<std::string> sets;
  std::string resume, eval, tta;
  std::string export_from, export_to;  // --export-state FILE OUT
  std::string omp_wait;  // how idle OpenMP threads wait (kernels/omp_wait.hpp), for the log
  int64_t stop_after = 0;
  bool print_config = false;
  bool json_out = false;  // --eval --json
};

Args parse_args(int argc, char** argv) {
  Args a;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    auto value = [&]() -> std::string {
      LOWBIT_CHECK(i + 1 < argc, "argument ", arg, " needs a value");
      return argv[++i];
    };
    if (arg == "--config") train::apply_config_file(a.given, value());
    else if (arg == "--set") a.sets.push_back(value());
    else if (arg == "--data") a.sets.push_back("data=" + value());
    else if (arg == "--out") a.sets.push_back("out=" + value());
    else if (arg == "--init-from") a.sets.push_back("init_from=" + value());
    else if (arg == "--resume") a.resume = value();
    else if (arg == "--eval") a.eval = value();
    else if (arg == "--export-state") {
      LOWBIT_CHECK(i + 2 < argc, "--export-state needs two values: the checkpoint to read and the .safetensors file to write");
      a.export_from = value();
      a.export_to = value();
    }
    else if (arg == "--tta") a.tta = value();
    else if (arg == "--stop-after-epochs") {
      const std::string v = value();
      char* end = nullptr;
      a.stop_after = std::strtoll(v.c_str(), &end, 10);
      LOWBIT_CHECK(!v.empty() && *end == '\0' && a.stop_after > 0, "--stop-after-epochs expects a positive integer, got '", v, "'");
    } else if (arg == "--print-config") a.print_config = true;
    else if (arg == "--json") a.json_out = true;
    else lowbit::detail::fail("unknown argument '", arg, "'\n", kUsage);
  }
  LOWBIT_CHECK(a.tta.empty() || a.tta == "flip", "--tta expects 'flip' (the only test-time augmentation), got '", a.tta, "'");
  LOWBIT_CHECK(a.resume.empty() || a.eval.empty(), "--resume and --eval cannot be combined");
  LOWBIT_CHECK(a.tta.empty() || !a.eval.empty(), "--tta applies to --eval only (training runs evaluate without TTA)");
  LOWBIT_CHECK(!a.json_out || !a.eval.empty(), "--json applies to --eval only (a training run writes summary.json)");
  LOWBIT_CHECK(a.export_from.empty() || (a.eval.empty() && a.resume.empty()),
               "--export-state cannot be combined with --eval or --resume");
  return a;
}

// --eval --json: one object with what the text lines say, plus per-class accuracy and the
// confusion matrix (rows: the label, columns: the prediction).
json eval_json(const train::EvalResult& r, const data::Dataset& test) {
  json per_class = json::array(), confusion = json::array();
  for (int64_t k = 0; k < r.classes; ++k) {
    per_class.push_back(r.class_accuracy(k));
    confusion.push_back(std::vector<int64_t>(r.confusion.begin() + k * r.classes, r.confusion.begin() + (k + 1) * r.classes));
  }
  return {{"accuracy", r.acc}, {"loss", r.loss}, {"images", test.size()}, {"classes", test.class_names},
          {"per_class_accuracy", per_class}, {"confusion_matrix", confusion}};
}

int run_eval(const Args& a) {
  const train::TrainedModel t = train::load_trained(a.eval, a.sets);
  set_num_threads(t.cfg.at("threads").get<int>());
  std::string where;
  const data::Dataset test = train::load_test_data(t.cfg, &where);
  if (!a.json_out) std::printf("data: %s\n", where.c_str());
  LOWBIT_CHECK(test.channels == t.data.channels && test.height == t.data.height && test.width == t.data.width &&
                   test.num_classes() == t.data.classes,
               "--eval ", a.eval, ": the model was trained on ", t.data.text(), ", the test data '", test.source, "' has ",
               test.shape_string(), " images of ", test.num_classes(), " classes");
  const int64_t batch = t.cfg.at("batch"), n = test.size();
  const train::EvalResult r = train::evaluate(*t.model, test, batch, false, t.data.normalize);
  json out = {{"file", a.eval}, {"data", where}, {"model", t.cfg.at("model")}, {"method", t.cfg.at("method")}};
  out.update(eval_json(r, test));
  if (!a.json_out)
    std::printf("%s: test accuracy %.2f%% (loss %.4f) on %lld images\n", a.eval.c_str(), 100 * r.acc, r.loss, (long long)n);
  if (a.tta == "flip") {
    const train::EvalResult f = train::evaluate(*t.model, test, batch, true, t.data.normalize);
    out["tta_flip"] = eval_json(f, test);
    out["tta_flip"]["mirror_accuracy"] = f.mirror_acc;
    out["tta_flip"]["views_disagree"] = f.disagree;
    if (!a.json_out)
      std::printf("%s: test accuracy with flip TTA (softmax averaged over each image and its mirror) %.2f%% (loss %.4f) on "
                  "%lld images; the mirrored images alone %.2f%%, the two views predict different classes for %.2f%%\n",
                  a.eval.c_str(), 100 * f.acc, f.loss, (long long)n, 100 * f.mirror_acc, 100 * f.disagree);
  }
  if (a.json_out) std::printf("%s\n", out.dump().c_str());
  return 0;
}

// --export-state: an FP32 model's weights as a state file with PyTorch's names.
int run_export_state(const Args& a) {
  const train::TrainedModel t = train::load_trained(a.export_from, a.sets);
  LOWBIT_CHECK(t.cfg.at("method") == quant::kFullPrecision, "--export-state ", a.export_from, ": the model is method '",
               t.cfg.at("method").get<std::string>(), "'; a state file holds an FP32 model (model.lbq is the quantized export)");
  train::save_state_file(a.export_to, t.cfg.at("model"), *t.model,
                         {{"format", train::kRunFormat}, {"config", t.cfg}, {"data_info", t.data.to_json()}});
  std::printf("%s: %s's weights under PyTorch's names (docs/pytorch.md)\n", a.export_to.c_str(),
              t.cfg.at("model").get<std::string>().c_str());
  return 0;
}

int run_train(const Args& a, const std::shared_ptr<const dist::Communicator>& comm) {
  const bool writer = comm->rank() == 0;  // process 0 writes the run's files
  // ---- config: a new run from --config/--set, or a resumed run's stored config.
  train::RunCheckpoint resumed;
  json given = a.given;
  // A run killed before its first checkpoint has only config.json: --resume starts it over.
  const bool restart = !a.resume.empty() && !fs::exists(fs::path(a.resume) / "checkpoint.bin") &&
                       fs::is_regular_file(fs::path(a.resume) / "config.json");
  if (restart) {
    given = io::parse_config_text(slurp_file((fs::path(a.resume) / "config.json").string()), "--resume " + a.resume);
    std::printf("--resume %s: no checkpoint yet (the run stopped in its first epoch); starting it over\n\n", a.resume.c_str());
  } else if (!a.resume.empty()) {
    resumed = train::read_run_checkpoint((fs::path(a.resume) / "checkpoint.bin").string());
    given = train::migrate_flat_config(resumed.config);
    // Another process count splits every batch differently (and, without sync_bn, changes
    // what batch-norm sees): not the run that was started, so not resumed silently.
    const int64_t was = resumed.run.value("processes", int64_t(1));
    LOWBIT_CHECK(was == comm->size(), "--resume ", a.resume, ": the run was trained by ", was, " process",
                 was == 1 ? "" : "es", (was == 1 ? std::string(" (no mpirun)") : " (mpirun -np " + std::to_string(was) + ")"),
                 ", this is ", comm->size(), "; resume it with the same number of processes");
  }
  for (auto& s : a.sets) {  // a resumed run keeps its recipe
    const std::string key = s.substr(0, s.find('='));
    LOWBIT_CHECK(a.resume.empty() || key == "epochs" || key == "threads" || key == "data", "--resume: '", key,
                 "' cannot change when resuming (allowed: epochs, threads, data)");
  }
  for (auto& s : a.sets) train::apply_override(given, s);
  if (!a.resume.empty()) given["out"] = a.resume;
  const json cfg = train::resolve_config(given);
  train::check_config(cfg);
  if (a.print_config) return std::printf("%s", train::config_table(cfg).c_str()), 0;
  const fs::path out = cfg.at("out").get<std::string>();
  if (a.resume.empty() || restart)
    for (const char* f : {"checkpoint.bin", "summary.json"})
      LOWBIT_CHECK(!fs::exists(out / f), "output folder '", out.string(), "' already holds a run (", f,
                   "); pass --resume ", out.string(), " to continue it, or choose another --out DIR");
  // Everything read from other files is read before anything is written.
  const bool fresh = a.resume.empty() || restart;
  const std::string init_path = fresh ? cfg.at("init_from").get<std::string>() : "";
  const nn::StateDict init_state = init_path.empty() ? nn::StateDict{} : train::trained_state(init_path, cfg.at("model"));
  std::shared_ptr<nn::Module> teacher;  // knowledge distillation (Hinton et al. 2015), never trained
  train::DataInfo teacher_data;
  if (const std::string kd = cfg.at("kd_teacher"); !kd.empty()) {
    try {
      const train::TrainedModel t = train::load_trained(kd, {});
      teacher = t.model, teacher_data = t.data;
    } catch (const std::exception& e) {
      lowbit::detail::fail("config key 'kd_teacher' = '", kd, "': ", e.what());
    }
    teacher->eval();
  }
  // threads = 0: all cores, shared among the processes of this machine under mpirun.
  const int threads = cfg.at("threads").get<int>();
  set_num_threads(threads > 0 || comm->local_size() == 1 ? threads : std::max(1, max_threads() / comm->local_size()));
  std::printf("%s\nOpenMP wait policy: %s\n\n", train::config_table(cfg).c_str(), a.omp_wait.c_str());

  // ---- data
  train::RunData d = train::load_run_data(cfg);
  const train::DataInfo info = d.info();
  std::printf("data: %s\n%s; train images: %lld, validation images: %lld, test images: %lld\n\n", d.description.c_str(),
              info.text().c_str(), (long long)d.train.size(), (long long)d.val.size(), (long long)d.test.size());
  if (!fresh && resumed.run.contains("data_info")) {  // the same data as the run had, or a clear stop
    const train::DataInfo was = train::DataInfo::from_json(resumed.run.at("data_info"), "--resume " + a.resume);
    LOWBIT_CHECK(was.to_json() == info.to_json(), "--resume ", a.resume, ": the run was trained on ", was.text(),
                 " normalized with ", was.to_json().dump(), "; the data now gives ", info.to_json().dump());
  }
  LOWBIT_CHECK(cfg.at("cutout").get<int64_t>() <= std::max(info.height, info.width), "config key 'cutout' = ",
               cfg.at("cutout").dump(), ": a square larger than the ", info.text(), " (expected at most their side)");
  LOWBIT_CHECK(!teacher || teacher_data.to_json() == info.to_json(), "config key 'kd_teacher': the teacher was trained on ",
               teacher_data.text(), " normalized with ", teacher_data.to_json().dump(), "; this run's data gives ",
               info.to_json().dump());
  if (writer) {
    std::error_code mkdir_error;  // (std::filesystem's own message names no config key)
    fs::create_directories(out, mkdir_error);
    LOWBIT_CHECK(!mkdir_error, "config key 'out' = '", out.string(), "': cannot create the folder (", mkdir_error.message(), ")");
    // A run killed inside an atomic write leaves "<file>.tmp" beside the intact file: drop them.
    for (const char* f : {"config.json", "checkpoint.bin", "best_checkpoint.bin", "summary.json", "metrics.csv", "metrics.jsonl",
                          "steps.jsonl", "model.lbq", "model.safetensors", "weight_hist.json", "report.html"})
      if (const fs::path tmp = out / (std::string(f) + ".tmp"); fs::is_regular_file(tmp)) {
        fs::remove(tmp);
        std::printf("removed %s, left by an interrupted write\n", tmp.string().c_str());
      }
    io::write_json_atomic((out / "config.json").string(), cfg);  // the report reads it while the run is in progress
  }
  data::LoaderOptions lo;
  lo.batch_size = cfg.at("batch");
  lo.augment = cfg.at("augment");
  lo.augment_config.cutout = cfg.at("cutout");
  lo.augment_config.pad = cfg.at("crop_pad");
  lo.augment_config.random_crop = cfg.at("crop_pad").get<int>() > 0;
  // Digits are not mirror-symmetric: a flipped 2 is no 2. auto = on except for MNIST.
  lo.augment_config.horizontal_flip = cfg.at("flip") == "on" || (cfg.at("flip") == "auto" && cfg.at("dataset") != "mnist");
  lo.normalize = d.normalize;
  lo.seed = cfg.at("seed");
  lo.shard = comm->rank(), lo.shards = comm->size();  // this process's part of every batch
  const auto train_ds = std::make_shared<const data::Dataset>(std::move(d.train));
  data::DataLoader loader(train_ds, lo);

  // ---- model, method hooks, optimizer, schedule
  auto model = train::build_model(cfg, info);
  model->train();
  // Several processes: gradients summed, batch-norm synchronized with sync_bn (dist/data_parallel.hpp).
  const dist::DataParallel dp(comm, *model, cfg.at("sync_bn").get<bool>());
  json run = {{"epoch", 0}, {"step", 0}, {"best_test_acc", 0.0}, {"train_s", 0.0}, {"wall_s", 0.0}, {"train_images_seen", 0},
              {"data_info", info.to_json()}};
  if (comm->size() > 1) run["processes"] = comm->size();
  if (!init_path.empty()) {
    const quant::InitReport r = quant::init_from(*model, init_state);
    std::printf("%s\n", r.text(init_path).c_str());
    LOWBIT_CHECK(r.loaded > 0, "--init-from '", init_path, "': no tensor of it fits this model (another architecture?)");
    run["init_from"] = r.to_json(init_path);  // kept in checkpoints, so a resumed run reports it
  }
  const quant::QuantSpec spec = quant::resolve(train::quant_spec(cfg));
  auto hooks = quant::make_hooks(spec);
  auto opt = train::make_optimizer(*model, cfg, *hooks);
  const int64_t steps_per_epoch = loader.batches_per_epoch(), epochs = cfg.at("epochs"), batch = cfg.at("batch");
  const optim::Schedule sched = train::make_schedule(cfg, steps_per_epoch);
  const double label_smoothing = cfg.at("label_smoothing"), kd_alpha = cfg.at("kd_alpha"), kd_t = cfg.at("kd_temperature");
  const bool kd_flip = cfg.at("kd_teacher_tta") == "flip";
  if (!fresh) {
    model->load_state_dict(resumed.model);
    opt->load_state(resumed.optim);
    loader.set_state(resumed.loader.get<std::string>());
    run = resumed.run;
    for (const char* k : {"best_test_acc", "train_s", "wall_s", "train_images_seen"})
      LOWBIT_CHECK(run.contains(k), "--resume ", a.resume, ": checkpoint.bin has no run value \"", k, "\" (a damaged file)");
    hooks->load_state(resumed.method_state);
    if (writer) {
      io::keep_lines((out / "metrics.jsonl").string(), run.at("epoch").get<int64_t>());
      io::keep_lines((out / "steps.jsonl").string(), run.at("step").get<int64_t>());
    }
    std::printf("resuming %s after epoch %lld (step %lld)\n\n", out.string().c_str(), (long long)run.at("epoch").get<int64_t>(),
                (long long)run.at("step").get<int64_t>());
  } else if (writer) {
    std::ofstream(out / "metrics.jsonl", std::ios::trunc);
    std::ofstream(out / "steps.jsonl", std::ios::trunc);
  }
  std::ofstream metrics, steps_log;  // process 0's
  if (writer) metrics.open(out / "metrics.jsonl", std::ios::app), steps_log.open(out / "steps.jsonl", std::ios::app);
  int64_t params = 0;
  for (auto& p : model->parameters()) params += p.numel();
  std::printf("model %s: %lld parameters\n", cfg.at("model").get<std::string>().c_str(), (long long)params);
  if (comm->size() > 1)
    std::printf("data-parallel: %d processes, each %lld of every batch of %lld images, %d thread%s each; batch-norm %s\n",
                comm->size(), (long long)(batch / comm->size()), (long long)batch, max_threads(), max_threads() == 1 ? "" : "s",
                cfg.at("sync_bn").get<bool>() ? "synchronized (sync_bn)" : "per process (each its shard's statistics)");
  // Per-layer bits, storage and MACs: one eval-mode forward of a zero image, which changes no state.
  const Shape one_image{1, info.channels, info.height, info.width};
  std::printf("%s\n", quant::summary(*model, one_image).table().c_str());

  // ---- the training loop
  const train::FiniteCheck finite(*model);
  const auto wall0 = std::chrono::steady_clock::now();
  const double wall_before = run.at("wall_s").get<double>();
  int64_t step = run.at("step");
  for (int64_t epoch = run.at("epoch").get<int64_t>(); epoch < epochs; ++epoch) {
    io::ProgressBar bar("epoch " + std::to_string(epoch + 1) + "/" + std::to_string(epochs), steps_per_epoch);
    const auto t0 = std::chrono::steady_clock::now();
    double loss_sum = 0, lr = sched.lr_at(step);
    int64_t correct = 0, seen = 0, k = 0;
    data::Batch b;
    while (loader.next(b)) {
      const quant::StepContext ctx{step, sched.total_steps, steps_per_epoch, epoch};
      lr = sched.lr_at(step);
      opt->set_lr(lr);
      hooks->begin_step(*model, ctx);
      Tensor<float> logits = (*model)(b.images);
      Tensor<float> loss = cross_entropy(logits, b.labels, label_smoothing);
      int64_t batch_correct = 0;
      {
        NoGradGuard no_grad;
        const Tensor<int64_t> pred = argmax(logits, 1);
        for (int64_t i = 0; i < b.size(); ++i) batch_correct += pred.data()[i] == b.labels[static_cast<size_t>(i)];
      }
      if (teacher) {  // the teacher's softened outputs on the same augmented batch
        Tensor<float> target;
        {
          NoGradGuard no_grad;  // flip-averaged: T log(mean of the softened distributions) are logits of that mean
          target = kd_flip ? nn::flip_tta_log_probs(*teacher, b.images, kd_t) * static_cast<float>(kd_t) : (*teacher)(b.images);
        }
        loss = loss * static_cast<float>(1 - kd_alpha) + distillation_loss(logits, target, kd_t) * static_cast<float>(kd_alpha);
      }
      // The whole batch's loss, images and correct predictions (one process: this batch's).
      std::vector<double> sums = {loss.item() * static_cast<double>(b.size()), static_cast<double>(b.size()),
                                  static_cast<double>(batch_correct)};
      if (comm->size() > 1) dp.sum(sums);
      const int64_t batch_images = static_cast<int64_t>(sums[1]);
      const double lv = sums[0] / sums[1];
      // A diverged run stops at the first NaN/inf loss, gradient or weight, naming where it
      // broke (train/finite.hpp); the last checkpoint stays as it was.
      const std::string where = "at epoch " + std::to_string(epoch + 1) + ", step " + std::to_string(k + 1) + " of " +
                                std::to_string(steps_per_epoch) + ": the run diverged (try a lower lr); " +
                                (epoch > 0 ? (out / "checkpoint.bin").string() + " still holds epoch " + std::to_string(epoch)
                                           : std::string("no checkpoint was written"));
      if (!std::isfinite(lv)) {
        finite.weights(where);  // a weight broken by the previous step's method hook, or else a layer's output
        const std::string layer = finite.first_bad_output(*model, b.images);
        lowbit::detail::fail("the training loss is ", lv, " ", where,
                             layer.empty() ? "" : "; the first layer output that is not finite: ", layer);
      }
      if (comm->size() > 1) {  // this process's share of the batch's loss; then the shares' gradients added up
        (loss * static_cast<float>(dist::DataParallel::loss_weight(b.size(), batch_images))).backward();
        dp.sum_gradients(*model);
      } else {
        loss.backward();
      }
      finite.gradients(where);
      opt->step();
      opt->zero_grad(/*set_to_none=*/true);  // no gradient is alive during end_step or the next forward
      hooks->end_step(*model, b.images, ctx);
      finite.weights(where);
      correct += static_cast<int64_t>(sums[2]);
      loss_sum += sums[0];
      seen += batch_images;
      char line[160];
      std::snprintf(line, sizeof line, "{\"epoch\": %lld, \"step\": %lld, \"loss\": %.9g, \"lr\": %.9g}", (long long)(epoch + 1),
                    (long long)step, lv, lr);
      if (writer) steps_log << line << '\n';
      ++step;
      bar.update(++k, loss_sum / static_cast<double>(seen), static_cast<double>(correct) / static_cast<double>(seen), seen);
    }
    if (writer) steps_log.flush();
    const double train_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();

    // ---- evaluation, the epoch's log line, the checkpoint
    const json method_log =
        hooks->end_epoch(*model, train::unaugmented_batches(train_ds, batch, d.normalize, comm->rank(), comm->size()), epoch);
    if (comm->size() > 1) {  // rank 0's BN statistics and method state everywhere; the weights must agree already
      dp.broadcast_state(*model, *hooks);
      dp.check_replicas(*model);
    }
    const train::EvalResult ev = train::evaluate(*model, d.test, batch, false, d.normalize, comm.get());
    const double best = std::max(run.at("best_test_acc").get<double>(), ev.acc);
    json m = {{"epoch", epoch + 1}, {"train_loss", loss_sum / static_cast<double>(seen)},
              {"train_acc", static_cast<double>(correct) / static_cast<double>(seen)},
              {"test_loss", ev.loss}, {"test_acc", ev.acc}, {"lr", lr}, {"epoch_s", train_s},
              {"images_per_s", static_cast<double>(seen) / train_s}};
    // The validation split chooses the best epoch; the test accuracy at that epoch is the honest figure.
    bool new_best_val = false;
    if (!d.val.empty()) {
      const train::EvalResult v = train::evaluate(*model, d.val, batch, false, d.normalize, comm.get());
      m["val_loss"] = v.loss, m["val_acc"] = v.acc;
      new_best_val = !run.contains("best_val_acc") || v.acc > run.at("best_val_acc").get<double>();
      if (new_best_val) run["best_val_acc"] = v.acc, run["best_val_epoch"] = epoch + 1, run["test_acc_at_best_val"] = ev.acc;
    }
    m.update(method_log);
    if (writer) {
      metrics << m.dump() << '\n';
      metrics.flush();
      io::write_csv_from_jsonl((out / "metrics.jsonl").string(), (out / "metrics.csv").string());
    }
    std::printf("epoch %lld/%lld: test accuracy %.2f%% (loss %.4f), best %.2f%%", (long long)(epoch + 1), (long long)epochs,
                100 * ev.acc, ev.loss, 100 * best);
    if (!d.val.empty())
      std::printf("; validation %.2f%%, best %.2f%% at epoch %lld (test %.2f%% there)", 100 * m.at("val_acc").get<double>(),
                  100 * run.at("best_val_acc").get<double>(), (long long)run.at("best_val_epoch").get<int64_t>(),
                  100 * run.at("test_acc_at_best_val").get<double>());
    std::printf("\n");
    run["epoch"] = epoch + 1;
    run["step"] = step;
    run["best_test_acc"] = best;
    run["final_test_acc"] = ev.acc;
    run["train_s"] = run.at("train_s").get<double>() + train_s;
    run["train_images_seen"] = run.at("train_images_seen").get<int64_t>() + seen;
    run["wall_s"] = wall_before + std::chrono::duration<double>(std::chrono::steady_clock::now() - wall0).count();
    if (writer) train::save_run_checkpoint((out / "checkpoint.bin").string(), cfg, *model, *opt, loader.state(), run, hooks->state());
    if (writer && new_best_val)  // the same checkpoint under a second name: --eval it, or --init-from it
      train::save_run_checkpoint((out / "best_checkpoint.bin").string(), cfg, *model, *opt, loader.state(), run, hooks->state());
    if (a.stop_after > 0 && epoch + 1 >= a.stop_after && epoch + 1 < epochs) {
      std::printf("stopping after epoch %lld as asked (--stop-after-epochs); continue with --resume %s\n",
                  (long long)(epoch + 1), out.string().c_str());
      return 0;
    }
  }

  // ---- save: summary, the quantized export, the report (process 0)
  if (!writer) return 0;
  json summary = train::run_summary(cfg, run, loader.dataset().size(), d.test.size(), d.description);
  if (comm->size() > 1) summary["processes"] = comm->size();
  summary.update(train::model_summary(*model, cfg, one_image));
  const json& ws = summary.at("weight_storage");
  std::printf("\nweights: %.4f average bits, %lld bytes (%.2fx smaller than FP32)\n", ws.at("avg_weight_bits").get<double>(),
              (long long)ws.at("weight_bytes").get<int64_t>(), ws.at("compression_ratio").get<double>());
  if (cfg.at("method") != quant::kFullPrecision) {  // integer codes + scales + FP32 rest; --eval model.lbq rebuilds it
    quant::export_quantized(*model, (out / "model.lbq").string(), {{"format", train::kRunFormat}, {"config", cfg}, {"spec", spec.to_json()}, {"data_info", info.to_json()}});
    summary["quantized_model"] = (out / "model.lbq").string();
  } else {  // the weights under PyTorch's names (train/state_file.hpp): PyTorch loads them, --eval and --init-from too
    train::save_state_file((out / "model.safetensors").string(), cfg.at("model"), *model,
                           {{"format", train::kRunFormat}, {"config", cfg}, {"data_info", info.to_json()}},
                           run.at("step").get<int64_t>());
    summary["state_file"] = (out / "model.safetensors").string();
  }
  io::write_json_atomic((out / "summary.json").string(), summary);
  if (const json h = train::weight_histograms(*model); !h.at("layers").empty())
    io::write_json_atomic((out / "weight_hist.json").string(), h);
  const std::string report_path = report::write_report({out.string()}, out.string());
  std::printf("\nfinal test accuracy %.2f%% (best %.2f%%) in %.0f s; results in %s/ (summary.json, metrics.jsonl, checkpoint.bin)\n",
              100 * summary.at("final_test_acc").get<double>(), 100 * summary.at("best_test_acc").get<double>(),
              summary.at("wall_s").get<double>(), out.string().c_str());
  std::printf("report: %s\n", report_path.c_str());
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  // Idle OpenMP threads sleep instead of spinning, so a run beside another busy process keeps
  // its speed (kernels/omp_wait.hpp); this re-executes the program once.
  const std::string omp_wait = use_passive_omp_wait(argv);
  // One process, or one of the N that mpirun started (then every other process prints nothing).
  std::shared_ptr<const dist::Communicator> comm = std::make_shared<dist::SingleProcess>();
#if LOWBIT_WITH_MPI
  std::unique_ptr<dist::MpiSession> mpi;
  if (dist::launched_by_mpi()) {
    mpi = std::make_unique<dist::MpiSession>(&argc, &argv);
    comm = std::make_shared<dist::MpiCommunicator>();
    if (comm->rank() != 0 && !std::freopen("/dev/null", "w", stdout))
      return std::fprintf(stderr, "train_cifar: error: process %d cannot silence its output\n", comm->rank()), 2;
  }
#endif
  try {
    for (int i = 1; i < argc; ++i) {
      const std::string arg = argv[i];
      if (arg == "--help" || arg == "-h") return std::printf("%s", kUsage), 0;
      if (arg == "--help-config") return std::printf("%s", train::config_help().c_str()), 0;
      if (arg == "--version")
        return std::printf("lowbit %d.%d.%d\n", LOWBIT_VERSION_MAJOR, LOWBIT_VERSION_MINOR, LOWBIT_VERSION_PATCH), 0;
    }
    Args a = parse_args(argc, argv);
    a.omp_wait = omp_wait;
    LOWBIT_CHECK(comm->size() == 1 || (a.eval.empty() && a.export_from.empty()),
                 "--eval and --export-state run in one process (not under mpirun -np ", comm->size(), ")");
    if (!a.export_from.empty()) return run_export_state(a);
    return a.eval.empty() ? run_train(a, comm) : run_eval(a);
  } catch (const std::exception& e) {
    if (comm->size() == 1) {
      std::fprintf(stderr, "train_cifar: error: %s\n", e.what());
      return 2;
    }
    // One process failing leaves the others waiting in a collective: end them all (mpirun
    // then exits with this status). The checkpoint on disk is the last complete one.
    std::fprintf(stderr, "train_cifar: error (process %d of %d): %s\n", comm->rank(), comm->size(), e.what());
    std::fflush(stderr);
#if LOWBIT_WITH_MPI
    dist::MpiSession::abort(2);
#endif
    return 2;
  }
}
