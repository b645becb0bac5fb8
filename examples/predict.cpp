// predict: runs an exported model (a quantized run's model.lbq) with the low-bit kernels of
// include/lowbit/infer/ (docs/inference.md) on the test set its config names or on images of
// your own, and prints the top-k classes and the speed.
//
//   predict runs/x/model.lbq                         test-set accuracy and images/s
//   predict runs/x/model.lbq --compare               ... beside the fake-quantized evaluation
//                                                    (train_cifar --eval): both accuracies, both
//                                                    speeds, and how many predictions differ
//   predict runs/x/model.lbq --images photos/ --top-k 3   top-3 classes of each image
//   predict runs/x/model.lbq --layers                which kernel each layer runs, and why
//
// Bad input (a model file that is not an export or is damaged, an image of another size, an
// unknown flag) prints one line naming the file or flag and exits with status 2.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <lowbit/data/image_files.hpp>
#include <lowbit/infer/model.hpp>
#include <lowbit/lowbit.hpp>
#include <string>
#include <vector>

using namespace lowbit;
using json = nlohmann::json;

namespace {

const char* kUsage =
    "usage: predict MODEL.lbq [--images PATH [--top-k K] [--resize]] [--compare] [--layers] [--json]\n"
    "               [--batch B] [--threads N] [--set key=value]... [--data DIR]\n"
    "  MODEL.lbq       an exported quantized model (train_cifar writes OUT/model.lbq)\n"
    "  --images PATH   an image file or a folder of them (.jpg/.png/.bmp) instead of the test set\n"
    "  --top-k K       classes printed per image (default 5, at most the model's classes)\n"
    "  --resize        stretch images of another size to the model's (default: refuse them)\n"
    "  --compare       also run the fake-quantized evaluation (the float convolutions of train_cifar\n"
    "                  --eval) on the same images: accuracy, speed, predictions that differ\n"
    "  --layers        print the kernel each quantized convolution runs and why\n"
    "  --json          print one JSON object instead of text\n"
    "  --batch B       images per forward pass (default: the run's batch)\n"
    "  --threads N     threads (default: the run's setting; 0 = all cores)\n"
    "  --set k=v, --data DIR   override a key of the stored config, e.g. data=DIR for the test set\n"
    "  --version       print lowbit's version\n";

struct Args {
  std::string model, images;
  std::vector<std::string> sets;
  int64_t top_k = 5, batch = 0, threads = -1;
  bool resize = false, compare = false, layers = false, json_out = false;
};

int64_t parse_int(const std::string& flag, const std::string& v, int64_t lo) {
  char* end = nullptr;
  const long long n = std::strtoll(v.c_str(), &end, 10);
  LOWBIT_CHECK(!v.empty() && *end == '\0' && n >= lo, flag, " expects an integer >= ", lo, ", got '", v, "'");
  return n;
}

Args parse_args(int argc, char** argv) {
  Args a;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    auto value = [&]() -> std::string {
      LOWBIT_CHECK(i + 1 < argc, "argument ", arg, " needs a value");
      return argv[++i];
    };
    if (arg == "--images") a.images = value();
    else if (arg == "--top-k") a.top_k = parse_int(arg, value(), 1);
    else if (arg == "--batch") a.batch = parse_int(arg, value(), 1);
    else if (arg == "--threads") a.threads = parse_int(arg, value(), 0);
    else if (arg == "--set") a.sets.push_back(value());
    else if (arg == "--data") a.sets.push_back("data=" + value());
    else if (arg == "--resize") a.resize = true;
    else if (arg == "--compare") a.compare = true;
    else if (arg == "--layers") a.layers = true;
    else if (arg == "--json") a.json_out = true;
    else if (!arg.empty() && arg[0] != '-' && a.model.empty()) a.model = arg;
    else lowbit::detail::fail("unknown argument '", arg, "'\n", kUsage);
  }
  LOWBIT_CHECK(!a.model.empty(), "no model file given\n", kUsage);
  LOWBIT_CHECK(!a.resize || !a.images.empty(), "--resize applies to --images only");
  return a;
}

// Class names of the data set the run names (the test set's own when it is read).
std::vector<std::string> class_names(const json& cfg, int64_t classes) {
  if (cfg.at("dataset") == "cifar10" && classes == 10) return data::cifar10_class_names();
  std::vector<std::string> out;
  for (int64_t k = 0; k < classes; ++k) out.push_back(std::to_string(k));
  return out;
}

