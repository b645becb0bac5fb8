// train_sr: single-image super-resolution with VDSR (Kim et al., CVPR 2016) in full precision
// or with any registered quantization method -- the SLB paper's second experiment (Sec. 4.3,
// Fig. 2: a VDSR with 1-bit weights trained by SLB and by DoReFa). It reads top to bottom
// like train_cifar: config -> data -> model -> optimizer -> loop -> evaluation -> save.
//
//   train_sr --config examples/configs/sr/vdsr_fp32.json [--set key=value]...   train a model
//   train_sr --resume OUT                       continue a run bit-exactly
//   train_sr --eval RUN [--eval RUN]... [--pictures DIR] [--json FILE]
//       PSNR (Y channel) of each run's model and of bicubic on the test sets; --pictures
//       writes side-by-side PNG crops (HR | bicubic | each model) and an index.html page
//
// Data (config key "data", or searched: data/sr, ../shared/data/sr): a folder holding the
// training images (train_set, VDSR's 291) and the test sets (Set5, Set14); the pipeline is
// MATLAB's (rgb2ycbcr, imresize bicubic), include/lowbit/data/sr/, so that the bicubic
// figures equal the published ones. Training: random 41 x 41 luma patches of the x2/x3/x4
// pairs with VDSR's flips, rotations and down-scalings (data/sr/pairs.hpp); the loss is
// VDSR's 1/2 ||HR - f(ILR)||^2 per patch averaged over the batch (ops/squared_error.hpp);
// gradients are clipped as VDSR Sec. 3.3 does (optim/clip.hpp).
//
// Output folder (config key "out"): config.json, metrics.jsonl/.csv (per epoch: loss, train
// PSNR, the monitor set's PSNR per scale, lr, the method's log), steps.jsonl, checkpoint.bin
// (resume), summary.json (the final PSNR table: every test set x eval scale, bicubic beside).
// The epochs' PSNR on the monitor set is for watching a run; nothing is chosen by it: the
// model reported is the last one.
//
// Bad input (config, data, a checkpoint, an image) prints one line naming the file or key and
// exits with status 2; nothing already saved is overwritten.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <lowbit/data/sr/pairs.hpp>
#include <lowbit/data/sr/psnr.hpp>
#include <lowbit/lowbit.hpp>
#include <map>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

using namespace lowbit;
using json = nlohmann::json;
namespace fs = std::filesystem;
namespace sr = lowbit::data::sr;

