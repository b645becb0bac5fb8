// End-to-end tests of examples/train_sr (the binary, as a user runs it): a tiny VDSR run on
// synthetic images whose loss and PSNR are finite and written where the docs say, bit-exact
// resume, --eval with the PSNR rows and the pictures, and the bad inputs of issue 30 (an
// unreadable image, a 1x1 image, a scale of 0 or 1, a folder that already holds a run, a
// checkpoint of the other trainer) giving exit status 2 and one line naming the file or key,
// with nothing already saved changed.
#include <sys/wait.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <vector>

#include "../stb_image_write_for_tests.hpp"

#ifndef LOWBIT_SOURCE_DIR
#error "LOWBIT_SOURCE_DIR must name the repository root (set by tests/CMakeLists.txt)"
#endif
#ifndef LOWBIT_TRAIN_SR_EXE
#error "LOWBIT_TRAIN_SR_EXE must name the train_sr executable (set by tests/CMakeLists.txt)"
#endif

namespace fs = std::filesystem;
using Catch::Matchers::Contains;
using json = nlohmann::json;

namespace {
struct Run {
  int status;
  std::string output;
};
Run run(const std::string& args) {
  static int counter = 0;
  const fs::path log = fs::temp_directory_path() / ("lowbit_train_sr_log_" + std::to_string(::getpid()) + "_" +
                                                    std::to_string(counter++) + ".txt");
  const std::string cmd = std::string(LOWBIT_TRAIN_SR_EXE) + " " + args + " > " + log.string() + " 2>&1";
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
// A smooth colour image with some texture (so bicubic is neither perfect nor hopeless).
void write_image(const fs::path& path, int w, int h, int seed) {
  std::vector<unsigned char> px(static_cast<size_t>(w * h * 3));
  for (int y = 0; y < h; ++y)
    for (int x = 0; x < w; ++x)
      for (int c = 0; c < 3; ++c)
        px[static_cast<size_t>((y * w + x) * 3 + c)] = static_cast<unsigned char>(
            127 + 60 * std::sin(0.21 * x * (c + 1) + seed) + 50 * std::cos(0.17 * y + 0.5 * c * seed) + ((x * 7 + y * 13 + seed) % 9));
  REQUIRE(stbi_write_png(path.string().c_str(), w, h, 3, px.data(), w * 3) != 0);
}
struct TempSr {
  fs::path root;
  TempSr() {
    root = fs::temp_directory_path() / ("lowbit_train_sr_" + std::to_string(::getpid()));
    fs::remove_all(root);
    fs::create_directories(root / "data" / "train");
    fs::create_directories(root / "data" / "Set5");
    for (int i = 0; i < 3; ++i) write_image(root / "data" / "train" / ("t" + std::to_string(i) + ".png"), 60, 52, i);
    for (int i = 0; i < 2; ++i) write_image(root / "data" / "Set5" / ("s" + std::to_string(i) + ".png"), 48, 42, 10 + i);
  }
  ~TempSr() { fs::remove_all(root); }
  // A tiny recipe: 4 convs of 8 channels, 17x17 patches, 2 epochs of 5 steps.
  std::string args(const std::string& out) const {
    return "--data " + (root / "data").string() + " --out " + (root / out).string() +
           " --set train_set=train --set test_sets=Set5 --set depth=4 --set width=8 --set patch=17 --set batch=4"
           " --set steps_per_epoch=5 --set epochs=2 --set scales=[2,3] --set eval_scales=[2] --set threads=1"
           " --set lr=0.01";
  }
};
}  // namespace

TEST_CASE("train_sr: a tiny run writes its files; resume is bit-exact; --eval gives the rows and the pictures", "[trainer][sr]") {
  TempSr t;
  const Run r = run(t.args("a"));
  INFO(r.output);
  REQUIRE(r.status == 0);
  const fs::path a = t.root / "a";
  for (const char* f : {"config.json", "metrics.jsonl", "metrics.csv", "steps.jsonl", "checkpoint.bin", "summary.json"})
    CHECK(fs::is_regular_file(a / f));
  const json summary = json::parse(slurp(a / "summary.json"));
  REQUIRE(summary.at("psnr").size() == 1);
  const json& row = summary.at("psnr")[0];
  CHECK(row.at("set") == "Set5");
  CHECK(row.at("scale") == 2);
  CHECK(std::isfinite(row.at("psnr_y").get<double>()));
  CHECK(row.at("bicubic_psnr_y").get<double>() > 15.0);
  CHECK(summary.at("steps") == 10);
  std::istringstream metrics(slurp(a / "metrics.jsonl"));
  int lines = 0;
  for (std::string line; std::getline(metrics, line); ++lines) {
    const json m = json::parse(line);
    CHECK(std::isfinite(m.at("train_loss").get<double>()));
    CHECK(m.contains("monitor_psnr_x2"));
    CHECK(m.contains("max_abs_grad"));  // the largest |gradient element| seen (grad_clip = adjustable)
  }
  CHECK(lines == 2);

  // Stopped after epoch 1 and resumed: the same steps, losses and final model.
  REQUIRE(run(t.args("b") + " --stop-after-epochs 1").status == 0);
  CHECK_FALSE(fs::exists(t.root / "b" / "summary.json"));
  const Run resumed = run("--resume " + (t.root / "b").string());
  INFO(resumed.output);
  REQUIRE(resumed.status == 0);
  CHECK_THAT(resumed.output, Contains("resuming"));
  CHECK(slurp(t.root / "b" / "steps.jsonl") == slurp(a / "steps.jsonl"));
  CHECK(json::parse(slurp(t.root / "b" / "summary.json")).at("psnr") == summary.at("psnr"));

  // --eval of both runs: the PSNR table, the JSON rows and the side-by-side pictures.
  const fs::path pics = t.root / "pics", rows = t.root / "rows.json";
  const Run e = run("--eval " + a.string() + " --eval " + (t.root / "b" / "checkpoint.bin").string() + " --pictures " +
                    pics.string() + " --picture s1@2 --crop 20 --json " + rows.string());
  INFO(e.output);
  REQUIRE(e.status == 0);
  const json j = json::parse(slurp(rows));
  REQUIRE(j.size() == 3);  // bicubic + the two runs, Set5 x2
  CHECK(j[0].at("model") == "bicubic");
  CHECK(j[1].at("psnr_y") == j[2].at("psnr_y"));  // the resumed run is the same model
  CHECK(j[1].at("w_bits") == 32);
  for (const char* k : {"model", "w_bits", "set", "scale", "psnr_y", "budget"}) CHECK(j[1].contains(k));
  CHECK(fs::is_regular_file(pics / "s1_x2.png"));
  CHECK_THAT(slurp(pics / "index.html"), Contains("s1_x2.png") && Contains("bicubic"));
  int w = 0, h = 0, c = 0;
  const std::string png = slurp(pics / "s1_x2.png");
  REQUIRE(png.size() > 24);
  w = (static_cast<unsigned char>(png[18]) << 8) | static_cast<unsigned char>(png[19]);
  h = (static_cast<unsigned char>(png[22]) << 8) | static_cast<unsigned char>(png[23]);
  (void)c;
  CHECK(w == 4 * 20 + 3 * 4);  // HR | bicubic | 2 models, 4-pixel gaps
  CHECK(h == 20);
}

TEST_CASE("train_sr: bad input gives one line naming the file or key, exit 2, nothing overwritten", "[trainer][sr]") {
  TempSr t;
  auto expect_error = [](const Run& r, const std::string& needle) {
    INFO(r.output);
    CHECK(r.status == 2);
    // One line of the output is the error, and it names the file or key.
    std::istringstream lines(r.output);
    int errors = 0;
    for (std::string line; std::getline(lines, line);)
      if (line.find("error") != std::string::npos) {
        ++errors;
        CHECK_THAT(line, Contains("train_sr: error: ") && Contains(needle));
      }
    CHECK(errors == 1);
  };
  // Scales 0 and 1; an unknown key.
  expect_error(run(t.args("x") + " --set scales=[1]"), "'scales'");
  expect_error(run(t.args("x") + " --set eval_scales=[0]"), "'eval_scales'");
  expect_error(run(t.args("x") + " --set scale=2"), "unknown config key 'scale'");
  CHECK_FALSE(fs::exists(t.root / "x" / "config.json"));

  // A run that exists is not overwritten by a new one into its folder.
  REQUIRE(run(t.args("a")).status == 0);
  const std::string ck = slurp(t.root / "a" / "checkpoint.bin");
  expect_error(run(t.args("a")), "already holds a run");
  CHECK(slurp(t.root / "a" / "checkpoint.bin") == ck);

  // An unreadable image in the training set; a 1x1 image in the test set.
  std::ofstream(t.root / "data" / "train" / "broken.png") << "not a png";
  expect_error(run(t.args("y")), "broken.png");
  fs::remove(t.root / "data" / "train" / "broken.png");
  const unsigned char one[3] = {1, 2, 3};
  REQUIRE(stbi_write_png((t.root / "data" / "Set5" / "tiny.png").string().c_str(), 1, 1, 3, one, 3) != 0);
  expect_error(run(t.args("z")), "tiny.png");
  REQUIRE(stbi_write_png((t.root / "data" / "train" / "small.png").string().c_str(), 1, 1, 3, one, 3) != 0);
  expect_error(run(t.args("z")), "small.png");  // smaller than a 17x17 patch
  fs::remove(t.root / "data" / "train" / "small.png");
  expect_error(run("--eval " + (t.root / "a").string()), "tiny.png");
  fs::remove(t.root / "data" / "Set5" / "tiny.png");

  // --eval of something that is not a train_sr checkpoint.
  std::ofstream(t.root / "junk.bin") << "junk";
  expect_error(run("--eval " + (t.root / "junk.bin").string()), "junk.bin");
  expect_error(run("--eval " + (t.root / "a").string() + " --picture nosuch@2 --pictures " + (t.root / "p").string()),
               "nosuch");
  expect_error(run("--eval " + (t.root / "a").string() + " --picture s1@1 --pictures " + (t.root / "p").string()), "s1@1");
  CHECK(slurp(t.root / "a" / "checkpoint.bin") == ck);
}

TEST_CASE("train_sr: the shipped VDSR configs resolve; --help-config lists the keys and the methods' options",
          "[trainer][sr]") {
  for (const char* row : {"fp32", "dorefa", "slb"}) {
    const Run r = run(std::string("--config ") + LOWBIT_SOURCE_DIR + "/examples/configs/sr/vdsr_" + row + ".json --print-config");
    INFO(r.output);
    CHECK(r.status == 0);
    CHECK_THAT(r.output, Contains("milestones") && Contains("[5,10,15]"));
  }
  const Run slb = run(std::string("--config ") + LOWBIT_SOURCE_DIR + "/examples/configs/sr/vdsr_slb.json --print-config");
  CHECK_THAT(slb.output, Contains("slb.values") && Contains("\"he_rms\""));
  const Run h = run("--help-config");
  CHECK(h.status == 0);
  CHECK_THAT(h.output, Contains("grad_clip") && Contains("slb.values"));
}