// The normalized batches of ds, built before any timing.
std::vector<data::Batch> batches_of(const data::Dataset& ds, int64_t batch, const data::Normalize& norm) {
  data::LoaderOptions lo;
  lo.batch_size = batch;
  lo.normalize = norm;
  lo.shuffle = false;
  lo.augment = false;
  data::DataLoader loader(std::make_shared<const data::Dataset>(ds), lo);
  std::vector<data::Batch> out;
  data::Batch b;
  while (loader.next(b)) out.push_back(b);
  return out;
}

// Logits of every batch and the seconds the forward passes took (nothing else timed).
std::vector<nn::Tensorf> run(nn::Module& model, const std::vector<data::Batch>& batches, double& seconds) {
  NoGradGuard no_grad;
  model.eval();
  std::vector<nn::Tensorf> out;
  const auto t0 = std::chrono::steady_clock::now();
  for (const data::Batch& b : batches) out.push_back(model(b.images));
  seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return out;
}

int64_t correct(const std::vector<nn::Tensorf>& logits, const std::vector<data::Batch>& batches) {
  int64_t n = 0;
  for (size_t i = 0; i < batches.size(); ++i) {
    const std::vector<int64_t> p = argmax(logits[i], 1).to_vector();
    for (size_t j = 0; j < p.size(); ++j) n += p[j] == batches[i].labels[j];
  }
  return n;
}

