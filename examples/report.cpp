// report: one HTML page (inline SVG, no scripts or external files) for one or more
// train_cifar output folders — curves overlaid when several are given.
//
//   report [--out DIR] RUN_DIR [RUN_DIR...]
//
// Writes DIR/report.html (default DIR: the first run folder) and prints its path.
// What each section reads: include/lowbit/io/report.hpp.
#include <cstdio>
#include <lowbit/io/report.hpp>
#include <string>
#include <vector>

int main(int argc, char** argv) {
  const char* usage = "usage: report [--out DIR] RUN_DIR [RUN_DIR...]\n";
  try {
    std::string out;
    std::vector<std::string> runs;
    for (int i = 1; i < argc; ++i) {
      const std::string a = argv[i];
      if (a == "--out") {
        LOWBIT_CHECK(i + 1 < argc, "argument --out needs a folder");
        out = argv[++i];
      } else if (a == "--help" || a == "-h") {
        std::printf("%s", usage);
        return 0;
      } else if (a.rfind("--", 0) == 0) {
        lowbit::detail::fail("unknown argument '", a, "'\n", usage);
      } else {
        runs.push_back(a);
      }
    }
    LOWBIT_CHECK(!runs.empty(), "no run folder given\n", usage);
    if (out.empty()) out = runs.front();
    std::printf("%s\n", lowbit::io::write_report(runs, out).c_str());
    return 0;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "report: error: %s\n", e.what());
    return 2;
  }
}
