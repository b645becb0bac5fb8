// End-to-end tests of examples/train_cifar (the binary, as a user runs it): a tiny run
// whose loss goes down, bit-exact resume, --eval, and every bad input of the issue giving
// exit status 2 with a line naming the file or key — leaving existing files untouched.
// Data: a synthetic CIFAR-10 in the official binary format, written to a temp folder, in
// which the class decides the image's colour so a few steps are enough to learn.
#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <catch2/catch.hpp>
#include <chrono>
#include <cmath>
#include <random>
#include <thread>
#include "../stb_image_write_for_tests.hpp"  // stb_image_write: writes the test images
#include <cstdio>
#include <lowbit/io/checkpoint.hpp>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <vector>

#ifndef LOWBIT_TRAIN_CIFAR_EXE
#error "LOWBIT_TRAIN_CIFAR_EXE must name the train_cifar executable (set by tests/CMakeLists.txt)"
#endif
#ifndef LOWBIT_PREDICT_EXE
#error "LOWBIT_PREDICT_EXE must name the predict executable (set by tests/CMakeLists.txt)"
#endif
#ifndef LOWBIT_SOURCE_DIR
#error "LOWBIT_SOURCE_DIR must name the repository root (set by tests/CMakeLists.txt)"
#endif

namespace fs = std::filesystem;
using Catch::Matchers::Contains;
using json = nlohmann::json;