namespace {

const char* kFormat = "lowbit.train_sr";  // the checkpoints' format (train/checkpoint.hpp)

const char* kUsage =
    "usage: train_sr [--config FILE.json]... [--set key=value]... [--data DIR] [--out DIR]\n"
    "       train_sr --resume OUT [--set epochs=N] [--stop-after-epochs K]\n"
    "       train_sr --eval RUN [--eval RUN]... [--pictures DIR] [--picture NAME@SCALE]... [--crop N] [--json FILE]\n"
    "  --config FILE      JSON object of config keys (examples/configs/sr/vdsr_*.json); a method's options in its block\n"
    "  --set k=v          override one key (repeatable), e.g. --set epochs=40 or --set slb.t_end=10\n"
    "  --data DIR         folder with the training set (291/) and the test sets (Set5/, Set14/)\n"
    "  --resume OUT       continue the run in folder OUT from its checkpoint.bin (bit-exactly)\n"
    "  --stop-after-epochs K  stop after K epochs as if interrupted (resume later)\n"
    "  --eval RUN         a run folder or its checkpoint.bin: PSNR on the test sets at eval_scales, bicubic beside\n"
    "  --pictures DIR     with --eval: side-by-side crops HR | bicubic | each model as PNG, and DIR/index.html\n"
    "  --picture N@S      the image and scale of a picture (repeatable; default head_GT@2 and butterfly_GT@3, Fig. 2)\n"
    "  --crop N           the side of the crops in HR pixels (default 96), around the image centre\n"
    "  --json FILE        with --eval: the rows {model, w_bits, set, scale, psnr_y, budget} as a JSON list\n"
    "  --print-config     print the resolved config and exit;  --help-config  every key with its doc\n";

// The trainer's own keys; the method keys are train_cifar's (quant_spec reads them).
io::OptionSchema sr_schema() {
  const double inf = io::OptionSchema::kInf;
  io::OptionSchema s;
  s.text("name", "", "the model's name in --eval tables and pictures (\"\" = the method's name)")
      .choice("model", "vdsr", {"vdsr"}, "vdsr: 3x3 convs with ReLU, no BN, global residual (Kim et al. 2016)")
      .integer("depth", 20, "convolutions (VDSR: 20)", 2, 200)
      .integer("width", 64, "channels of the hidden convolutions (VDSR: 64)", 1, 4096)
      .choice("method", quant::kFullPrecision, quant::method_names(), "quantization method; its options in its block")
      .integer("w_bits", 32, "weight bits of the middle convs; 32 = full precision", 1, 32)
      .integer("a_bits", 32, "activation bits of the middle convs' inputs; 32 = full precision", 1, 32)
      .choice("first_layer", "default", {"default", "fp32", "8bit", "same"}, "first conv: default (the method's) | fp32 | 8bit | same")
      .choice("last_layer", "default", {"default", "fp32", "8bit", "same"}, "last conv: as first_layer")
      .text("data", "", "folder holding train_set and the test sets; empty = search data/sr, ../shared/data/sr")
      .text("train_set", "291", "training images: a subfolder of data (VDSR: 291 = T91 + BSD200)")
      .text("test_sets", "Set5,Set14", "comma-separated subfolders of data evaluated at the end")
      .text("monitor_set", "Set5", "subfolder of data evaluated after every eval_every epochs (watching only)")
      .int_list("scales", {2, 3, 4}, "training scale factors (VDSR: one model for x2, x3, x4)", 2)
      .int_list("eval_scales", {2, 3, 4}, "scale factors of the evaluations", 2)
      .number_list("downsizes", {1.0, 0.7, 0.5}, "training-image down-scalings before the pairs (VDSR's generate_train.m)", 0.0,
                   1.0, true)
      .integer("patch", 41, "training patch side (VDSR: 41)", 8, 1024)
      .integer("epochs", 20, "epochs", 1, 100000)
      .integer("steps_per_epoch", 250, "steps of an epoch (patches are sampled at random)", 1, 100000000)
      .integer("batch", 64, "patches per step (VDSR: 64)", 1, 65536)
      .choice("optimizer", "sgd", {"sgd", "adam", "adamw"}, "sgd (VDSR) | adam | adamw")
      .number("lr", 0.1, "peak learning rate (VDSR: 0.1 with adjustable clipping)", 0.0, inf, true)
      .number("momentum", 0.9, "SGD momentum", 0.0)
      .boolean("nesterov", false, "SGD Nesterov momentum (VDSR: plain)")
      .choice("schedule", "multistep", {"cosine", "multistep", "exp", "constant"}, "learning-rate schedule, per step")
      .number("warmup_epochs", 0.0, "linear warmup length, in epochs", 0.0, 100000)
      .int_list("milestones", {}, "multistep: epochs at which lr *= gamma (VDSR: every 20 of 80)", 0)
      .number("gamma", 0.1, "multistep / exp factor", 0.0)
      .number("weight_decay", 1e-4, "on conv weights (VDSR: 1e-4)", 0.0)
      .choice("grad_clip", "adjustable", {"adjustable", "norm", "none"},
              "adjustable: each gradient element into [-clip_theta/lr, clip_theta/lr] (VDSR Sec. 3.3) | norm: the "
              "gradients' L2 norm at most clip_theta (the PyTorch VDSR port's rule, theta 0.4) | none")
      .number("clip_theta", 1e-4, "theta of grad_clip (adjustable: 1e-4, chosen on training loss: "
              "docs/super_resolution.md)", 0.0, inf, true)
      .integer("eval_every", 1, "epochs between monitor_set evaluations (0 = only the final evaluation)", 0)
      .integer("seed", 0, "seed of initialization and patch sampling", 0, 9007199254740992.0)
      .integer("threads", 0, "OpenMP threads (0 = all cores)", 0, 1024)
      .text("out", "runs/sr", "output folder (--out)");
  return s;
}

std::vector<std::string> split_list(const std::string& text, const std::string& key) {
  std::vector<std::string> out;
  std::stringstream ss(text);
  for (std::string item; std::getline(ss, item, ',');) {
    LOWBIT_CHECK(!item.empty(), "config key '", key, "' = \"", text, "\": an empty name (expected comma-separated folder names)");
    out.push_back(item);
  }
  LOWBIT_CHECK(!out.empty(), "config key '", key, "' is empty (expected comma-separated folder names)");
  return out;
}

json resolve(const json& given) {
  const io::OptionSchema schema = sr_schema();
  json cfg = train::resolve_with_methods(given, schema);
  LOWBIT_CHECK(!cfg.at("out").get<std::string>().empty(), "config key 'out' must name a folder");
  for (const char* k : {"scales", "eval_scales"}) {
    LOWBIT_CHECK(!cfg.at(k).empty(), "config key '", k, "' is empty (expected scale factors such as [2, 3, 4])");
    for (auto& v : cfg.at(k))
      LOWBIT_CHECK(v.get<int64_t>() >= 2 && v.get<int64_t>() <= 8, "config key '", k, "' holds ", v.dump(),
                   ": a scale factor must be 2..8");
  }
  LOWBIT_CHECK(!cfg.at("downsizes").empty(), "config key 'downsizes' is empty (expected factors in (0, 1])");
  split_list(cfg.at("test_sets"), "test_sets");
  const quant::QuantSpec spec = quant::resolve(train::quant_spec(cfg));
  quant::find_method(spec.method).check_epochs(spec, cfg.at("epochs").get<int64_t>());
  return cfg;
}

// The data folder: the config's, or the first of the usual places holding the training set.
std::string data_root(const json& cfg) {
  const std::string given = cfg.at("data"), train_set = cfg.at("train_set");
  if (!given.empty()) {
    LOWBIT_CHECK(fs::is_directory(fs::path(given) / train_set), "config key 'data' = '", given, "': no folder '",
                 train_set, "' in it (expected the SR data: ", train_set, "/, Set5/, Set14/)");
    return given;
  }
  std::vector<fs::path> bases = {fs::current_path(), fs::current_path().parent_path()};
#ifdef LOWBIT_SOURCE_DIR
  bases.push_back(LOWBIT_SOURCE_DIR);
#endif
  for (const fs::path& b : bases)
    for (const fs::path& rel : {fs::path("data/sr"), fs::path("../shared/data/sr")})
      if (std::error_code ec; fs::is_directory(b / rel / train_set, ec)) return (b / rel).lexically_normal().string();
  lowbit::detail::fail("no SR data found: none of data/sr and ../shared/data/sr (from the working directory, its parent "
                       "and the source tree) holds '", train_set, "/'; pass --data DIR");
}

std::shared_ptr<nn::Vdsr> build_model(const json& cfg) {
  Generator gen(cfg.at("seed").get<uint64_t>());
  return nn::vdsr(gen, quant::make_factory(train::quant_spec(cfg)), cfg.at("depth"), cfg.at("width"));
}

// The model's output for one test image, on the 0..255 scale (the input is the bicubic ILR).
sr::Plane super_resolve(nn::Module& model, const sr::Plane& ilr) {
  NoGradGuard no_grad;
  nn::Tensorf x = nn::Tensorf::empty({1, 1, ilr.height, ilr.width});
  for (size_t i = 0; i < ilr.px.size(); ++i) x.data()[i] = ilr.px[i] / 255.0f;
  const nn::Tensorf y = model(x);
  sr::Plane out(ilr.height, ilr.width);
  for (size_t i = 0; i < out.px.size(); ++i) out.px[i] = y.data()[i] * 255.0f;
  return out;
}

// Mean PSNR of the model (and of bicubic) over a loaded test set.
struct SetPsnr {
  double model = 0, bicubic = 0;
};
SetPsnr evaluate_set(nn::Module* model, const std::vector<sr::TestImage>& images, int scale) {
  SetPsnr r;
  for (const sr::TestImage& im : images) {
    r.bicubic += sr::psnr_y(im.hr, im.bicubic, scale);
    if (model) r.model += sr::psnr_y(im.hr, super_resolve(*model, im.bicubic), scale);
  }
  r.model /= static_cast<double>(images.size()), r.bicubic /= static_cast<double>(images.size());
  return r;
}

std::string db(double v) {  // "33.66"
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.2f", v);
  return buf;
}

std::string slurp_file(const std::string& path) {
  LOWBIT_CHECK(fs::is_regular_file(path), "'", path, "' is not a regular file");
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

struct Args {
  json given = json::object();
  std::vector<std::string> sets, evals, pictures;
  std::string resume, pictures_dir, json_out;
  int64_t stop_after = 0, crop = 96;
  bool print_config = false;
};

int64_t positive_int(const std::string& flag, const std::string& v) {
  char* end = nullptr;
  const long long n = std::strtoll(v.c_str(), &end, 10);
  LOWBIT_CHECK(!v.empty() && *end == '\0' && n > 0, flag, " expects a positive integer, got '", v, "'");
  return n;
}

Args parse_args(int argc, char** argv) {
  Args a;
  const io::OptionSchema schema = sr_schema();
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    auto value = [&]() -> std::string {
      LOWBIT_CHECK(i + 1 < argc, "argument ", arg, " needs a value");
      return argv[++i];
    };
    if (arg == "--config") train::apply_config_file(a.given, value(), &schema);
    else if (arg == "--set") a.sets.push_back(value());
    else if (arg == "--data") a.sets.push_back("data=" + value());
    else if (arg == "--out") a.sets.push_back("out=" + value());
    else if (arg == "--resume") a.resume = value();
    else if (arg == "--eval") a.evals.push_back(value());
    else if (arg == "--pictures") a.pictures_dir = value();
    else if (arg == "--picture") a.pictures.push_back(value());
    else if (arg == "--crop") a.crop = positive_int(arg, value());
    else if (arg == "--json") a.json_out = value();
    else if (arg == "--stop-after-epochs") a.stop_after = positive_int(arg, value());
    else if (arg == "--print-config") a.print_config = true;
    else lowbit::detail::fail("unknown argument '", arg, "'\n", kUsage);
  }
  LOWBIT_CHECK(a.resume.empty() || a.evals.empty(), "--resume and --eval cannot be combined");
  LOWBIT_CHECK(!a.evals.empty() || (a.pictures_dir.empty() && a.pictures.empty() && a.json_out.empty()),
               "--pictures, --picture and --json apply to --eval only");
  return a;
}

// ---------------------------------------------------------------------------------------------
int run_train(const Args& a) {
  const io::OptionSchema schema = sr_schema();
  train::RunCheckpoint resumed;
  json given = a.given;
  const bool restart = !a.resume.empty() && !fs::exists(fs::path(a.resume) / "checkpoint.bin") &&
                       fs::is_regular_file(fs::path(a.resume) / "config.json");
  if (restart) {
    given = io::parse_config_text(slurp_file((fs::path(a.resume) / "config.json").string()), "--resume " + a.resume);
    std::printf("--resume %s: no checkpoint yet (the run stopped in its first epoch); starting it over\n\n", a.resume.c_str());
  } else if (!a.resume.empty()) {
    resumed = train::read_run_checkpoint((fs::path(a.resume) / "checkpoint.bin").string(), kFormat);
    given = resumed.config;
  }
  for (auto& s : a.sets) {
    const std::string key = s.substr(0, s.find('='));
    LOWBIT_CHECK(a.resume.empty() || key == "epochs" || key == "threads" || key == "data", "--resume: '", key,
                 "' cannot change when resuming (allowed: epochs, threads, data)");
    train::apply_override(given, s, &schema);
  }
  if (!a.resume.empty()) given["out"] = a.resume;
  const json cfg = resolve(given);
  if (a.print_config) return std::printf("%s", train::config_table(cfg).c_str()), 0;
  const fs::path out = cfg.at("out").get<std::string>();
  const bool fresh = a.resume.empty() || restart;
  if (fresh)
    for (const char* f : {"checkpoint.bin", "summary.json"})
      LOWBIT_CHECK(!fs::exists(out / f), "output folder '", out.string(), "' already holds a run (", f, "); pass --resume ",
                   out.string(), " to continue it, or choose another --out DIR");
  set_num_threads(cfg.at("threads").get<int>());
  std::printf("%s\n", train::config_table(cfg).c_str());

  // ---- data: every pair of the training set in memory; the monitor and test sets.
  const std::string root = data_root(cfg);
  sr::TrainSetOptions topt;
  topt.scales = cfg.at("scales").get<std::vector<int>>();
  topt.downsizes = cfg.at("downsizes").get<std::vector<double>>();
  topt.patch = cfg.at("patch");
  const auto t_data = std::chrono::steady_clock::now();
  const sr::TrainPairs pairs((fs::path(root) / cfg.at("train_set").get<std::string>()).string(), topt);
  std::vector<int> eval_scales;
  for (auto& s : cfg.at("eval_scales")) eval_scales.push_back(s.get<int>());
  std::vector<std::vector<sr::TestImage>> monitor;  // per eval scale
  for (int s : eval_scales)
    monitor.push_back(sr::load_test_set((fs::path(root) / cfg.at("monitor_set").get<std::string>()).string(), s));
  std::printf("data: %s; %lld training pairs (%lld skipped: smaller than a patch), %.0f MB of inputs, built in %.1f s\n\n", root.c_str(),
              (long long)pairs.size(), (long long)pairs.skipped(), 4.0 * static_cast<double>(pairs.pixels()) / 1e6,
              std::chrono::duration<double>(std::chrono::steady_clock::now() - t_data).count());

  std::error_code mkdir_error;
  fs::create_directories(out, mkdir_error);
  LOWBIT_CHECK(!mkdir_error, "config key 'out' = '", out.string(), "': cannot create the folder (", mkdir_error.message(), ")");
  for (const char* f : {"config.json", "checkpoint.bin", "summary.json", "metrics.csv", "metrics.jsonl", "steps.jsonl"})
    if (const fs::path tmp = out / (std::string(f) + ".tmp"); fs::is_regular_file(tmp)) fs::remove(tmp);
  io::write_json_atomic((out / "config.json").string(), cfg);

  // ---- model, hooks, optimizer, schedule
  auto model = build_model(cfg);
  model->train();
  const quant::QuantSpec spec = quant::resolve(train::quant_spec(cfg));
  auto hooks = quant::make_hooks(spec);
  auto opt = train::make_optimizer(*model, cfg, *hooks);
  const int64_t steps_per_epoch = cfg.at("steps_per_epoch"), epochs = cfg.at("epochs"), batch = cfg.at("batch");
  const optim::Schedule sched = train::make_schedule(cfg, steps_per_epoch);
  Generator sampler(cfg.at("seed").get<uint64_t>() ^ 0x5eed5a3cULL);  // patch sampling, apart from the init's stream
  json run = {{"epoch", 0}, {"step", 0}, {"train_s", 0.0}, {"wall_s", 0.0}, {"train_patches_seen", 0}};
  if (!fresh) {
    model->load_state_dict(resumed.model);
    opt->load_state(resumed.optim);
    sampler.set_state_string(resumed.loader.get<std::string>());
    run = resumed.run;
    hooks->load_state(resumed.method_state);
    io::keep_lines((out / "metrics.jsonl").string(), run.at("epoch").get<int64_t>());
    io::keep_lines((out / "steps.jsonl").string(), run.at("step").get<int64_t>());
    std::printf("resuming %s after epoch %lld (step %lld)\n\n", out.string().c_str(), (long long)run.at("epoch").get<int64_t>(),
                (long long)run.at("step").get<int64_t>());
  } else {
    std::ofstream(out / "metrics.jsonl", std::ios::trunc);
    std::ofstream(out / "steps.jsonl", std::ios::trunc);
  }
  std::ofstream metrics(out / "metrics.jsonl", std::ios::app), steps_log(out / "steps.jsonl", std::ios::app);
  int64_t params = 0;
  for (auto& p : model->parameters()) params += p.numel();
  std::printf("model vdsr (depth %lld, width %lld): %lld parameters\n%s\n", (long long)cfg.at("depth").get<int64_t>(),
              (long long)cfg.at("width").get<int64_t>(), (long long)params,
              quant::summary(*model, Shape{1, 1, 41, 41}).table().c_str());

  // ---- the training loop
  const train::FiniteCheck finite(*model);
  const std::string clip = cfg.at("grad_clip");
  const double theta = cfg.at("clip_theta");
  const std::vector<nn::Tensorf> params_list = model->parameters();
  const auto wall0 = std::chrono::steady_clock::now();
  const double wall_before = run.at("wall_s").get<double>();
  int64_t step = run.at("step");
  nn::Tensorf input, label;
  for (int64_t epoch = run.at("epoch").get<int64_t>(); epoch < epochs; ++epoch) {
    io::ProgressBar bar("epoch " + std::to_string(epoch + 1) + "/" + std::to_string(epochs), steps_per_epoch);
    bar.metric("psnr", " dB");
    const auto t0 = std::chrono::steady_clock::now();
    double loss_sum = 0, mse_sum = 0, lr = sched.lr_at(step), grad_seen = 0;
    for (int64_t k = 0; k < steps_per_epoch; ++k, ++step) {
      const quant::StepContext ctx{step, sched.total_steps, steps_per_epoch, epoch};
      lr = sched.lr_at(step);
      opt->set_lr(lr);
      pairs.sample(sampler, batch, input, label);
      hooks->begin_step(*model, ctx);
      const nn::Tensorf pred = (*model)(input);
      // VDSR Sec. 3.1: 1/2 ||r - f(x)||^2 per patch, averaged over the batch (Caffe's EuclideanLoss).
      nn::Tensorf loss = squared_error(pred, label, 0.5 / static_cast<double>(batch));
      const double lv = loss.item();
      const std::string where = "at epoch " + std::to_string(epoch + 1) + ", step " + std::to_string(k + 1) +
                                ": the run diverged (try a lower lr or clip_theta); " +
                                (epoch > 0 ? (out / "checkpoint.bin").string() + " still holds epoch " + std::to_string(epoch)
                                           : std::string("no checkpoint was written"));
      if (!std::isfinite(lv)) lowbit::detail::fail("the training loss is ", lv, " ", where);
      loss.backward();
      finite.gradients(where);
      if (clip == "adjustable") grad_seen = std::max(grad_seen, optim::clip_grad_value(params_list, theta / lr));
      else if (clip == "norm") grad_seen = std::max(grad_seen, optim::clip_grad_norm(params_list, theta));
      opt->step();
      opt->zero_grad(/*set_to_none=*/true);
      hooks->end_step(*model, input, ctx);
      finite.weights(where);
      const double mse = 2 * lv / static_cast<double>(input.numel() / batch);  // per pixel, on the 0..1 scale
      loss_sum += lv, mse_sum += mse;
      char line[160];
      std::snprintf(line, sizeof line, "{\"epoch\": %lld, \"step\": %lld, \"loss\": %.9g, \"lr\": %.9g}", (long long)(epoch + 1),
                    (long long)step, lv, lr);
      steps_log << line << '\n';
      bar.update(k + 1, loss_sum / static_cast<double>(k + 1), 10 * std::log10(static_cast<double>(k + 1) / mse_sum),
                 (k + 1) * batch);
    }
    steps_log.flush();
    const double train_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    // A model without batch-norm has nothing to calibrate: the hooks get no batches.
    const json method_log = hooks->end_epoch(*model, [](nn::Tensorf&) { return false; }, epoch);
    json m = {{"epoch", epoch + 1}, {"train_loss", loss_sum / static_cast<double>(steps_per_epoch)},
              {"train_psnr", 10 * std::log10(static_cast<double>(steps_per_epoch) / mse_sum)}, {"lr", lr},
              {"epoch_s", train_s}, {"patches_per_s", static_cast<double>(steps_per_epoch * batch) / train_s}};
    if (clip != "none") m[clip == "norm" ? "max_grad_norm" : "max_abs_grad"] = grad_seen;
    const int64_t every = cfg.at("eval_every");
    if (every > 0 && ((epoch + 1) % every == 0 || epoch + 1 == epochs)) {
      model->eval();
      std::printf("epoch %lld/%lld: %s PSNR", (long long)(epoch + 1), (long long)epochs, cfg.at("monitor_set").get<std::string>().c_str());
      for (size_t i = 0; i < eval_scales.size(); ++i) {
        const SetPsnr p = evaluate_set(model.get(), monitor[i], eval_scales[i]);
        m["monitor_psnr_x" + std::to_string(eval_scales[i])] = p.model;
        std::printf("  x%d %.2f dB (bicubic %.2f)", eval_scales[i], p.model, p.bicubic);
      }
      std::printf("\n");
      model->train();
    }
    m.update(method_log);
    metrics << m.dump() << '\n';
    metrics.flush();
    io::write_csv_from_jsonl((out / "metrics.jsonl").string(), (out / "metrics.csv").string());
    run["epoch"] = epoch + 1;
    run["step"] = step;
    run["train_s"] = run.at("train_s").get<double>() + train_s;
    run["train_patches_seen"] = run.at("train_patches_seen").get<int64_t>() + steps_per_epoch * batch;
    run["wall_s"] = wall_before + std::chrono::duration<double>(std::chrono::steady_clock::now() - wall0).count();
    train::save_run_checkpoint((out / "checkpoint.bin").string(), cfg, *model, *opt, sampler.state_string(), run,
                               hooks->state(), kFormat);
    if (a.stop_after > 0 && epoch + 1 >= a.stop_after && epoch + 1 < epochs) {
      std::printf("stopping after epoch %lld as asked (--stop-after-epochs); continue with --resume %s\n",
                  (long long)(epoch + 1), out.string().c_str());
      return 0;
    }
  }

  // ---- the final evaluation: every test set at every eval scale, bicubic beside
  model->eval();
  json table = json::array();
  std::printf("\n%-8s %5s %10s %10s\n", "set", "scale", "bicubic", "model");
  for (const std::string& set : split_list(cfg.at("test_sets"), "test_sets"))
    for (int s : eval_scales) {
      const SetPsnr p = evaluate_set(model.get(), sr::load_test_set((fs::path(root) / set).string(), s), s);
      std::printf("%-8s %5d %10.2f %10.2f\n", set.c_str(), s, p.bicubic, p.model);
      table.push_back({{"set", set}, {"scale", s}, {"psnr_y", p.model}, {"bicubic_psnr_y", p.bicubic}});
    }
  const json summary = {{"model", "vdsr"}, {"name", cfg.at("name")}, {"method", cfg.at("method")}, {"w_bits", cfg.at("w_bits")}, {"a_bits", cfg.at("a_bits")},
                        {"epochs", epochs}, {"steps", run.at("step")}, {"batch", batch},
                        {"train_patches_seen", run.at("train_patches_seen")}, {"train_s", run.at("train_s")},
                        {"wall_s", run.at("wall_s")}, {"parameters", params}, {"psnr", table}, {"config", cfg}};
  io::write_json_atomic((out / "summary.json").string(), summary);
  std::printf("\ntrained in %.0f s; results in %s/ (summary.json, metrics.jsonl, checkpoint.bin)\n",
              run.at("wall_s").get<double>(), out.string().c_str());
  return 0;
}

// ---------------------------------------------------------------------------------------------
// --eval: each run's last model against bicubic on the test sets; pictures for Fig. 2.
struct EvalModel {
  std::string name, path;
  json cfg, run;
  std::shared_ptr<nn::Vdsr> model;
};

EvalModel load_eval_model(const std::string& arg) {
  EvalModel e;
  e.path = fs::is_directory(arg) ? (fs::path(arg) / "checkpoint.bin").string() : arg;
  const train::RunCheckpoint ck = train::read_run_checkpoint(e.path, kFormat);
  try {
    e.cfg = resolve(ck.config);
  } catch (const std::exception& ex) {
    lowbit::detail::fail("checkpoint '", e.path, "': its config: ", ex.what());
  }
  e.run = ck.run;
  e.model = build_model(e.cfg);
  e.model->load_state_dict(ck.model);
  e.model->eval();
  e.name = e.cfg.at("name").get<std::string>().empty() ? e.cfg.at("method").get<std::string>() : e.cfg.at("name").get<std::string>();
  return e;
}

// HR | bicubic | each model, a crop of `side` HR pixels around the centre, 4 px white gaps.
sr::Image8 side_by_side(const std::vector<sr::Image8>& panels) {
  const int64_t gap = 4, h = panels[0].height, w = panels[0].width;
  sr::Image8 out;
  out.height = h, out.width = static_cast<int64_t>(panels.size()) * (w + gap) - gap, out.channels = 3;
  out.px.assign(static_cast<size_t>(out.height * out.width * 3), 255);
  for (size_t p = 0; p < panels.size(); ++p)
    for (int64_t y = 0; y < h; ++y)
      for (int64_t x = 0; x < w; ++x)
        for (int64_t c = 0; c < 3; ++c)
          out.px[static_cast<size_t>((y * out.width + static_cast<int64_t>(p) * (w + gap) + x) * 3 + c)] =
              panels[p].px[static_cast<size_t>((y * w + x) * panels[p].channels + (panels[p].channels == 3 ? c : 0))];
  return out;
}

sr::Image8 crop_picture(const sr::TestImage& im, const sr::Plane& y, int64_t side) {
  const int64_t h = std::min(side, im.hr.height), w = std::min(side, im.hr.width);
  const int64_t top = (im.hr.height - h) / 2, left = (im.hr.width - w) / 2;
  const sr::Plane yc = sr::crop(y, top, left, h, w);
  if (!im.colour) return sr::grey_image(yc);
  return sr::ycbcr_to_rgb(yc, sr::crop(im.cb, top, left, h, w), sr::crop(im.cr, top, left, h, w));
}

int run_eval(const Args& a) {
  std::vector<EvalModel> models;
  for (const std::string& e : a.evals) models.push_back(load_eval_model(e));
  // Everything read and checked before anything is written.
  const io::OptionSchema schema = sr_schema();
  json first = models[0].cfg;  // the first run's data and evaluation keys, or --set ones
  for (const std::string& s : a.sets) train::apply_override(first, s, &schema);
  first = resolve(first);
  const std::string root = data_root(first);
  std::vector<int> scales;
  for (auto& s : first.at("eval_scales")) scales.push_back(s.get<int>());
  struct Picture {
    std::string name;
    int scale;
  };
  std::vector<Picture> pictures;
  for (const std::string& p : a.pictures.empty() ? std::vector<std::string>{"head_GT@2", "butterfly_GT@3"} : a.pictures) {
    const auto at = p.find('@');
    LOWBIT_CHECK(at != std::string::npos && at > 0, "--picture '", p, "': expected NAME@SCALE, e.g. butterfly_GT@3");
    const std::string sc = p.substr(at + 1);
    LOWBIT_CHECK(sc.size() == 1 && sc[0] >= '2' && sc[0] <= '8', "--picture '", p, "': scale '", sc, "', expected 2..8");
    pictures.push_back({p.substr(0, at), sc[0] - '0'});
    bool found = false;  // checked before the long evaluation
    for (const std::string& set : split_list(first.at("test_sets"), "test_sets"))
      for (const char* ext : {".bmp", ".png", ".jpg", ".jpeg"})
        found = found || fs::is_regular_file(fs::path(root) / set / (pictures.back().name + ext));
    LOWBIT_CHECK(found || a.pictures_dir.empty(), "--picture ", p, ": no image of that name in the test sets (",
                 first.at("test_sets").get<std::string>(), ")");
  }
  json rows = json::array();
  std::string html_table = "<tr><th>set</th><th>scale</th><th>bicubic</th>";
  for (auto& m : models) html_table += "<th>" + m.name + " W" + std::to_string(m.cfg.at("w_bits").get<int>()) + "</th>";
  html_table += "</tr>\n";
  std::printf("%-8s %5s %10s", "set", "scale", "bicubic");
  for (auto& m : models) std::printf(" %10s", (m.name + " W" + std::to_string(m.cfg.at("w_bits").get<int>())).c_str());
  std::printf("\n");
  std::map<std::pair<std::string, int>, std::vector<sr::TestImage>> loaded;  // each set and scale read once
  auto test_set = [&](const std::string& set, int s) -> const std::vector<sr::TestImage>& {
    auto it = loaded.find({set, s});
    if (it == loaded.end()) it = loaded.emplace(std::make_pair(set, s), sr::load_test_set((fs::path(root) / set).string(), s)).first;
    return it->second;
  };
  for (const std::string& set : split_list(first.at("test_sets"), "test_sets"))
    for (int s : scales) {
      const std::vector<sr::TestImage>& images = test_set(set, s);
      const SetPsnr b = evaluate_set(nullptr, images, s);
      std::printf("%-8s %5d %10.2f", set.c_str(), s, b.bicubic);
      html_table += "<tr><td>" + set + "</td><td>x" + std::to_string(s) + "</td><td>" + db(b.bicubic) + "</td>";
      rows.push_back({{"model", "bicubic"}, {"w_bits", 32}, {"set", set}, {"scale", s}, {"psnr_y", b.bicubic}, {"budget", nullptr}});
      for (auto& m : models) {
        const double p = evaluate_set(m.model.get(), images, s).model;
        std::printf(" %10.2f", p);
        html_table += "<td>" + db(p) + "</td>";
        rows.push_back({{"model", m.name}, {"w_bits", m.cfg.at("w_bits")}, {"set", set}, {"scale", s}, {"psnr_y", p},
                        {"budget", {{"epochs", m.run.at("epoch")}, {"steps", m.run.at("step")}, {"batch", m.cfg.at("batch")},
                                    {"wall_s", m.run.value("wall_s", 0.0)}, {"checkpoint", m.path}}}});
      }
      std::printf("\n");
      html_table += "</tr>\n";
    }
  if (!a.json_out.empty()) io::write_json_atomic(a.json_out, rows);
  if (a.pictures_dir.empty()) return 0;
  fs::create_directories(a.pictures_dir);
  std::string html = "<!doctype html><meta charset=utf-8><title>lowbit: super-resolution</title>\n"
                     "<style>body{font-family:sans-serif} td,th{padding:2px 8px;text-align:right}</style>\n"
                     "<h1>VDSR super-resolution: PSNR (Y channel, dB)</h1>\n<table>" + html_table + "</table>\n";
  for (const Picture& p : pictures) {
    const sr::TestImage* found = nullptr;  // the first test set holding it (TestImage::name is the file's stem)
    for (const std::string& set : split_list(first.at("test_sets"), "test_sets"))
      for (const sr::TestImage& t : test_set(set, p.scale))
        if (!found && t.name == p.name) found = &t;
    LOWBIT_CHECK(found, "--picture ", p.name, "@", p.scale, ": no image of that name in the test sets (",
                 first.at("test_sets").get<std::string>(), ")");
    const sr::TestImage& im = *found;
    std::vector<sr::Image8> panels = {crop_picture(im, im.hr, a.crop), crop_picture(im, im.bicubic, a.crop)};
    std::string caption = "HR | bicubic " + db(sr::psnr_y(im.hr, im.bicubic, p.scale));
    for (auto& m : models) {
      const sr::Plane y = super_resolve(*m.model, im.bicubic);
      panels.push_back(crop_picture(im, y, a.crop));
      caption += " | " + m.name + " " + db(sr::psnr_y(im.hr, y, p.scale));
    }
    const std::string file = p.name + "_x" + std::to_string(p.scale) + ".png";
    sr::write_png((fs::path(a.pictures_dir) / file).string(), side_by_side(panels));
    html += "<h2>" + p.name + " x" + std::to_string(p.scale) + "</h2><p>" + caption + " dB (whole image)</p><img src=\"" + file + "\">\n";
    std::printf("wrote %s (%s dB)\n", (fs::path(a.pictures_dir) / file).string().c_str(), caption.c_str());
  }
  io::write_file_atomic((fs::path(a.pictures_dir) / "index.html").string(), html, "train_sr --pictures");
  std::printf("page: %s\n", (fs::path(a.pictures_dir) / "index.html").string().c_str());
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  const std::string omp_wait = use_passive_omp_wait(argv);
  try {
    for (int i = 1; i < argc; ++i) {
      const std::string arg = argv[i];
      if (arg == "--help" || arg == "-h") return std::printf("%s", kUsage), 0;
      if (arg == "--help-config") {
        const io::OptionSchema schema = sr_schema();
        return std::printf("%s", train::config_help(&schema).c_str()), 0;
      }
    }
    const Args a = parse_args(argc, argv);
    return a.evals.empty() ? run_train(a) : run_eval(a);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "train_sr: error: %s\n", e.what());
    return 2;
  }
}
