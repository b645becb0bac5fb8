// report: one HTML page (inline SVG, no scripts or external files) for one or more
// train_cifar output folders — curves overlaid when several are given.
//
//   report [--out DIR] RUN_DIR [RUN_DIR...]
//   report --plot KEY --svg FILE [--title TEXT] RUN_DIR [RUN_DIR...]
//
// Writes DIR/report.html (default DIR: the first run folder) and prints its path. With
// --plot, writes instead one standalone SVG of metrics.jsonl's KEY per epoch (e.g. test_acc),
// one line per run: the figures of docs/results.md.
// What each section reads: tools/report/report.hpp. Linked with every built-in method
// (lowbit/quant/quant.hpp) so each run's method section can be drawn.
#include <cstdio>
#include <lowbit/core/version.hpp>
#include <lowbit/io/atomic_write.hpp>
#include <lowbit/quant/quant.hpp>
#include <string>
#include <vector>

#include "report.hpp"

int main(int argc, char** argv) {
  const char* usage =
      "usage: report [--out DIR] RUN_DIR [RUN_DIR...]\n"
      "       report --plot KEY --svg FILE [--title TEXT] RUN_DIR [RUN_DIR...]\n"
      "       report --version\n";
  try {
    std::string out, plot, svg, title;
    std::vector<std::string> runs;
    for (int i = 1; i < argc; ++i) {
      const std::string a = argv[i];
      if (a == "--out" || a == "--plot" || a == "--svg" || a == "--title") {
        LOWBIT_CHECK(i + 1 < argc, "argument ", a, " needs a value\n", usage);
        (a == "--out" ? out : a == "--plot" ? plot : a == "--svg" ? svg : title) = argv[++i];
      } else if (a == "--help" || a == "-h") {
        std::printf("%s", usage);
        return 0;
      } else if (a == "--version") {
        std::printf("lowbit %d.%d.%d\n", LOWBIT_VERSION_MAJOR, LOWBIT_VERSION_MINOR, LOWBIT_VERSION_PATCH);
        return 0;
      } else if (a.rfind("--", 0) == 0) {
        lowbit::detail::fail("unknown argument '", a, "'\n", usage);
      } else {
        runs.push_back(a);
      }
    }
    LOWBIT_CHECK(!runs.empty(), "no run folder given\n", usage);
    LOWBIT_CHECK(plot.empty() == svg.empty(), "--plot and --svg go together (got only ",
                 plot.empty() ? "--svg" : "--plot", ")\n", usage);
    if (!plot.empty()) {
      std::vector<lowbit::report::RunRecord> recs;
      for (auto& r : runs) recs.push_back(lowbit::report::read_run(r));
      lowbit::io::write_file_atomic(svg, lowbit::report::epoch_plot_svg(recs, plot, title), "report");
      std::printf("%s\n", svg.c_str());
      return 0;
    }
    if (out.empty()) out = runs.front();
    std::printf("%s\n", lowbit::report::write_report(runs, out).c_str());
    return 0;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "report: error: %s\n", e.what());
    return 2;
  }
}