namespace {

struct Run {
  int status;
  std::string output;
};

// env: an optional `env ...` prefix that sets or clears environment variables for the run;
// exe: the program (train_cifar by default).
Run run(const std::string& args, const std::string& env = "", const std::string& exe = LOWBIT_TRAIN_CIFAR_EXE) {
  static int counter = 0;
  const fs::path log = fs::temp_directory_path() / ("lowbit_trainer_log_" + std::to_string(::getpid()) + "_" +
                                                    std::to_string(counter++) + ".txt");
  const std::string cmd = env + " " + exe + " " + args + " > " + log.string() + " 2>&1";
  const int raw = std::system(cmd.c_str());
  std::ifstream in(log);
  std::stringstream ss;
  ss << in.rdbuf();
  fs::remove(log);
  return {WIFEXITED(raw) ? WEXITSTATUS(raw) : -1, ss.str()};
}

std::string slurp(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// One record: label byte, then the R, G and B planes (32x32 each). Class k gets a
// distinct colour (bits of k+1 switch the channels) plus deterministic noise.
void write_bin(const fs::path& path, int records, int offset) {
  std::ofstream f(path, std::ios::binary);
  for (int r = 0; r < records; ++r) {
    const int label = (r + offset) % 10;
    f.put(static_cast<char>(label));
    for (int c = 0; c < 3; ++c)
      for (int i = 0; i < 1024; ++i) {
        const int base = ((label + 1) >> c & 1) ? 200 : 40;
        const int noise = ((r * 7919 + c * 104729 + i * 31) % 41) - 20;
        f.put(static_cast<char>(base + noise + (label * 5)));
      }
  }
}

// A 24-bit BMP of w x h pixels (rows bottom-up, padded to 4 bytes), written by hand so the
// test needs no image encoder.
void write_bmp(const fs::path& path, int w, int h) {
  const int row = (w * 3 + 3) / 4 * 4, size = 54 + row * h;
  std::vector<unsigned char> b(static_cast<size_t>(size), 0);
  auto put32 = [&](int at, int v) {
    for (int k = 0; k < 4; ++k) b[static_cast<size_t>(at + k)] = static_cast<unsigned char>(v >> (8 * k));
  };
  b[0] = 'B', b[1] = 'M';
  put32(2, size), put32(10, 54), put32(14, 40), put32(18, w), put32(22, h);
  b[26] = 1, b[28] = 24;
  put32(34, row * h);
  for (int i = 54; i < size; ++i) b[static_cast<size_t>(i)] = static_cast<unsigned char>(i * 13);
  std::ofstream(path, std::ios::binary).write(reinterpret_cast<const char*>(b.data()), size);
}

// CIFAR-10 image folders (train/ and test/, one folder per class) with one good image per
// class, plus one bad file added by the caller.
fs::path write_image_folders(const fs::path& root) {
  const char* classes[] = {"airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"};
  for (const char* split : {"train", "test"})
    for (const char* c : classes) {
      fs::create_directories(root / split / c);
      write_bmp(root / split / c / "0000.bmp", 32, 32);
    }
  return root;
}

struct Fixture {
  fs::path root = fs::temp_directory_path() / ("lowbit_trainer_" + std::to_string(::getpid()));
  fs::path data = root / "cifar-10-batches-bin";
  Fixture() {
    fs::remove_all(root);
    fs::create_directories(data);
    for (int k = 1; k <= 5; ++k) write_bin(data / ("data_batch_" + std::to_string(k) + ".bin"), 40, k);
    write_bin(data / "test_batch.bin", 60, 0);
  }
  ~Fixture() { fs::remove_all(root); }
  // Small and fast: 64 training images in batches of 32, 60 test images, no warmup.
  std::string args(const fs::path& out, int epochs) const {
    return "--set data=" + data.string() + " --set out=" + out.string() + " --set epochs=" + std::to_string(epochs) +
           " --set train_per_class=0 --set train_images=64 --set batch=32 --set test_images=60"
           " --set lr=0.05 --set warmup_epochs=0 --set threads=1";
  }
};

std::vector<double> losses(const fs::path& steps_file) {
  std::vector<double> v;
  std::ifstream in(steps_file);
  std::string line;
  while (std::getline(in, line)) v.push_back(json::parse(line).at("loss").get<double>());
  return v;
}

}  // namespace

TEST_CASE("train_cifar: --print-config, --help-config, --version, --data/--out and a method's block", "[trainer][config]") {
  Fixture fx;
  const std::string src = LOWBIT_SOURCE_DIR;
  // The resolved config of the run described, with only the chosen method's block.
  Run p = run("--config " + src + "/examples/configs/slb_resnet20_2w2a.json --set slb.t_end=20 --print-config");
  INFO(p.output);
  CHECK(p.status == 0);
  CHECK_THAT(p.output, Contains("slb.schedule") && Contains("slb.t_end                20.0") && Contains("\"slb\""));
  CHECK_THAT(p.output, !Contains("apot.") && !Contains("alq.") && !Contains("ste."));
  // Every shipped config resolves: keys, types, ranges and the method's block (a typo in one
  // would otherwise surface only hours into a reproduction). examples/configs/sr/ holds
  // train_sr's configs, checked by tests/trainer/test_train_sr.cpp.
  int configs = 0;
  for (const auto& e : fs::directory_iterator(fs::path(src) / "examples" / "configs")) {
    if (e.path().extension() != ".json") continue;
    Run c = run("--config " + e.path().string() + " --print-config");
    INFO(e.path().string() << "\n" << c.output);
    CHECK(c.status == 0);
    ++configs;
  }
  CHECK(configs >= 10);
  // A misspelled option: an error naming it and listing the valid ones; an old flat key names its new place.
  Run m = run("--config " + src + "/examples/configs/slb_resnet20_2w2a.json --set slb.schedul=exp --print-config");
  CHECK(m.status == 2);
  CHECK_THAT(m.output, Contains("unknown config key 'slb.schedul'") && Contains("schedule, t_start, t_end"));
  Run f = run("--set slb_schedule=exp --print-config");
  CHECK(f.status == 2);
  CHECK_THAT(f.output, Contains("'slb_schedule' is now 'slb.schedule'"));
  // Every key of every method with type, default and doc.
  Run h = run("--help-config");
  CHECK(h.status == 0);
  for (const char* k : {"w_bits (int, default 32", "slb.t_end (number, default 10.0", "apot.wn (string, default \"on\"",
                        "alq.rounds (int, default 5", "ste.a_quant", "method fp32"})
    CHECK_THAT(h.output, Contains(k));
  Run v = run("--version");
  CHECK(v.status == 0);
  CHECK_THAT(v.output, Contains("lowbit 0."));
  // --data and --out are --set data= / out=; the run writes its resolved config first.
  const fs::path out = fx.root / "short_flags";
  Run r = run("--data " + fx.data.string() + " --out " + out.string() +
              " --set epochs=1 --set train_per_class=0 --set train_images=32 --set batch=32 --set test_images=20 --set threads=1");
  INFO(r.output);
  REQUIRE(r.status == 0);
  const json c = json::parse(slurp(out / "config.json"));
  CHECK(c.at("data") == fx.data.string());
  CHECK(c.at("out") == out.string());
  CHECK(json::parse(slurp(out / "summary.json")).at("config") == c);
  // A run that died in its first epoch left config.json and a partial log but no checkpoint:
  // --resume starts it over (and says so) instead of sending the user back and forth.
  const fs::path dead = fx.root / "died_early";
  fs::create_directories(dead);
  json dc = c;
  dc["out"] = dead.string();
  std::ofstream(dead / "config.json") << dc.dump();
  std::ofstream(dead / "metrics.jsonl") << "";
  std::ofstream(dead / "steps.jsonl") << "{\"epoch\": 1, \"step\": 0, \"loss\": 2.3, \"lr\": 0.1}\n";
  Run again = run("--resume " + dead.string());
  INFO(again.output);
  CHECK(again.status == 0);
  CHECK_THAT(again.output, Contains("no checkpoint yet") && Contains("starting it over"));
  CHECK(fs::exists(dead / "summary.json"));
  CHECK(slurp(dead / "steps.jsonl") == slurp(out / "steps.jsonl"));  // the same run as a fresh start
}

TEST_CASE("train_cifar: a tiny run learns and writes its summary", "[trainer]") {
  Fixture fx;
  const fs::path out = fx.root / "run";
  Run r = run(fx.args(out, 3) + " --set schedule=constant");
  INFO(r.output);
  REQUIRE(r.status == 0);
  CHECK_THAT(r.output, Contains("train_per_class") && Contains("CIFAR-10 binary format") && Contains("test accuracy"));
  const json s = json::parse(slurp(out / "summary.json"));
  for (const char* k : {"model", "method", "w_bits", "a_bits", "train_images", "epochs", "final_test_acc",
                        "best_test_acc", "wall_s", "images_per_s", "params", "model_bytes"})
    CHECK(s.contains(k));
  CHECK(s.at("train_images") == 64);
  CHECK(s.at("params") == 269722);
  // FP32: 4 bytes per parameter and per BN running statistic (688 channels x 2).
  CHECK(s.at("model_bytes") == 4 * (269722 + 1376));
  CHECK(s.at("avg_weight_bits") == 32.0);
  CHECK(s.at("compression_ratio") == 1.0);
  CHECK(!fs::exists(out / "model.lbq"));  // FP32 runs export no quantized model
  CHECK(s.at("state_file") == (out / "model.safetensors").string());
  const auto l = losses(out / "steps.jsonl");
  REQUIRE(l.size() == 6);
  CHECK((l[4] + l[5]) / 2 < (l[0] + l[1]) / 2);  // loss goes down
  int lines = 0;
  std::ifstream m(out / "metrics.jsonl");
  for (std::string line; std::getline(m, line); ++lines) CHECK(json::parse(line).contains("test_acc"));
  CHECK(lines == 3);
  // The run's report: printed path, every section a FP32 run has data for, valid XML
  // (checked by Python's expat parser: a real parser, not ours).
  CHECK_THAT(r.output, Contains("report: " + (out / "report.html").string()));
  const std::string html = slurp(out / "report.html");
  for (const char* id : {"id=\"result\"", "id=\"curves\"", "id=\"layers\"", "id=\"config\""}) CHECK_THAT(html, Contains(id));
  const std::string parse = "/usr/bin/python3 -c 'import sys, xml.etree.ElementTree as E; E.parse(sys.argv[1])' " +
                            (out / "report.html").string();
  CHECK(std::system(parse.c_str()) == 0);
  // --eval reproduces the last epoch's test accuracy.
  Run e = run("--eval " + (out / "checkpoint.bin").string() + " --set data=" + fx.data.string());
  INFO(e.output);
  CHECK(e.status == 0);
  char acc[32];
  std::snprintf(acc, sizeof acc, "%.2f%%", 100 * s.at("final_test_acc").get<double>());
  CHECK_THAT(e.output, Contains(acc));
  // --eval --json: one JSON object, nothing else on stdout; the same accuracy as the last
  // epoch's (evaluation is deterministic), and a confusion matrix that adds up.
  Run j = run("--eval " + (out / "checkpoint.bin").string() + " --json --tta flip --set data=" + fx.data.string());
  INFO(j.output);
  REQUIRE(j.status == 0);
  const json ej = json::parse(j.output);
  CHECK(ej.at("accuracy").get<double>() == s.at("final_test_acc").get<double>());
  CHECK(ej.at("file") == (out / "checkpoint.bin").string());
  CHECK(ej.at("classes").size() == 10);
  const int64_t images = ej.at("images");
  int64_t total = 0, diagonal = 0;
  for (size_t k = 0; k < 10; ++k) {
    int64_t row = 0;
    for (size_t p = 0; p < 10; ++p) row += ej.at("confusion_matrix").at(k).at(p).get<int64_t>();
    const int64_t hit = ej.at("confusion_matrix").at(k).at(k);
    total += row;
    diagonal += hit;
    CHECK(ej.at("per_class_accuracy").at(k).get<double>() == (row ? double(hit) / double(row) : 0.0));
  }
  CHECK(total == images);
  CHECK(double(diagonal) / double(images) == ej.at("accuracy").get<double>());
  CHECK(ej.at("tta_flip").contains("confusion_matrix"));
  CHECK(ej.at("tta_flip").contains("mirror_accuracy"));
  CHECK(run("--json " + fx.args(fx.root / "json_train", 1)).status == 2);  // --json is for --eval
  // FP32 runs also write their weights under PyTorch's names (docs/pytorch.md), which --eval
  // takes with the same result; --export-state writes the same tensors from the checkpoint.
  auto eval_json = [&](const fs::path& file, const std::string& sets) {
    Run ev = run("--eval " + file.string() + " --json --set data=" + fx.data.string() + sets);
    INFO(ev.output);
    REQUIRE(ev.status == 0);
    return json::parse(ev.output);
  };
  CHECK(eval_json(out / "model.safetensors", "").at("accuracy") == ej.at("accuracy"));
  const fs::path exported = fx.root / "exported.safetensors";
  Run ex = run("--export-state " + (out / "checkpoint.bin").string() + " " + exported.string());
  INFO(ex.output);
  REQUIRE(ex.status == 0);
  const lowbit::io::SafetensorsFile from_run = lowbit::io::read_safetensors((out / "model.safetensors").string());
  const lowbit::io::SafetensorsFile from_ckpt = lowbit::io::read_safetensors(exported.string());
  REQUIRE(from_run.tensors.size() == from_ckpt.tensors.size());
  for (const auto& t : from_run.tensors) {
    INFO(t.name);
    const bool counter = t.name.find("num_batches_tracked") != std::string::npos;
    if (!counter) CHECK(from_ckpt.at(t.name).bytes == t.bytes);  // bit for bit
  }
  CHECK(from_run.at("linear.weight").shape == lowbit::Shape{10, 64});  // PyTorch's names
  CHECK(from_run.at("bn1.num_batches_tracked").to_int64() == std::vector<int64_t>{6});  // the run's 6 steps
  // A file as PyTorch writes it (no lowbit metadata): the model comes from --set; a wrong one
  // is exit 2 naming the file and the model it was read as.
  const fs::path plain = fx.root / "plain.safetensors";
  lowbit::io::write_safetensors(plain.string(), from_run.tensors, {{"format", "pt"}});
  const std::string subset = " --set test_images=60 --set threads=1";
  CHECK(eval_json(plain, subset + " --set model=resnet20").at("accuracy") == ej.at("accuracy"));
  Run wrong = run("--eval " + plain.string() + " --set data=" + fx.data.string() + " --set model=vgg_small");
  CHECK(wrong.status == 2);
  CHECK_THAT(wrong.output, Contains(plain.string()) && Contains("read as vgg_small") && Contains("unexpected: layer1.0.conv1.weight"));
  Run quant = run("--eval " + plain.string() + " --set data=" + fx.data.string() + " --set method=ste");
  CHECK(quant.status == 2);
  CHECK_THAT(quant.output, Contains("builds an FP32 model"));
  // benchmarks/metrics_table.py (docs/results.md's tables) reads the run's metrics.jsonl.
  const fs::path table = fx.root / "table.md";
  const std::string cmd = "/usr/bin/python3 " + std::string(LOWBIT_SOURCE_DIR) + "/benchmarks/metrics_table.py " +
                          out.string() + " > " + table.string() + " 2>&1";
  CHECK(std::system(cmd.c_str()) == 0);
  const std::string md = slurp(table);
  INFO(md);
  CHECK_THAT(md, Contains("| epoch | 1 | 2 | 3 |"));
  const size_t row = md.find("| test accuracy % |");
  REQUIRE(row != std::string::npos);
  const std::string test_row = md.substr(row, md.find('\n', row) - row);
  std::snprintf(acc, sizeof acc, " %.2f |", 100 * s.at("final_test_acc").get<double>());
  CHECK_THAT(test_row, Catch::Matchers::EndsWith(acc));  // the last epoch's column
  std::snprintf(acc, sizeof acc, "%.2f%%", 100 * s.at("final_test_acc").get<double>());
  // --tta flip: the plain line as before, then one scored with flip TTA.
  Run t = run("--eval " + (out / "checkpoint.bin").string() + " --tta flip --set data=" + fx.data.string());
  INFO(t.output);
  CHECK(t.status == 0);
  CHECK_THAT(t.output, Contains("test accuracy " + std::string(acc)));
  CHECK_THAT(t.output, Contains("test accuracy with flip TTA") && Contains("the mirrored images alone") &&
                           Contains("the two views predict different classes for"));
}

TEST_CASE("train_cifar: 1 epoch + resume + 1 epoch equals 2 epochs, loss for loss", "[trainer]") {
  Fixture fx;
  const fs::path straight = fx.root / "straight", split = fx.root / "split";
  // With Cutout, so that its draws are part of the resumed generator state too.
  Run a = run(fx.args(straight, 2) + " --set cutout=16");
  INFO(a.output);
  REQUIRE(a.status == 0);
  Run b1 = run(fx.args(split, 2) + " --set cutout=16 --stop-after-epochs 1");  // the interruption
  REQUIRE(b1.status == 0);
  CHECK(!fs::exists(split / "summary.json"));
  // A kill inside an atomic write leaves a torn temporary beside the intact checkpoint: the
  // resumed run removes it (and says so); the checkpoint it resumes from is the intact one.
  std::ofstream(split / "checkpoint.bin.tmp") << "torn";
  Run b2 = run("--resume " + split.string());
  INFO(b2.output);
  REQUIRE(b2.status == 0);
  CHECK_THAT(b2.output, Contains("resuming") && Contains("checkpoint.bin.tmp, left by an interrupted write"));
  CHECK(!fs::exists(split / "checkpoint.bin.tmp"));
  const auto la = losses(straight / "steps.jsonl"), lb = losses(split / "steps.jsonl");
  REQUIRE(la.size() == 4);
  REQUIRE(lb.size() == la.size());
  for (size_t i = 0; i < la.size(); ++i) CHECK(la[i] == lb[i]);  // bit-exact, not approximately
  const json ma = json::parse(slurp(straight / "summary.json")), mb = json::parse(slurp(split / "summary.json"));
  CHECK(ma.at("final_test_acc") == mb.at("final_test_acc"));
}

TEST_CASE("train_cifar: knowledge distillation from a trained teacher; resumes bit-exactly", "[trainer]") {
  Fixture fx;
  const fs::path teacher = fx.root / "teacher";
  Run t = run(fx.args(teacher, 3));
  INFO(t.output);
  REQUIRE(t.status == 0);
  const std::string kd = " --set kd_teacher=" + (teacher / "checkpoint.bin").string();
  // kd_alpha = 0: the teacher runs every step but weighs nothing, and it touches none of the
  // student's state or random draws: every loss equals a run without a teacher, bit for bit.
  Run plain = run(fx.args(fx.root / "plain", 2));
  Run zero = run(fx.args(fx.root / "zero", 2) + kd + " --set kd_alpha=0");
  REQUIRE(plain.status == 0);
  REQUIRE(zero.status == 0);
  const auto lp = losses(fx.root / "plain" / "steps.jsonl"), lz = losses(fx.root / "zero" / "steps.jsonl");
  REQUIRE(lp.size() == 4);
  CHECK(lz == lp);
  // kd_alpha = 0.7, T = 2: another objective (the first step's loss differs), and it trains.
  const fs::path straight = fx.root / "kd", split = fx.root / "kd_split";
  const std::string recipe = kd + " --set kd_alpha=0.7 --set kd_temperature=2";
  Run a = run(fx.args(straight, 2) + recipe);
  INFO(a.output);
  REQUIRE(a.status == 0);
  const auto la = losses(straight / "steps.jsonl");
  REQUIRE(la.size() == 4);
  CHECK(la[0] != lp[0]);
  CHECK(la[3] < la[0]);
  const json summary = json::parse(slurp(straight / "summary.json"));
  CHECK(summary.at("config").at("kd_alpha") == 0.7);
  // Interrupted after epoch 1 and resumed: the teacher is reloaded from the config, and the
  // losses are those of the straight run.
  REQUIRE(run(fx.args(split, 2) + recipe + " --stop-after-epochs 1").status == 0);
  REQUIRE(run("--resume " + split.string()).status == 0);
  CHECK(losses(split / "steps.jsonl") == la);
  // A flip-averaged teacher: other targets, so other losses from the first step on.
  Run f = run(fx.args(fx.root / "kd_flip", 2) + recipe + " --set kd_teacher_tta=flip");
  INFO(f.output);
  REQUIRE(f.status == 0);
  const auto lf = losses(fx.root / "kd_flip" / "steps.jsonl");
  REQUIRE(lf.size() == 4);
  CHECK(lf[0] != la[0]);
}

TEST_CASE("train_cifar: bad input exits 2 with one clear line and overwrites nothing", "[trainer][errors]") {
  Fixture fx;
  const fs::path out = fx.root / "good";
  REQUIRE(run(fx.args(out, 1)).status == 0);
  const std::string summary_before = slurp(out / "summary.json"), ckpt_before = slurp(out / "checkpoint.bin");

  auto expect_error = [&](const std::string& args, const std::vector<std::string>& needles) {
    Run r = run(args);
    INFO(args << "\n" << r.output);
    CHECK(r.status == 2);
    CHECK_THAT(r.output, Contains("train_cifar: error:"));
    for (auto& n : needles) CHECK_THAT(r.output, Contains(n));
  };
  // Config: unknown key, wrong type, negative epochs, unknown model.
  expect_error(fx.args(fx.root / "x1", 1) + " --set epoch=3", {"unknown config key 'epoch'"});
  expect_error(fx.args(fx.root / "x2", 1) + " --set batch=big", {"'batch' = \"big\": expected an integer"});
  expect_error(fx.args(fx.root / "x3", 1) + " --set epochs=-1", {"'epochs' = -1", "1 <= v"});
  expect_error(fx.args(fx.root / "x4", 1) + " --set model=resnet1000", {"'model' = \"resnet1000\"", "resnet20 | resnet32 | resnet44 | resnet56 | vgg_small | vgg_bc | lenet5"});
  expect_error(fx.args(fx.root / "x4", 1) + " --set cutout=33", {"'cutout' = 33", "3x32x32 images"});
  expect_error(fx.args(fx.root / "x4", 1) + " --set cutout=16 --set augment=false", {"'cutout' = 16 needs 'augment' = true"});
  const fs::path bad_cfg = fx.root / "bad.json";
  std::ofstream(bad_cfg) << "{\"epochs\": 2, \"lr\": \"fast\"}";
  expect_error("--config " + bad_cfg.string(), {bad_cfg.string(), "'lr' = \"fast\": expected a number"});
  // Data: missing folder, empty folder, truncated .bin.
  expect_error(fx.args(fx.root / "x5", 1) + " --set data=" + (fx.root / "nowhere").string(), {"nowhere"});
  fs::create_directories(fx.root / "empty");
  expect_error(fx.args(fx.root / "x6", 1) + " --set data=" + (fx.root / "empty").string(), {"empty"});
  const fs::path cut = fx.root / "cut";
  fs::create_directories(cut);
  for (auto& e : fs::directory_iterator(fx.data)) fs::copy_file(e.path(), cut / e.path().filename());
  fs::resize_file(cut / "data_batch_3.bin", 3073 * 5 + 100);
  expect_error(fx.args(fx.root / "x7", 1) + " --set data=" + cut.string(), {"data_batch_3.bin"});
  CHECK(!fs::exists(fx.root / "x7"));  // failed before creating the output folder
  // Image folders: a corrupt image, and one that is not 32x32.
  const fs::path corrupt = write_image_folders(fx.root / "img_corrupt");
  std::ofstream(corrupt / "train" / "cat" / "0001.jpg") << "this is not a jpeg";
  expect_error(fx.args(fx.root / "x8", 1) + " --set data=" + corrupt.string(), {"0001.jpg"});
  const fs::path small = write_image_folders(fx.root / "img_small");
  write_bmp(small / "test" / "dog" / "0001.bmp", 31, 32);
  expect_error(fx.args(fx.root / "x9", 1) + " --set data=" + small.string(), {"0001.bmp", "31"});
  // Checkpoints: another model's, truncated, and a run folder that is already taken.
  expect_error("--eval " + (out / "checkpoint.bin").string() + " --set model=vgg_small --set data=" + fx.data.string(),
               {(out / "checkpoint.bin").string(), "built as vgg_small", "load_state_dict", "missing:"});
  const fs::path text = fx.root / "notes.txt";
  std::ofstream(text) << "not a model";
  expect_error("--eval " + text.string(), {text.string(), "is not a lowbit checkpoint, model.lbq or .safetensors state file"});
  expect_error("--export-state " + (out / "checkpoint.bin").string(), {"--export-state needs two values"});
  // An output folder that cannot be created names the key (std::filesystem's text alone does not).
  expect_error(fx.args(fx.root / "x17", 1) + " --set out=/proc/lowbit_no_such/run",
               {"config key 'out' = '/proc/lowbit_no_such/run': cannot create the folder"});
  const fs::path trunc = fx.root / "trunc.bin";
  fs::copy_file(out / "checkpoint.bin", trunc);
  fs::resize_file(trunc, fs::file_size(trunc) / 2);
  expect_error("--eval " + trunc.string(), {trunc.string(), "truncated"});
  expect_error("--resume " + (fx.root / "nothing").string(), {"checkpoint.bin", "cannot open"});
  expect_error("--eval " + (out / "checkpoint.bin").string() + " --tta mirror", {"--tta expects 'flip'", "'mirror'"});
  // Knowledge distillation: a teacher that is not there, and weights out of range.
  expect_error(fx.args(fx.root / "x12", 1) + " --set kd_teacher=" + (fx.root / "no_teacher.bin").string(),
               {"config key 'kd_teacher'", "no_teacher.bin"});
  CHECK(!fs::exists(fx.root / "x12"));
  expect_error(fx.args(fx.root / "x13", 1) + " --set kd_alpha=1.5", {"'kd_alpha' = 1.5: expected 0 <= v <= 1", "1.5"});
  expect_error(fx.args(fx.root / "x14", 1) + " --set kd_temperature=0", {"kd_temperature"});
  expect_error(fx.args(fx.root / "x15", 1) + " --set kd_teacher_tta=crop", {"'kd_teacher_tta' = \"crop\": expected one of none | flip", "crop"});
  expect_error(fx.args(fx.root / "x11", 1) + " --tta flip", {"--tta applies to --eval only"});
  CHECK(!fs::exists(fx.root / "x11"));
  expect_error(fx.args(out, 1), {"already holds a run", "--resume"});
  expect_error("--resume " + out.string() + " --set lr=1", {"'lr' cannot change when resuming"});
  // A diverged run stops at the first non-finite weight, gradient or loss, naming the tensor or
  // layer (train/finite.hpp), instead of training on NaN: lr 1e300 makes the first step's
  // weights inf; lr 1e4 and 100 (the runs) break later, and ReLU can hide a NaN
  // weight from the loss.
  expect_error(fx.args(fx.root / "x10", 2) + " --set lr=1e300 --set schedule=constant",
               {"'conv1.weight' holds", "inf", "after the optimizer step at epoch 1, step 1 of 2", "diverged",
                "no checkpoint was written"});
  CHECK(!fs::exists(fx.root / "x10" / "checkpoint.bin"));
  for (const char* lr : {"1e4", "100"}) {
    const Run r = run(fx.args(fx.root / "x12", 3) + " --set schedule=constant --set lr=" + lr);
    INFO(r.output);
    CHECK(r.status == 2);
    CHECK_THAT(r.output, Contains("the run diverged") && Contains("train_cifar: error: ") &&
                             (Contains("' holds") || Contains("the first layer output that is not finite: '")));
    fs::remove_all(fx.root / "x12");
  }
  // The earlier run is untouched by all of the above.
  CHECK(slurp(out / "summary.json") == summary_before);
  CHECK(slurp(out / "checkpoint.bin") == ckpt_before);
}

// Nothing saved is lost on kill -9 (issue 34 item 8): a tiny run is killed with SIGKILL at
// random moments (seeded), inside checkpoint, log and summary writes too, and resumed each
// time; it must finish with the same losses, bit for bit, and the same result as a run that
// was never interrupted. A resume refused with exit 2 fails the test: every folder a kill can
// leave must resume (a run killed before its first checkpoint starts over).
TEST_CASE("train_cifar: killed with SIGKILL at random moments, the run resumes to a bit-identical finish", "[trainer][kill]") {
  Fixture fx;
  const fs::path straight = fx.root / "k_straight";
  const auto t0 = std::chrono::steady_clock::now();
  Run a = run(fx.args(straight, 3));
  INFO(a.output);
  REQUIRE(a.status == 0);
  const double whole_ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
  const auto la = losses(straight / "steps.jsonl");
  REQUIRE(la.size() == 6);
  const json ma = json::parse(slurp(straight / "summary.json"));
  // Rounds of: start a run in a fresh folder, kill it at a moment drawn over the length of a
  // whole run (start-up, an epoch, a checkpoint or summary write, or after the end), resume,
  // kill again ... until one attempt finishes. Rounds repeat until 8 kills have happened.
  std::mt19937 rng(20261206);
  std::uniform_real_distribution<double> when(0.0, whole_ms);
  int kills = 0, rounds = 0;
  while (kills < 8 && rounds++ < 8) {
    const fs::path killed = fx.root / ("k_killed" + std::to_string(rounds));
    int attempts = 0, status = -1;
    while (status != 0 && attempts++ < 20) {
      const bool started = fs::exists(killed / "config.json");
      const std::string args = started ? "--resume " + killed.string() : fx.args(killed, 3);
      const std::string cmd = "exec " + std::string(LOWBIT_TRAIN_CIFAR_EXE) + " " + args;  // exec: the pid is the trainer's
      const pid_t pid = ::fork();
      REQUIRE(pid >= 0);
      if (pid == 0) {
        const int devnull = ::open("/dev/null", O_WRONLY);
        ::dup2(devnull, 1), ::dup2(devnull, 2);
        ::execl("/bin/sh", "sh", "-c", cmd.c_str(), static_cast<char*>(nullptr));
        ::_exit(127);
      }
      // The kill moment is drawn over the uninterrupted run's length; from the 13th attempt of a
      // round on, the attempt is left to finish: on a loaded machine a resume can take longer
      // than that whole run, and every attempt would be killed before its first checkpoint.
      const double wait_ms = attempts <= 12 ? when(rng) : 1e9;
      const auto deadline = std::chrono::steady_clock::now() + std::chrono::duration<double, std::milli>(wait_ms);
      int raw = 0;
      pid_t done = 0;
      while ((done = ::waitpid(pid, &raw, WNOHANG)) == 0 && std::chrono::steady_clock::now() < deadline)
        std::this_thread::sleep_for(std::chrono::milliseconds(2));
      if (done == 0) {
        ::kill(pid, SIGKILL);
        ::waitpid(pid, &raw, 0);
        ++kills;
        continue;
      }
      status = WIFEXITED(raw) ? WEXITSTATUS(raw) : -1;
      INFO("round " << rounds << ", attempt " << attempts << ": " << args);
      REQUIRE(status == 0);  // neither a crash nor a refusal
    }
    INFO("round " << rounds << ": " << kills << " kills so far");
    REQUIRE(status == 0);
    const auto lb = losses(killed / "steps.jsonl");
    REQUIRE(lb.size() == la.size());
    for (size_t i = 0; i < la.size(); ++i) CHECK(la[i] == lb[i]);  // bit for bit
    const json mb = json::parse(slurp(killed / "summary.json"));
    CHECK(ma.at("final_test_acc") == mb.at("final_test_acc"));
    CHECK(ma.at("best_test_acc") == mb.at("best_test_acc"));
    auto lines = [](const std::string& text) { return std::count(text.begin(), text.end(), '\n'); };
    CHECK(lines(slurp(killed / "metrics.jsonl")) == 3);  // one line per epoch, none repeated by a resume
    CHECK(lines(slurp(killed / "metrics.csv")) == 4);
    for (const char* f : {"checkpoint.bin.tmp", "summary.json.tmp", "steps.jsonl.tmp"}) CHECK(!fs::exists(killed / f));
  }
  CHECK(kills >= 8);
}

#ifdef LOWBIT_MPIEXEC
// Data-parallel training (issue 32, docs/distributed.md): `mpirun -np 2 train_cifar` as a user
// runs it. LOWBIT_MPIEXEC is the launcher with "-n 2" and the flags CI needs (tests/CMakeLists.txt).
TEST_CASE("train_cifar under mpirun -np 2: one process's losses, one writer, resume, a killed process", "[trainer][mpi]") {
  Fixture fx;
  const std::string mpi = std::string(LOWBIT_MPIEXEC) + " " + LOWBIT_TRAIN_CIFAR_EXE;
  const fs::path one = fx.root / "one", two = fx.root / "two", split = fx.root / "two_split";
  Run a = run(fx.args(one, 2) + " --set sync_bn=true");
  REQUIRE(a.status == 0);
  Run b = run(fx.args(two, 2) + " --set sync_bn=true", "", mpi);
  INFO(b.output);
  REQUIRE(b.status == 0);
  CHECK_THAT(b.output, Contains("data-parallel: 2 processes, each 16 of every batch of 32 images"));
  CHECK(std::count(b.output.begin(), b.output.end(), '\n') < 2 * std::count(a.output.begin(), a.output.end(), '\n'));
  // FP32 with synchronized batch-norm: one process's computation, up to float rounding, which
  // this net amplifies (tests/dist/test_data_parallel.cpp: 2e-5 over 4 steps there; 7e-5 here).
  const auto la = losses(one / "steps.jsonl"), lb = losses(two / "steps.jsonl");
  REQUIRE(la.size() == 4);
  REQUIRE(lb.size() == la.size());  // one line per step: process 1 wrote nothing
  for (size_t i = 0; i < la.size(); ++i) CHECK(lb[i] == Approx(la[i]).epsilon(1e-3));
  const json sa = json::parse(slurp(one / "summary.json")), sb = json::parse(slurp(two / "summary.json"));
  CHECK(sb.at("processes") == 2);
  CHECK(sb.at("final_test_acc").get<double>() == Approx(sa.at("final_test_acc").get<double>()).margin(1.5 / 60));
  CHECK(sb.at("train_images") == sa.at("train_images"));
  // Resume: bit-exact with the same number of processes, refused with another.
  REQUIRE(run(fx.args(split, 2) + " --set sync_bn=true --stop-after-epochs 1", "", mpi).status == 0);
  Run c = run("--resume " + split.string());
  CHECK(c.status == 2);
  CHECK_THAT(c.output, Contains("trained by 2 processes (mpirun -np 2), this is 1; resume it with the same number of processes"));
  Run d = run("--resume " + split.string(), "", mpi);
  INFO(d.output);
  REQUIRE(d.status == 0);
  const auto ld = losses(split / "steps.jsonl");
  REQUIRE(ld.size() == lb.size());
  for (size_t i = 0; i < lb.size(); ++i) CHECK(ld[i] == lb[i]);  // bit for bit
  // A process killed mid-run (here process 1, after the first checkpoint) ends the whole job
  // with an error, and the last checkpoint stays loadable. Per-process batch-norm (the default).
  const fs::path killed = fx.root / "two_killed";
  const fs::path log = fx.root / "killed.log";
  const std::string cmd = "exec " + mpi + " " + fx.args(killed, 400) + " > " + log.string() + " 2>&1";
  const pid_t pid = ::fork();
  REQUIRE(pid >= 0);
  if (pid == 0) {
    ::execl("/bin/sh", "sh", "-c", cmd.c_str(), static_cast<char*>(nullptr));
    ::_exit(127);
  }
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(120);
  while (!fs::exists(killed / "checkpoint.bin") && std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  REQUIRE(fs::exists(killed / "checkpoint.bin"));
  // The launcher's children are the two trainers; the second one started is process 1 or 0
  // (either way one of the two dies).
  Run children = run("-P " + std::to_string(pid), "", "pgrep");
  std::istringstream ids(children.output);
  std::vector<long> pids;
  for (long p = 0; ids >> p;) pids.push_back(p);
  INFO("children of the launcher: " << children.output);
  REQUIRE(pids.size() == 2);
  ::kill(static_cast<pid_t>(pids.back()), SIGKILL);
  int raw = 0;
  pid_t done = 0;
  while ((done = ::waitpid(pid, &raw, WNOHANG)) == 0 && std::chrono::steady_clock::now() < deadline + std::chrono::seconds(60))
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  if (done == 0) ::kill(pid, SIGKILL), ::waitpid(pid, &raw, 0);
  REQUIRE(done == pid);  // the job ended by itself: no process waits for ever for the dead one
  CHECK((!WIFEXITED(raw) || WEXITSTATUS(raw) != 0));
  const std::string out = slurp(log);
  INFO(out);
  CHECK_THAT(out, Contains("signal 9") || Contains("Killed"));
  Run e = run("--eval " + (killed / "checkpoint.bin").string());
  INFO(e.output);
  CHECK(e.status == 0);
}
#endif

// Sharing the CPU (issue 34 item 9): idle OpenMP threads sleep instead of spinning. libgomp reads
// OMP_WAIT_POLICY before main, so the trainer re-executes itself with it set; the line it logs
// comes from the re-executed process's environment. A policy the user set is kept.
TEST_CASE("train_cifar: OpenMP threads wait passively unless the environment says otherwise", "[trainer]") {
  Fixture fx;
  const std::string clean = "env -u OMP_WAIT_POLICY -u GOMP_SPINCOUNT -u LOWBIT_OMP_WAIT_SET";
  Run d = run(fx.args(fx.root / "w1", 1), clean);
  INFO(d.output);
  CHECK(d.status == 0);
  CHECK_THAT(d.output, Contains("OpenMP wait policy: OMP_WAIT_POLICY=passive (lowbit's default)"));
  Run a = run(fx.args(fx.root / "w2", 1), clean + " OMP_WAIT_POLICY=active");
  INFO(a.output);
  CHECK(a.status == 0);
  CHECK_THAT(a.output, Contains("OpenMP wait policy: from the environment: OMP_WAIT_POLICY=active, GOMP_SPINCOUNT=(unset)"));
  Run s = run(fx.args(fx.root / "w3", 1), clean + " GOMP_SPINCOUNT=300000");
  INFO(s.output);
  CHECK_THAT(s.output, Contains("from the environment: OMP_WAIT_POLICY=(unset), GOMP_SPINCOUNT=300000"));
}

// The DoReFa 2/2 acceptance run (docs/quantization.md, "Hand count"): DoReFa 2-bit weights and activations on ResNet-20, first
// conv and last FC in FP32. summary.json must equal the hand count of docs/quantization.md:
//   267264 middle-conv weights at 2 bits = 66816 bytes (DoReFa has no scale)
//   FP32: conv1 432 + fc 640 + fc bias 10 + BN 1376 parameters + 1376 running stats = 3834
//   values = 15336 bytes;  model_bytes = 82152
//   avg_weight_bits = (267264 * 2 + (432 + 640) * 32) / 268336 = 568832 / 268336
//   compression = 4 * (269722 + 1376) / 82152 = 1084392 / 82152
// and the exported model.lbq, evaluated with --eval, gives the same test accuracy.
TEST_CASE("train_cifar: method=ste w_bits=2 a_bits=2 reports the hand-counted size and exports", "[trainer][quant]") {
  Fixture fx;
  const fs::path out = fx.root / "ste22";
  Run r = run(fx.args(out, 1) + " --set method=ste --set w_bits=2 --set a_bits=2");
  INFO(r.output);
  REQUIRE(r.status == 0);
  CHECK_THAT(r.output, Contains("DoReFa/DoReFa") && Contains("model size 82152 bytes"));
  const json s = json::parse(slurp(out / "summary.json"));
  CHECK(s.at("method") == "ste");
  CHECK(s.at("params") == 269722);
  CHECK(s.at("model_bytes") == 82152);
  CHECK(s.at("fp32_bytes") == 1084392);
  CHECK(s.at("avg_weight_bits").get<double>() == Approx(568832.0 / 268336.0).epsilon(1e-12));
  CHECK(s.at("compression_ratio").get<double>() == Approx(1084392.0 / 82152.0).epsilon(1e-12));
  // The export is a safetensors file: 8-byte header length, JSON header, exactly model_bytes
  // of data.
  const fs::path lbq = out / "model.lbq";
  REQUIRE(fs::exists(lbq));
  const std::string bytes = slurp(lbq);
  REQUIRE(bytes.size() > 20);
  uint64_t hlen = 0;
  std::memcpy(&hlen, bytes.data(), 8);
  REQUIRE(hlen < bytes.size());
  CHECK(json::parse(bytes.substr(8, hlen)).at("__metadata__").at("lowbit.format") == "lowbit.quantized_model");
  CHECK(fs::file_size(lbq) == 8 + hlen + 82152);
  // The checkpoint and the export carry lowbit's checksums: one flipped byte anywhere (the
  // header length, the header, the data) or a cut anywhere is exit 2 with one line naming the
  // file, never a model that loads with other weights.
  for (const fs::path& file : {out / "checkpoint.bin", lbq}) {
    const std::string good = slurp(file);
    uint64_t n = 0;
    std::memcpy(&n, good.data(), 8);
    const size_t size = good.size(), data = 8 + n;
    const fs::path bad = fx.root / ("damaged_" + file.filename().string());
    auto expect_refused = [&](const std::string& bytes, const std::string& what) {
      std::ofstream(bad, std::ios::binary | std::ios::trunc) << bytes;
      const Run d = run("--eval " + bad.string() + " --set data=" + fx.data.string());
      INFO(file.filename() << ": " << what << "\n" << d.output);
      CHECK(d.status == 2);
      CHECK_THAT(d.output, Contains("train_cifar: error: ") && Contains(bad.string()));
      CHECK(std::count(d.output.begin(), d.output.end(), '\n') == 1);
    };
    for (size_t at : {size_t(0), size_t(3), size_t(9), size_t(8 + n / 3), size_t(8 + n / 2), data - 1, data, data + 1,
                      data + (size - data) / 3, data + (size - data) / 2, size - 5, size - 1}) {
      std::string flipped = good;
      flipped[at] = static_cast<char>(flipped[at] ^ 0x10);
      expect_refused(flipped, "byte " + std::to_string(at) + " of " + std::to_string(size) + " flipped");
    }
    for (size_t len : {size_t(0), size_t(5), size_t(8), data / 2, data, data + 7, size - 1})
      expect_refused(good.substr(0, len), "cut at " + std::to_string(len) + " of " + std::to_string(size));
  }
  // Export -> load -> evaluate: the same accuracy as the trained model's last evaluation.
  Run e = run("--eval " + lbq.string() + " --set data=" + fx.data.string());
  INFO(e.output);
  CHECK(e.status == 0);
  char acc[32];
  std::snprintf(acc, sizeof acc, "%.2f%%", 100 * s.at("final_test_acc").get<double>());
  CHECK_THAT(e.output, Contains(acc));
  char loss[32];
  std::snprintf(loss, sizeof loss, "%.4f", json::parse(slurp(out / "metrics.jsonl")).at("test_loss").get<double>());
  CHECK_THAT(e.output, Contains(loss));
  // Bad quantization settings name the key, the value and what is allowed.
  Run b = run(fx.args(fx.root / "bad", 1) + " --set method=ste --set w_bits=12");
  CHECK(b.status == 2);
  CHECK_THAT(b.output, Contains("'w_bits' = 12: method ste expects 1..8 or 32"));
  Run b2 = run(fx.args(fx.root / "bad2", 1) + " --set method=ste --set first_layer=4bit");
  CHECK(b2.status == 2);
  CHECK_THAT(b2.output, Contains("'first_layer' = \"4bit\"") && Contains("default | fp32 | 8bit | same"));
}

TEST_CASE("predict: an exported 1/1 model through the low-bit kernels; images; bad input exits 2", "[trainer][infer]") {
  Fixture fx;
  const fs::path out = fx.root / "ste11";
  Run r = run(fx.args(out, 1) + " --set method=ste --set w_bits=1 --set a_bits=1");
  INFO(r.output);
  REQUIRE(r.status == 0);
  const fs::path lbq = out / "model.lbq";
  const std::string data = " --set data=" + fx.data.string();
  auto predict = [](const std::string& args) { return run(args, "", LOWBIT_PREDICT_EXE); };
  // The test set, beside the fake-quantized evaluation (which is train_cifar --eval's).
  Run p = predict(lbq.string() + data + " --compare --json --threads 1");
  INFO(p.output);
  REQUIRE(p.status == 0);
  const json j = json::parse(p.output);
  CHECK(j.at("images") == 60);
  REQUIRE(j.at("layers").size() == 18);  // ResNet-20's middle convolutions
  for (const json& l : j.at("layers")) CHECK(l.at("kernel") == "binary");
  Run e = run("--eval " + lbq.string() + data + " --json");
  REQUIRE(e.status == 0);
  CHECK(j.at("fake_quant").at("accuracy") == json::parse(e.output).at("accuracy"));
  CHECK(j.at("fake_quant").at("predictions_differ").get<int64_t>() <= 1);  // rounding only (docs/inference.md)
  Run lay = predict(lbq.string() + data + " --layers --threads 1");
  CHECK(lay.status == 0);
  CHECK_THAT(lay.output, Contains("layer1.0.conv1") && Contains("AND + popcount") && Contains("test accuracy"));
  // Images of our own: a folder, top-3 each; another size is refused unless --resize.
  const fs::path imgs = fx.root / "imgs";
  fs::create_directories(imgs);
  write_bmp(imgs / "a.bmp", 32, 32);
  write_bmp(imgs / "b.bmp", 32, 32);
  Run im = predict(lbq.string() + " --images " + imgs.string() + " --top-k 3 --json");
  INFO(im.output);
  REQUIRE(im.status == 0);
  const json ij = json::parse(im.output);
  REQUIRE(ij.at("predictions").size() == 2);
  CHECK(ij.at("predictions")[0].at("file") == (imgs / "a.bmp").string());
  CHECK(ij.at("predictions")[1].at("top").size() == 3);
  write_bmp(imgs / "c.bmp", 16, 16);
  Run small = predict(lbq.string() + " --images " + imgs.string());
  CHECK(small.status == 2);
  CHECK_THAT(small.output, Contains("predict: error: ") && Contains("c.bmp") && Contains("is 16x16") &&
                               Contains("the model takes 32x32"));
  CHECK(std::count(small.output.begin(), small.output.end(), '\n') == 1);
  CHECK(predict(lbq.string() + " --images " + imgs.string() + " --resize").status == 0);
  // A damaged file, another architecture, a wrong flag: exit 2, one line naming it.
  const fs::path cut = fx.root / "cut.lbq";
  std::ofstream(cut, std::ios::binary) << slurp(lbq).substr(0, fs::file_size(lbq) - 7);
  for (const auto& [args, want] : std::vector<std::pair<std::string, std::string>>{
           {cut.string() + data, cut.string()},
           {lbq.string() + data + " --set model=resnet32", "missing quantized weight: layer1.3.conv1.wq"},
           {lbq.string() + " --top-k 0", "--top-k expects an integer >= 1, got '0'"},
           {lbq.string() + " --bogus", "unknown argument '--bogus'"}}) {
    Run b = predict(args);
    INFO(args << "\n" << b.output);
    CHECK(b.status == 2);
    CHECK_THAT(b.output, Contains("predict: error: ") && Contains(want));
  }
}

TEST_CASE("train_cifar: a quantized PACT run resumes bit-exactly", "[trainer][quant]") {
  Fixture fx;
  const std::string q = " --set method=ste --set w_bits=1 --set a_bits=3 --set ste.a_quant=pact --set last_layer=8bit";
  const fs::path straight = fx.root / "q_straight", split = fx.root / "q_split";
  Run a = run(fx.args(straight, 2) + q);
  INFO(a.output);
  REQUIRE(a.status == 0);
  CHECK_THAT(a.output, Contains("BWN/PACT"));
  REQUIRE(run(fx.args(split, 2) + q + " --stop-after-epochs 1").status == 0);
  Run b = run("--resume " + split.string());
  INFO(b.output);
  REQUIRE(b.status == 0);
  const auto la = losses(straight / "steps.jsonl"), lb = losses(split / "steps.jsonl");
  REQUIRE(la.size() == 4);
  REQUIRE(lb.size() == la.size());
  for (size_t i = 0; i < la.size(); ++i) CHECK(la[i] == lb[i]);
  // The exported codes, scales and FP32 tensors are identical (the headers differ in "out"):
  // the data section, the last model_bytes bytes of the safetensors file.
  const size_t data = json::parse(slurp(straight / "summary.json")).at("model_bytes").get<size_t>();
  const std::string fa = slurp(straight / "model.lbq"), fb = slurp(split / "model.lbq");
  REQUIRE(fa.size() > data);
  REQUIRE(fb.size() > data);
  CHECK(fa.substr(fa.size() - data) == fb.substr(fb.size() - data));
}

// SLB (docs/slb.md): method=slb trains with SBN, logs the search's sharpness per epoch, resumes
// bit-exactly (the continuous BN statistics travel in the checkpoint's method state), and
// its export (argmax codes, 2 bits, no scale: the same 82152 bytes as DoReFa 2/2 above)
// evaluates to the trained model's last test accuracy (W_q + the discrete statistics).
TEST_CASE("train_cifar: method=slb logs tau and sharpness, resumes bit-exactly and exports", "[trainer][quant][slb]") {
  Fixture fx;
  const std::string q = " --set method=slb --set w_bits=2 --set a_bits=2";
  const fs::path straight = fx.root / "slb_straight", split = fx.root / "slb_split";
  Run a = run(fx.args(straight, 2) + q);
  INFO(a.output);
  REQUIRE(a.status == 0);
  CHECK_THAT(a.output, Contains("SLB/DoReFa"));
  std::ifstream m(straight / "metrics.jsonl");
  std::vector<json> epochs;
  for (std::string line; std::getline(m, line);) epochs.push_back(json::parse(line));
  REQUIRE(epochs.size() == 2);
  for (auto& e : epochs)
    for (const char* k : {"tau", "mean_max_p", "frac_max_p_gt_0999", "gap_rel", "test_acc"}) CHECK(e.contains(k));
  // Two epochs of 2 steps: the last step of each trains at T = 0.01 * 1000^(i/4), i = 2, 4.
  CHECK(epochs[0].at("tau").get<double>() == Approx(1.0 / (0.01 * std::sqrt(1000.0))).epsilon(1e-12));
  CHECK(epochs[1].at("tau").get<double>() == Approx(0.1).epsilon(1e-12));
  CHECK(epochs[1].at("mean_max_p").get<double>() > epochs[0].at("mean_max_p").get<double>());  // sharper at lower tau
  CHECK(epochs[1].at("gap_rel").get<double>() < epochs[0].at("gap_rel").get<double>());
  const json s = json::parse(slurp(straight / "summary.json"));
  CHECK(s.at("method") == "slb");
  CHECK(s.at("model_bytes") == 82152);
  // Resume: the loss of every step is identical.
  REQUIRE(run(fx.args(split, 2) + q + " --stop-after-epochs 1").status == 0);
  Run b = run("--resume " + split.string());
  INFO(b.output);
  REQUIRE(b.status == 0);
  const auto la = losses(straight / "steps.jsonl"), lb = losses(split / "steps.jsonl");
  REQUIRE(la.size() == 4);
  REQUIRE(lb.size() == la.size());
  for (size_t i = 0; i < la.size(); ++i) CHECK(la[i] == lb[i]);
  CHECK(json::parse(slurp(split / "summary.json")).at("final_test_acc") == s.at("final_test_acc"));
  // Export -> --eval: the same accuracy and loss as the last epoch's evaluation.
  Run e = run("--eval " + (straight / "model.lbq").string() + " --set data=" + fx.data.string());
  INFO(e.output);
  CHECK(e.status == 0);
  char acc[32], loss[32];
  std::snprintf(acc, sizeof acc, "%.2f%%", 100 * s.at("final_test_acc").get<double>());
  std::snprintf(loss, sizeof loss, "%.4f", epochs[1].at("test_loss").get<double>());
  CHECK_THAT(e.output, Contains(acc) && Contains(loss));
  // Bad SLB settings name the key and the value.
  Run bad = run(fx.args(fx.root / "slb_bad", 1) + q + " --set slb.schedule=cosine");
  CHECK(bad.status == 2);
  CHECK_THAT(bad.output, Contains("'slb.schedule' = \"cosine\"") && Contains("exp | linear | sin"));
  Run bad2 = run(fx.args(fx.root / "slb_bad2", 1) + " --set method=slb --set w_bits=32");
  CHECK(bad2.status == 2);
  CHECK_THAT(bad2.output, Contains("'w_bits' = 32: method slb expects 1..8"));
}

// SLB without SBN and with BN calibration: runs, and logs the calibration batches.
TEST_CASE("train_cifar: method=slb without SBN, with BN calibration", "[trainer][quant][slb]") {
  Fixture fx;
  const fs::path out = fx.root / "slb_nosbn";
  Run a = run(fx.args(out, 1) + " --set method=slb --set w_bits=1 --set a_bits=32 --set slb.sbn=false"
              " --set slb.calibrate_batches=1 --set slb.schedule=sin");
  INFO(a.output);
  REQUIRE(a.status == 0);
  const json e = json::parse(slurp(out / "metrics.jsonl"));
  CHECK(e.at("calibrated_batches") == 1);
  CHECK(e.at("tau").get<double>() == Approx(0.1).epsilon(1e-12));  // sin reaches T_e = 10 at the last step
  CHECK(fs::exists(out / "summary.json"));
}

// APoT (docs/apot.md). 3-bit APoT weights and activations, first conv and last FC with the
// authors' 8-bit weights (Uniform8). Model size by hand (docs/quantization.md's accounting):
//   18 middle convs: 267264 weights at 3 bits = 100224 bytes; conv1 432 + fc 640 weights at
//   8 bits = 1072 bytes; 20 scales (one alpha per quantized weight) = 80 bytes;
//   FP32: BN 1376 parameters + 1376 running stats + fc bias 10 + 18 activation alphas = 2780
//   values = 11120 bytes;  model_bytes = 112496.
// FixOPs: a 3-bit APoT weight is one PoT term (n = 1) against l = 3 bits uniform, so the 18
// middle convs (the only layers with both operands fixed point) cost exactly 1/3.
TEST_CASE("train_cifar: method=apot trains a few steps, logs alphas and writes summary.json", "[trainer][apot]") {
  Fixture fx;
  const fs::path out = fx.root / "apot33";
  Run r = run(fx.args(out, 2) + " --set method=apot --set w_bits=3 --set a_bits=3 --set first_layer=8bit"
                                " --set last_layer=8bit");
  INFO(r.output);
  REQUIRE(r.status == 0);
  CHECK_THAT(r.output, Contains("APoT/APoT") && Contains("Uniform8") && Contains("PoT terms") &&
                           Contains("model size 112496 bytes"));
  const json s = json::parse(slurp(out / "summary.json"));
  CHECK(s.at("method") == "apot");
  CHECK(s.at("model_bytes") == 112496);
  CHECK(s.at("fixops_per_image").get<double>() > 0);
  CHECK(s.at("fixops_per_image").get<double>() ==
        Approx(s.at("fixops_uniform_per_image").get<double>() / 3).epsilon(1e-12));
  CHECK(s.at("init_from").is_null());
  // The report's APoT picture: normalized weights of three layers with alpha * {+-M} and alpha
  // (3-bit APoT: magnitudes {0, 0.25, 0.5, 1} -> 7 signed levels, the largest = alpha).
  const json h = json::parse(slurp(out / "weight_hist.json"));
  REQUIRE(h.at("layers").size() == 3);
  for (auto& l : h.at("layers")) {
    CHECK(l.at("levels").size() == 7);
    CHECK(l.at("levels").back().get<double>() == Approx(l.at("alpha").get<double>()));
    CHECK(l.at("values").size() > 100);
  }
  CHECK_THAT(slurp(out / "report.html"), Contains("id=\"weights\"") && Contains("learned alpha"));
  // Every epoch logs the 18 weight alphas and 18 activation alphas; training moved them.
  std::ifstream m(out / "metrics.jsonl");
  std::string line;
  REQUIRE(std::getline(m, line));
  const json e1 = json::parse(line);
  REQUIRE(e1.contains("apot_w_alpha"));
  CHECK(e1.at("apot_w_alpha").size() == 18);
  CHECK(e1.at("apot_a_alpha").size() == 18);
  CHECK(e1.at("apot_w_alpha").at("layer1.0.conv1").get<double>() != 3.0);
  const auto l = losses(out / "steps.jsonl");
  REQUIRE(l.size() == 4);
  for (double v : l) CHECK(std::isfinite(v));
  // The export rebuilds the same model: --eval model.lbq gives the last epoch's accuracy.
  Run e = run("--eval " + (out / "model.lbq").string() + " --set data=" + fx.data.string());
  INFO(e.output);
  CHECK(e.status == 0);
  char acc[32];
  std::snprintf(acc, sizeof acc, "%.2f%%", 100 * s.at("final_test_acc").get<double>());
  CHECK_THAT(e.output, Contains(acc));
  // Bad APoT settings name the key and the value.
  Run b = run(fx.args(fx.root / "bad", 1) + " --set method=apot --set w_bits=6 --set a_bits=3");
  CHECK(b.status == 2);
  CHECK_THAT(b.output, Contains("'w_bits' = 6: method apot expects 2..5 or 32"));
  Run b2 = run(fx.args(fx.root / "bad2", 1) + " --set method=apot --set w_bits=3 --set a_bits=3 --set apot.wn=maybe");
  CHECK(b2.status == 2);
  CHECK_THAT(b2.output, Contains("'apot.wn' = \"maybe\"") && Contains("on | detached | off"));
}

// Progressive initialization: FP32 -> APoT 4/4 -> APoT 3/3, each with --init-from. With a
// learning rate of 1e-30 no update changes a float weight, so the stage's checkpoint shows
// exactly what was loaded.
TEST_CASE("train_cifar: --init-from loads matching tensors, FP32 -> 4-bit -> 3-bit", "[trainer][apot]") {
  Fixture fx;
  const fs::path fp = fx.root / "fp", a4 = fx.root / "a4", a3 = fx.root / "a3";
  REQUIRE(run(fx.args(fp, 1)).status == 0);
  const std::string q = " --set method=apot --set apot.w_alpha_lr=1e-30 --set apot.a_alpha_lr=1e-30";
  Run r4 = run(fx.args(a4, 1) + q + " --set w_bits=4 --set a_bits=4 --set lr=1e-30 --init-from " +
               (fp / "checkpoint.bin").string());
  INFO(r4.output);
  REQUIRE(r4.status == 0);
  // 19 convs + fc weight: 18 convs are quantized, their FP32 "weight" becomes "wq.latent".
  CHECK_THAT(r4.output, Contains("--init-from") && Contains("renamed (18)") &&
                            Contains("layer1.0.conv1.weight -> layer1.0.conv1.wq.latent") &&
                            Contains("extra in the checkpoint, unused (0)"));
  // Missing: 18 weight alphas + 18 activation alphas, which keep their init values.
  CHECK_THAT(r4.output, Contains("missing from the checkpoint, kept at their initial values (36)") &&
                            Contains("layer1.0.conv1.wq.alpha"));
  const lowbit::io::Checkpoint ck_fp = lowbit::io::load_checkpoint((fp / "checkpoint.bin").string());
  const lowbit::io::Checkpoint ck4 = lowbit::io::load_checkpoint((a4 / "checkpoint.bin").string());
  CHECK(ck4.tensors.at("model/layer2.1.conv2.wq.latent").to_vector() ==
        ck_fp.tensors.at("model/layer2.1.conv2.weight").to_vector());
  CHECK(ck4.tensors.at("model/conv1.weight").to_vector() == ck_fp.tensors.at("model/conv1.weight").to_vector());
  CHECK(ck4.tensors.at("model/fc.weight").to_vector() == ck_fp.tensors.at("model/fc.weight").to_vector());
  CHECK(ck4.tensors.at("model/layer1.0.conv1.wq.alpha").item() == 3.f);
  CHECK(ck4.tensors.at("model/layer1.0.conv1.aq.alpha").item() == 8.f);
  const json s4 = json::parse(slurp(a4 / "summary.json"));
  size_t fp_model_tensors = 0;
  for (auto& kv : ck_fp.tensors) fp_model_tensors += kv.first.rfind("model/", 0) == 0;
  CHECK(s4.at("init_from").at("loaded") == fp_model_tensors);
  CHECK(s4.at("init_from").at("missing") == 36);
  // 4 -> 3 bits: every tensor matches by name, the alphas come along.
  Run r3 = run(fx.args(a3, 1) + q + " --set w_bits=3 --set a_bits=3 --set lr=1e-30 --init-from " +
               (a4 / "checkpoint.bin").string());
  INFO(r3.output);
  REQUIRE(r3.status == 0);
  CHECK_THAT(r3.output, Contains("renamed (0)") && Contains("kept at their initial values (0)"));
  const lowbit::io::Checkpoint ck3 = lowbit::io::load_checkpoint((a3 / "checkpoint.bin").string());
  CHECK(ck3.tensors.at("model/layer3.2.conv1.wq.latent").to_vector() ==
        ck4.tensors.at("model/layer3.2.conv1.wq.latent").to_vector());
  // Bad use: a missing file, and --init-from with --resume.
  Run b = run(fx.args(fx.root / "x", 1) + q + " --set w_bits=3 --set a_bits=3 --init-from " +
              (fx.root / "none.bin").string());
  CHECK(b.status == 2);
  CHECK_THAT(b.output, Contains("none.bin"));
  CHECK(!fs::exists(fx.root / "x"));  // failed before creating the output folder
  Run b2 = run("--resume " + a3.string() + " --init-from " + (fp / "checkpoint.bin").string());
  CHECK(b2.status == 2);
  CHECK_THAT(b2.output, Contains("'init_from' cannot change when resuming"));
}

// ---- ALQ (quant/alq/pipeline.hpp) ----------------------------------------------------------------------
TEST_CASE("train_cifar: method=alq sketches an FP32 run, prunes to the target bits, exports and resumes", "[trainer][quant][alq]") {
  Fixture fx;
  const fs::path fp = fx.root / "alq_fp32";
  REQUIRE(run(fx.args(fp, 1)).status == 0);
  // 4 epochs of 2 steps: basis, coordinate, prune (2 iterations to 1.0 bit), STE.
  const std::string q = " --set method=alq --set w_bits=4 --init-from " + (fp / "checkpoint.bin").string() +
                        " --set alq.rounds=1 --set alq.epoch_basis=1 --set alq.epoch_coord=1 --set alq.epoch_prune=1"
                        " --set alq.ste_epochs=1 --set alq.final_coord_epochs=0 --set alq.target_bits=1.0";
  const fs::path straight = fx.root / "alq", split = fx.root / "alq_split";
  Run r = run(fx.args(straight, 4) + q);
  INFO(r.output);
  REQUIRE(r.status == 0);
  CHECK_THAT(r.output, Contains("weights: ") && Contains("average bits"));
  const json s = json::parse(slurp(straight / "summary.json"));
  REQUIRE(s.contains("alq"));
  const json& a = s.at("alq");
  const double bits = a.at("avg_weight_bits").get<double>();
  CHECK(bits <= 1.0);
  CHECK(bits > 0.9);  // the paper's rule stops at the budget, within a few groups
  // Every conv and the classifier are ALQ layers (first and last quantized by default).
  CHECK(a.at("layers").size() == 20);
  CHECK(s.at("avg_weight_bits").get<double>() == Approx(bits).epsilon(1e-12));
  // Weights-only storage: every layer is ALQ, so it is the sum of the layers' bytes.
  CHECK(a.at("fp32_weight_bytes") == 4 * 268336);
  int64_t hist = 0, groups = 0, bytes = 0;
  for (auto& h : a.at("bits_histogram")) hist += h.get<int64_t>();
  for (auto& l : a.at("layers")) groups += l.at("groups").get<int64_t>(), bytes += l.at("bytes").get<int64_t>();
  CHECK(hist == groups);
  CHECK(a.at("weight_bytes") == bytes);
  CHECK(a.at("compression_ratio").get<double>() == Approx(4.0 * 268336 / static_cast<double>(bytes)).epsilon(1e-12));
  CHECK(s.at("weight_storage").at("weight_bytes") == bytes);
  std::vector<std::string> phases;
  std::ifstream m(straight / "metrics.jsonl");
  for (std::string line; std::getline(m, line);) phases.push_back(json::parse(line).at("alq_phase"));
  CHECK(phases == std::vector<std::string>{"basis", "coordinate", "prune", "ste"});
  // The export (rule binary_bases, pixel-wise groups) evaluates to the same accuracy and loss.
  Run e = run("--eval " + (straight / "model.lbq").string() + " --set data=" + fx.data.string());
  INFO(e.output);
  CHECK(e.status == 0);
  char acc[32];
  std::snprintf(acc, sizeof acc, "%.2f%%", 100 * s.at("final_test_acc").get<double>());
  CHECK_THAT(e.output, Contains(acc));
  // Interrupted after the coordinate epoch and resumed: the same losses, bit for bit.
  REQUIRE(run(fx.args(split, 4) + q + " --stop-after-epochs 2").status == 0);
  Run b = run("--resume " + split.string());
  INFO(b.output);
  REQUIRE(b.status == 0);
  const auto la = losses(straight / "steps.jsonl"), lb = losses(split / "steps.jsonl");
  REQUIRE(la.size() == 8);
  REQUIRE(lb.size() == la.size());
  for (size_t i = 0; i < la.size(); ++i) CHECK(la[i] == lb[i]);
  CHECK(json::parse(slurp(split / "summary.json")).at("alq").at("avg_weight_bits") == a.at("avg_weight_bits"));
  // The pipeline length is checked against epochs.
  Run bad = run(fx.args(fx.root / "alq_bad", 3) + q);
  CHECK(bad.status == 2);
  CHECK_THAT(bad.output, Contains("ALQ pipeline") && Contains("4 epochs"));
  Run bad2 = run(fx.args(fx.root / "alq_bad2", 4) + q + " --set w_bits=32");
  CHECK(bad2.status == 2);
  CHECK_THAT(bad2.output, Contains("I_max"));
  Run bad3 = run(fx.args(fx.root / "alq_bad3", 4) + q + " --set alq.conv_grouping=rows");
  CHECK(bad3.status == 2);
  CHECK_THAT(bad3.output, Contains("'alq.conv_grouping' = \"rows\"") && Contains("pixel | channel | kernel"));
}

// A user's own data set (dataset=folder): train/<class>/ and test/<class>/ PNGs of w x h with
// c channels, the class deciding the brightness so a few steps learn something.
fs::path write_png_folders(const fs::path& root, int classes, int per_class, int w, int h, int c) {
  for (const char* split : {"train", "test"})
    for (int k = 0; k < classes; ++k) {
      const fs::path dir = root / split / ("class_" + std::to_string(k));
      fs::create_directories(dir);
      for (int i = 0; i < per_class; ++i) {
        std::vector<unsigned char> px(static_cast<size_t>(w * h * c));
        for (size_t p = 0; p < px.size(); ++p)
          px[p] = static_cast<unsigned char>(40 + 80 * k + static_cast<int>((p * 7 + static_cast<size_t>(i) * 13) % 30));
        const std::string f = (dir / (std::to_string(i) + ".png")).string();
        REQUIRE(stbi_write_png(f.c_str(), w, h, c, px.data(), w * c) != 0);
      }
    }
  return root;
}

TEST_CASE("train_cifar: 64x64 RGB and 28x28 grayscale image folders train end to end", "[trainer][shapes]") {
  Fixture fx;
  const fs::path rgb = write_png_folders(fx.root / "rgb64", 3, 8, 64, 64, 3);
  const fs::path gray = write_png_folders(fx.root / "gray28", 2, 8, 28, 28, 1);
  const std::string common = " --set train_per_class=0 --set batch=8 --set epochs=2 --set warmup_epochs=0 --set threads=1"
                             " --set lr=0.02 --set schedule=constant";
  Run a = run("--set dataset=folder --data " + rgb.string() + " --out " + (fx.root / "r_rgb").string() + common);
  INFO(a.output);
  REQUIRE(a.status == 0);
  CHECK_THAT(a.output, Contains("3x64x64 images, 3 classes") && Contains("train images: 24"));
  json s = json::parse(slurp(fx.root / "r_rgb" / "summary.json"));
  CHECK(s.at("data_info").at("channels") == 3);
  CHECK(s.at("data_info").at("classes") == 3);
  CHECK(s.at("data_info").at("norm_mean").size() == 3);  // normalize=auto on a folder: its own statistics
  // The grayscale folder with LeNet5 (1 channel auto-detected), then --eval of its checkpoint.
  Run b = run("--set dataset=folder --set model=lenet5 --data " + gray.string() + " --out " + (fx.root / "r_gray").string() + common);
  INFO(b.output);
  REQUIRE(b.status == 0);
  CHECK_THAT(b.output, Contains("1x28x28 images, 2 classes"));
  s = json::parse(slurp(fx.root / "r_gray" / "summary.json"));
  CHECK(s.at("params") == 20 * 25 + 20 + 50 * 20 * 25 + 50 + 800 * 500 + 500 + 500 * 2 + 2);
  Run e = run("--eval " + (fx.root / "r_gray" / "checkpoint.bin").string());
  INFO(e.output);
  CHECK(e.status == 0);
  char acc[32];
  std::snprintf(acc, sizeof acc, "%.2f%%", 100 * s.at("final_test_acc").get<double>());
  CHECK_THAT(e.output, Contains(acc));
  // Resized to 32 x 32 and forced to 3 channels: the same images in CIFAR's shape.
  Run c = run("--set dataset=folder --set image_size=32 --set channels=3 --data " + gray.string() + " --out " +
              (fx.root / "r_resized").string() + common + " --set epochs=1");
  INFO(c.output);
  CHECK(c.status == 0);
  CHECK_THAT(c.output, Contains("3x32x32 images, 2 classes"));
  // A model that cannot take the images, and folder keys on a named data set: exit 2, one line.
  const fs::path tiny = write_png_folders(fx.root / "tiny", 2, 2, 8, 8, 1);
  Run d = run("--set dataset=folder --set model=lenet5 --data " + tiny.string() + " --out " + (fx.root / "r_tiny").string() + common);
  CHECK(d.status == 2);
  CHECK_THAT(d.output, Contains("config key 'model' = \"lenet5\" on 1x8x8 images") && Contains("16 x 16"));
  CHECK(!fs::exists(fx.root / "r_tiny" / "checkpoint.bin"));
  Run f = run(fx.args(fx.root / "r_bad", 1) + " --set image_size=64");
  CHECK(f.status == 2);
  CHECK_THAT(f.output, Contains("'image_size' = 64") && Contains("'folder' only"));
  Run g = run("--set dataset=folder --out " + (fx.root / "r_nodata").string());
  CHECK(g.status == 2);
  CHECK_THAT(g.output, Contains("needs 'data'"));
}

TEST_CASE("train_cifar: a validation split chooses the best epoch; metrics.csv; best_checkpoint.bin", "[trainer][shapes]") {
  Fixture fx;
  const fs::path out = fx.root / "val";
  Run r = run(fx.args(out, 3) + " --set val_images=40 --set train_images=0");
  INFO(r.output);
  REQUIRE(r.status == 0);
  CHECK_THAT(r.output, Contains("train images: 160, validation images: 40"));
  const json s = json::parse(slurp(out / "summary.json"));
  CHECK(s.at("val_images") == 40);
  const int64_t best_epoch = s.at("best_val_epoch");
  std::vector<json> rows;
  {
    std::ifstream m(out / "metrics.jsonl");
    for (std::string line; std::getline(m, line);) rows.push_back(json::parse(line));
  }
  REQUIRE(rows.size() == 3);
  double best = -1;
  int64_t first_best = 0;
  for (auto& row : rows)
    if (row.at("val_acc").get<double>() > best) best = row.at("val_acc"), first_best = row.at("epoch");
  CHECK(best_epoch == first_best);
  CHECK(s.at("best_val_acc").get<double>() == best);
  CHECK(s.at("test_acc_at_best_val") == rows[static_cast<size_t>(best_epoch - 1)].at("test_acc"));
  CHECK(s.contains("best_test_acc_note"));
  // metrics.csv: a header and one row per epoch, the same numbers.
  std::ifstream csv(out / "metrics.csv");
  std::vector<std::string> lines;
  for (std::string line; std::getline(csv, line);) lines.push_back(line);
  REQUIRE(lines.size() == 4);
  CHECK(lines[0].rfind("epoch,", 0) == 0);
  CHECK_THAT(lines[0], Contains("val_acc") && Contains("test_acc"));
  // The best epoch's checkpoint evaluates to the test accuracy recorded for it.
  REQUIRE(fs::exists(out / "best_checkpoint.bin"));
  Run e = run("--eval " + (out / "best_checkpoint.bin").string() + " --set data=" + fx.data.string());
  INFO(e.output);
  CHECK(e.status == 0);
  char acc[32];
  std::snprintf(acc, sizeof acc, "%.2f%%", 100 * s.at("test_acc_at_best_val").get<double>());
  CHECK_THAT(e.output, Contains(acc));
  // Holding out the whole training set is refused.
  Run bad = run(fx.args(fx.root / "val_bad", 1) + " --set val_images=200 --set train_images=0");
  CHECK(bad.status == 2);
  CHECK_THAT(bad.output, Contains("'val_images' = 200"));
}