int run_predict(const Args& a) {
  infer::Model m = infer::load_model(a.model, a.sets);
  set_num_threads(a.threads >= 0 ? static_cast<int>(a.threads) : m.cfg.at("threads").get<int>());
  const int64_t batch = a.batch > 0 ? a.batch : m.cfg.at("batch").get<int64_t>();
  json out = {{"file", a.model}, {"model", m.cfg.at("model")}, {"method", m.cfg.at("method")},
              {"w_bits", m.cfg.at("w_bits")}, {"a_bits", m.cfg.at("a_bits")}, {"threads", max_threads()},
              {"batch", batch}, {"file_bytes", m.file_bytes}};
  json layers = json::array();
  for (const infer::LayerPlan& l : m.layers) layers.push_back(l.to_json());
  out["layers"] = layers;
  if (a.layers && !a.json_out) {
    std::printf("%s: %s %s, %zu quantized layers\n", a.model.c_str(), m.cfg.at("model").get<std::string>().c_str(),
                m.cfg.at("method").get<std::string>().c_str(), m.layers.size());
    for (const infer::LayerPlan& l : m.layers)
      std::printf("  %-20s w%d a%-2d %-8s %9lld bytes  %s\n", l.name.c_str(), l.w_bits, l.a_bits,
                  infer::conv_kernel_name(l.kernel), (long long)l.weight_bytes, l.reason.c_str());
  }

  data::Dataset ds;
  std::vector<std::string> files;
  std::string where;
  if (!a.images.empty()) {
    ds = data::load_image_files(a.images, m.data.channels, m.data.height, m.data.width, a.resize, files);
    where = ds.source;
  } else {
    ds = train::load_test_data(m.cfg, &where);
    LOWBIT_CHECK(ds.channels == m.data.channels && ds.height == m.data.height && ds.width == m.data.width &&
                     ds.num_classes() == m.data.classes,
                 a.model, ": the model takes ", m.data.text(), ", the test data '", ds.source, "' has ", ds.shape_string(),
                 " images of ", ds.num_classes(), " classes");
  }
  out["data"] = where;
  out["images"] = ds.size();
  const std::vector<data::Batch> batches = batches_of(ds, batch, m.data.normalize);
  double secs = 0;
  const std::vector<nn::Tensorf> logits = run(*m.model, batches, secs);
  out["seconds"] = secs;
  out["images_per_s"] = static_cast<double>(ds.size()) / secs;
  if (a.images.empty()) out["accuracy"] = static_cast<double>(correct(logits, batches)) / static_cast<double>(ds.size());

  if (a.compare) {  // the fake-quantized evaluation of the same file on the same batches
    const train::TrainedModel fake = train::load_trained(a.model, a.sets);
    double fsecs = 0;
    const std::vector<nn::Tensorf> flog = run(*fake.model, batches, fsecs);
    int64_t differ = 0;
    double max_diff = 0, max_logit = 0;
    for (size_t i = 0; i < batches.size(); ++i) {
      const std::vector<int64_t> p = argmax(logits[i], 1).to_vector(), q = argmax(flog[i], 1).to_vector();
      for (size_t j = 0; j < p.size(); ++j) differ += p[j] != q[j];
      for (int64_t k = 0; k < flog[i].numel(); ++k) {
        max_diff = std::max(max_diff, static_cast<double>(std::fabs(logits[i].data()[k] - flog[i].data()[k])));
        max_logit = std::max(max_logit, static_cast<double>(std::fabs(flog[i].data()[k])));
      }
    }
    json c = {{"images_per_s", static_cast<double>(ds.size()) / fsecs}, {"seconds", fsecs},
              {"speedup", fsecs / secs}, {"predictions_differ", differ}, {"max_logit_diff", max_diff},
              {"max_abs_logit", max_logit}};
    if (a.images.empty()) c["accuracy"] = static_cast<double>(correct(flog, batches)) / static_cast<double>(ds.size());
    out["fake_quant"] = c;
  }

  json preds = json::array();
  if (!a.images.empty()) {
    const std::vector<std::string> names = class_names(m.cfg, m.data.classes);
    const int64_t k = std::min<int64_t>(a.top_k, m.data.classes);
    size_t f = 0;
    for (const nn::Tensorf& l : logits) {
      const nn::Tensorf p = softmax(l, 1);
      const int64_t C = p.shape()[1];
      for (int64_t i = 0; i < p.shape()[0]; ++i, ++f) {
        std::vector<int64_t> order(static_cast<size_t>(C));
        for (int64_t c = 0; c < C; ++c) order[static_cast<size_t>(c)] = c;
        const float* row = p.data() + i * C;
        std::stable_sort(order.begin(), order.end(), [row](int64_t x, int64_t y) { return row[x] > row[y]; });
        json top = json::array();
        for (int64_t j = 0; j < k; ++j) {
          const int64_t c = order[static_cast<size_t>(j)];
          top.push_back({{"label", c}, {"class", names[static_cast<size_t>(c)]}, {"prob", row[c]}});
        }
        preds.push_back({{"file", files[f]}, {"top", top}});
      }
    }
    out["predictions"] = preds;
  }

  if (a.json_out) return std::printf("%s\n", out.dump().c_str()), 0;
  std::printf("data: %s\n", where.c_str());
  for (const json& p : preds) {
    std::printf("%s:", p.at("file").get<std::string>().c_str());
    for (const json& t : p.at("top"))
      std::printf("  %s %.1f%%", t.at("class").get<std::string>().c_str(), 100 * t.at("prob").get<double>());
    std::printf("\n");
  }
  if (a.images.empty())
    std::printf("%s: test accuracy %.2f%% on %lld images\n", a.model.c_str(), 100 * out.at("accuracy").get<double>(),
                (long long)ds.size());
  std::printf("%s: %.1f images/s (%d threads, batch %lld)\n", m.layers.empty() ? "FP32 model" : "low-bit kernels",
              out.at("images_per_s").get<double>(), max_threads(), (long long)batch);
  if (a.compare) {
    const json& c = out.at("fake_quant");
    if (a.images.empty())
      std::printf("fake-quantized evaluation: test accuracy %.2f%%\n", 100 * c.at("accuracy").get<double>());
    std::printf("fake-quantized evaluation: %.1f images/s; low-bit kernels %.2fx its speed; %lld of %lld predictions "
                "differ; largest logit difference %.3g (largest logit %.3g)\n",
                c.at("images_per_s").get<double>(), c.at("speedup").get<double>(),
                (long long)c.at("predictions_differ").get<int64_t>(), (long long)ds.size(),
                c.at("max_logit_diff").get<double>(), c.at("max_abs_logit").get<double>());
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  try {
    for (int i = 1; i < argc; ++i) {
      const std::string arg = argv[i];
      if (arg == "--help" || arg == "-h") return std::printf("%s", kUsage), 0;
      if (arg == "--version")
        return std::printf("lowbit %d.%d.%d\n", LOWBIT_VERSION_MAJOR, LOWBIT_VERSION_MINOR, LOWBIT_VERSION_PATCH), 0;
    }
    return run_predict(parse_args(argc, argv));
  } catch (const std::exception& e) {
    std::fprintf(stderr, "predict: error: %s\n", e.what());
    return 2;
  }
}
