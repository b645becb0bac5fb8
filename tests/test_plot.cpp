// The SVG plot writer and the HTML training report (tools/report/svg_plot.hpp, report.hpp):
// well-formed XML, the expected number of series, points, ticks, bars and markers for known
// data, and clear errors for bad input.
#include <unistd.h>

#include <catch2/catch.hpp>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <lowbit/lowbit.hpp>
#include <regex>
#include <string>
#include <vector>

#include "report/report.hpp"

using namespace lowbit;
using Catch::Matchers::Contains;
namespace fs = std::filesystem;

namespace {

// A strict XML well-formedness check (the subset our writer emits: declarations, elements,
// quoted attributes, character data with the five predefined entities and numeric ones).
// Returns "" if well formed, else what is wrong and where.
std::string xml_problem(const std::string& s) {
  std::vector<std::string> stack;
  size_t i = 0;
  bool root_seen = false;
  auto name_char = [](char c) { return std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == ':' || c == '_' || c == '.'; };
  while (i < s.size()) {
    if (s[i] == '<') {
      if (s.compare(i, 4, "<!--") == 0) {
        const size_t e = s.find("-->", i);
        if (e == std::string::npos) return "unterminated comment at " + std::to_string(i);
        i = e + 3;
      } else if (s.compare(i, 2, "<!") == 0 || s.compare(i, 2, "<?") == 0) {
        const size_t e = s.find('>', i);
        if (e == std::string::npos) return "unterminated declaration at " + std::to_string(i);
        i = e + 1;
      } else if (s.compare(i, 2, "</") == 0) {
        size_t j = i + 2;
        while (j < s.size() && name_char(s[j])) ++j;
        const std::string name = s.substr(i + 2, j - i - 2);
        if (j >= s.size() || s[j] != '>') return "bad end tag at " + std::to_string(i);
        if (stack.empty() || stack.back() != name)
          return "end tag </" + name + "> does not match <" + (stack.empty() ? "" : stack.back()) + "> at " + std::to_string(i);
        stack.pop_back();
        i = j + 1;
      } else {
        size_t j = i + 1;
        while (j < s.size() && name_char(s[j])) ++j;
        const std::string name = s.substr(i + 1, j - i - 1);
        if (name.empty()) return "empty tag name at " + std::to_string(i);
        if (stack.empty() && root_seen) return "second root element <" + name + ">";
        root_seen = true;
        // attributes: name="value" or name='value'
        while (true) {
          while (j < s.size() && std::isspace(static_cast<unsigned char>(s[j]))) ++j;
          if (j >= s.size()) return "unterminated tag <" + name + ">";
          if (s[j] == '>') {
            stack.push_back(name);
            ++j;
            break;
          }
          if (s.compare(j, 2, "/>") == 0) {
            j += 2;
            break;
          }
          size_t k = j;
          while (k < s.size() && name_char(s[k])) ++k;
          if (k == j || k >= s.size() || s[k] != '=') return "bad attribute in <" + name + "> at " + std::to_string(j);
          const char q = s[k + 1];
          if (q != '"' && q != '\'') return "unquoted attribute in <" + name + "> at " + std::to_string(k);
          const size_t e = s.find(q, k + 2);
          if (e == std::string::npos) return "unterminated attribute in <" + name + ">";
          if (s.substr(k + 2, e - k - 2).find('<') != std::string::npos) return "'<' inside an attribute of <" + name + ">";
          j = e + 1;
        }
        i = j;
      }
    } else if (s[i] == '&') {
      static const std::regex entity("&(amp|lt|gt|quot|apos|#[0-9]+);");
      std::smatch m;
      const std::string rest = s.substr(i, 10);
      if (!std::regex_search(rest, m, entity) || m.position(0) != 0) return "bare '&' at " + std::to_string(i);
      i += static_cast<size_t>(m.length(0));
    } else {
      if (!root_seen || (stack.empty() && !std::isspace(static_cast<unsigned char>(s[i]))))
        if (!std::isspace(static_cast<unsigned char>(s[i]))) return "text outside the root element at " + std::to_string(i);
      ++i;
    }
  }
  if (!stack.empty()) return "unclosed <" + stack.back() + ">";
  if (!root_seen) return "no element";
  return "";
}

size_t count(const std::string& s, const std::string& what) {
  size_t n = 0;
  for (size_t p = s.find(what); p != std::string::npos; p = s.find(what, p + 1)) ++n;
  return n;
}

// The number of "x,y" pairs in each polyline's points attribute, in order.
std::vector<size_t> polyline_points(const std::string& svg) {
  std::vector<size_t> out;
  static const std::regex pts("points=\"([^\"]*)\"");
  for (auto it = std::sregex_iterator(svg.begin(), svg.end(), pts); it != std::sregex_iterator(); ++it) {
    const std::string p = (*it)[1];
    out.push_back(p.empty() ? 0 : count(p, ",") );
  }
  return out;
}

std::vector<double> rect_heights(const std::string& svg) {
  std::vector<double> out;
  static const std::regex bar("<rect class=\"bar\"[^>]*height=\"([0-9.]+)\"");
  for (auto it = std::sregex_iterator(svg.begin(), svg.end(), bar); it != std::sregex_iterator(); ++it)
    out.push_back(std::stod((*it)[1]));
  return out;
}

}  // namespace

TEST_CASE("plot: the XML checker rejects what a parser rejects", "[plot]") {
  CHECK(xml_problem("<a><b x=\"1\"/>t &amp; u</a>").empty());
  CHECK_THAT(xml_problem("<a><b></a>"), Contains("does not match"));
  CHECK_THAT(xml_problem("<a x=1/>"), Contains("unquoted"));
  CHECK_THAT(xml_problem("<a>x & y</a>"), Contains("bare '&'"));
  CHECK_THAT(xml_problem("<a>"), Contains("unclosed"));
}

TEST_CASE("plot: nice_ticks are 1-2-5 steps that cover the range", "[plot]") {
  auto near = [](const std::vector<double>& a, const std::vector<double>& b) {
    if (a.size() != b.size()) return false;
    for (size_t i = 0; i < a.size(); ++i)
      if (std::abs(a[i] - b[i]) > 1e-9 * std::max(1.0, std::abs(b[i]))) return false;
    return true;
  };
  CHECK(near(report::nice_ticks(0, 1, 6), {0, 0.2, 0.4, 0.6, 0.8, 1.0}));
  CHECK(near(report::nice_ticks(0, 97, 6), {0, 20, 40, 60, 80, 100}));
  CHECK(near(report::nice_ticks(-1, 1, 5), {-1, -0.5, 0, 0.5, 1}));
  CHECK(near(report::nice_ticks(1, 40, 6), {0, 10, 20, 30, 40}));
  CHECK(report::nice_ticks(3, 3).size() >= 2);  // a single value still gets an axis
  CHECK_THROWS_WITH(report::nice_ticks(1, 0), Contains("[1, 0]") && Contains("not a finite interval"));
}

TEST_CASE("plot: a line plot of known data has its series, points, ticks and legend", "[plot]") {
  report::LinePlot p;
  p.title = "loss & accuracy <test>";
  p.xlabel = "epoch";
  p.ylabel = "loss";
  p.series.push_back({"train", {1, 2, 3, 4, 5}, {2.0, 1.5, 1.2, 1.0, 0.9}});
  p.series.push_back({"test \"A\"", {1, 2, 3}, {2.1, 1.7, std::nan("")}});  // NaN skipped
  const std::string svg = report::svg_line_plot(p);
  INFO(svg);
  CHECK(xml_problem(svg).empty());
  CHECK(count(svg, "<g class=\"series\"") == 2);
  CHECK(polyline_points(svg) == std::vector<size_t>{5, 2});
  CHECK(count(svg, "<g class=\"tick x\"") == report::nice_ticks(1, 5).size());
  CHECK(count(svg, "<g class=\"tick y\"") == report::nice_ticks(0.9, 2.1).size());
  CHECK(count(svg, "<g class=\"legend\"") == 2);
  CHECK_THAT(svg, Contains("loss &amp; accuracy &lt;test&gt;") && Contains("data-label=\"test &quot;A&quot;\""));
  // The first series falls from left to right: its first point is higher on screen (smaller y).
  const std::smatch m = [&] {
    std::smatch r;
    std::regex_search(svg, r, std::regex("points=\"([0-9.]+),([0-9.]+) .* ([0-9.]+),([0-9.]+)\""));
    return r;
  }();
  REQUIRE(m.size() == 5);
  CHECK(std::stod(m[1]) < std::stod(m[3]));
  CHECK(std::stod(m[2]) < std::stod(m[4]));

  report::LinePlot bad;
  bad.title = "bad";
  bad.series.push_back({"s", {1, 2}, {1}});
  CHECK_THROWS_WITH(report::svg_line_plot(bad), Contains("series 's' has 2 x values and 1 y values"));
  // A log axis has a tick per decade, labelled with the power of ten.
  const std::string logsvg = report::svg_line_plot({"tau", "epoch", "tau", {{"tau", {1, 2, 3}, {10, 0.8, 0.02}}}, true, 300, 200});
  CHECK(xml_problem(logsvg).empty());
  CHECK(count(logsvg, "<g class=\"tick y\"") == 4);  // 0.01, 0.1, 1, 10
  CHECK_THAT(logsvg, Contains(">0.01</text>") && Contains(">10</text>") && !Contains(">3</text>"));
  report::LinePlot logp{"t", "x", "y", {{"tau", {1, 2}, {0.5, -1}}}, true, 300, 200};
  CHECK_THROWS_WITH(report::svg_line_plot(logp), Contains("log y axis needs y > 0"));
}

TEST_CASE("plot: a histogram counts into its bins and draws its markers", "[plot]") {
  report::Histogram h;
  h.title = "weights";
  h.values = {0.1, 0.2, 1.5, 3.9, 3.95, 3.99, 7.0};  // 7.0 is outside [0, 4]: not counted
  h.bins = 4;
  h.lo = 0;
  h.hi = 4;
  h.markers = {{-1, "levels", ""}, {1, "levels", ""}, {2, "alpha", ""}};
  const std::string svg = report::svg_histogram(h);
  CHECK(xml_problem(svg).empty());
  const std::vector<double> heights = rect_heights(svg);
  REQUIRE(heights.size() == 4);
  // counts 2, 1, 0, 3: heights in that proportion
  CHECK(heights[2] == Approx(0).margin(1e-9));
  CHECK(heights[0] == Approx(2 * heights[1]).epsilon(0.02));
  CHECK(heights[3] == Approx(3 * heights[1]).epsilon(0.02));
  CHECK(count(svg, "<line class=\"marker\"") == 3);
  CHECK(count(svg, "<g class=\"legend\"") == 2);  // markers sharing a label share an entry
  report::Histogram bad;
  bad.bins = 0;
  CHECK_THROWS_WITH(report::svg_histogram(bad), Contains("bins = 0"));
}

TEST_CASE("plot: a bar chart has one bar and label per value", "[plot]") {
  report::BarChart c{"bits per layer", "layer", "bits", {"conv1", "layer1.0.conv1", "fc"}, {8, 2, 32}, 400, 240};
  const std::string svg = report::svg_bar_chart(c);
  CHECK(xml_problem(svg).empty());
  const std::vector<double> heights = rect_heights(svg);
  REQUIRE(heights.size() == 3);
  CHECK(heights[0] == Approx(4 * heights[1]).epsilon(0.01));
  CHECK(heights[2] == Approx(16 * heights[1]).epsilon(0.01));
  CHECK(count(svg, "class=\"barlabel\"") == 3);
  c.values.pop_back();
  CHECK_THROWS_WITH(report::svg_bar_chart(c), Contains("3 labels and 2 values"));
}

namespace {
fs::path temp_run(const std::string& name) {
  const fs::path d = fs::temp_directory_path() / ("lowbit_report_" + std::to_string(::getpid()) + "_" + name);
  fs::remove_all(d);
  fs::create_directories(d);
  return d;
}
}  // namespace

TEST_CASE("report: an SLB-like run with layers and a weight histogram gets every section", "[plot][report]") {
  const fs::path d = temp_run("slb");
  {
    std::ofstream m(d / "metrics.jsonl");
    for (int e = 1; e <= 3; ++e)
      m << nlohmann::json{{"epoch", e}, {"train_loss", 2.0 / e}, {"train_acc", 0.2 * e}, {"test_loss", 2.1 / e},
                          {"test_acc", 0.19 * e}, {"lr", 0.1 / e}, {"tau", 1.0 / (10 * e)}, {"mean_max_p", 0.5 + 0.1 * e},
                          {"frac_max_p_gt_0999", 0.1 * e}, {"gap_rel", 0.3 / e}}
               .dump()
        << '\n';
    nlohmann::json layers = nlohmann::json::array();
    layers.push_back({{"name", "conv1"}, {"type", "Conv2d"}, {"quantizer", "-"}, {"act_quantizer", ""}, {"w_bits", 32},
                      {"a_bits", 32}, {"weight_params", 432}, {"params", 432}, {"storage_bits", 13824}, {"macs", 442368}});
    layers.push_back({{"name", "layer1.0.conv1"}, {"type", "QConv2d"}, {"quantizer", "SLB"}, {"act_quantizer", "DoReFa"},
                      {"w_bits", 2}, {"a_bits", 2}, {"weight_params", 2304}, {"params", 9216}, {"storage_bits", 4608},
                      {"macs", 2359296}, {"avg_bits", 1.5}});
    std::ofstream(d / "summary.json") << nlohmann::json{{"model", "resnet20"}, {"method", "slb"}, {"w_bits", 2},
                                                        {"a_bits", 2}, {"epochs", 3}, {"final_test_acc", 0.57},
                                                        {"best_test_acc", 0.57}, {"wall_s", 12.5}, {"images_per_s", 400.0},
                                                        {"model_bytes", 82152}, {"avg_weight_bits", 2.1198},
                                                        {"layers", layers},
                                                        {"config", {{"model", "resnet20"}, {"lr", 0.1}, {"method", "slb"},
                                                                    {"slb", {{"t_end", 10}}}}}};
    std::ofstream(d / "weight_hist.json") << nlohmann::json{
        {"layers", {{{"name", "layer1.0.conv1"}, {"values", {-0.9, -0.1, 0.0, 0.2, 0.8}}, {"levels", {-1, 0, 1}}, {"alpha", 0.9}}}}};
  }
  const std::string html = report::report_html({report::read_run(d.string())});
  CHECK(xml_problem(html).empty());
  for (const char* id : {"id=\"result\"", "id=\"curves\"", "id=\"method-slb\"", "id=\"weights\"", "id=\"layers\"", "id=\"config\""})
    CHECK_THAT(html, Contains(id));
  CHECK_THAT(html, !Contains("Sections left out"));
  CHECK(count(html, "<svg ") == 3 + 3 + 1 + 2);  // curves, SLB, one histogram, two bar charts
  CHECK_THAT(html, Contains("57.00%") && Contains("layer1.0.conv1"));
  // Config rows: the method's block shows as "method.key" rows.
  CHECK_THAT(html, Contains("<td>slb.t_end</td>"));
  // ALQ's fractional bits per layer (avg_bits) win over the nominal w_bits in the table.
  CHECK_THAT(html, Contains("<td class=\"num\">1.5</td>"));

  // Two runs overlay: the loss plot holds train and test of each.
  const fs::path d2 = temp_run("slb2");
  fs::copy_file(d / "metrics.jsonl", d2 / "metrics.jsonl");
  const std::string two = report::report_html({report::read_run(d.string()), report::read_run(d2.string())});
  CHECK(xml_problem(two).empty());
  CHECK_THAT(two, Contains("data-label=\"lowbit_report_" + std::to_string(::getpid()) + "_slb2 test\""));
  CHECK_THAT(two, Contains("(running)"));  // d2 has no summary.json yet
  const std::string path = report::write_report({d.string(), d2.string()}, d2.string());
  CHECK(fs::exists(path));
  CHECK(!fs::exists(path + ".tmp"));
  fs::remove_all(d);
  fs::remove_all(d2);
}

TEST_CASE("report: the loss plot is on a log axis; an ALQ run's lr plot shows the AMSGrad lr it trained with", "[plot][report]") {
  const fs::path d = temp_run("fp32"), a = temp_run("alq");
  {
    std::ofstream m(d / "metrics.jsonl"), q(a / "metrics.jsonl");
    for (int e = 1; e <= 3; ++e) {
      m << nlohmann::json{{"epoch", e}, {"train_loss", 2.0 / e}, {"test_loss", 2.1 / e}, {"lr", 0.1 / e}}.dump() << '\n';
      q << nlohmann::json{{"epoch", e}, {"train_loss", 1.0 / e}, {"test_loss", 1.1 / e}, {"lr", 0.1},
                          {"alq_lr", 1e-3 * std::pow(0.8, e)}}.dump() << '\n';
    }
  }
  std::ofstream(a / "config.json") << nlohmann::json{{"method", "alq"}}.dump();  // in progress: no summary.json yet
  const std::vector<report::RunRecord> runs = {report::read_run(d.string()), report::read_run(a.string())};
  const report::LinePlot loss = report::detail::loss_plot(runs);
  CHECK(loss.log_y);
  CHECK(loss.series.size() == 4);  // train and test of each run
  const report::LinePlot lr = report::detail::lr_plot(runs);
  REQUIRE(lr.series.size() == 2);
  CHECK(lr.series[0].y == std::vector<double>{0.1, 0.05, 0.1 / 3});
  CHECK_THAT(lr.series[1].label, Contains("_alq (alq_lr)"));
  CHECK(lr.series[1].color == 1);
  REQUIRE(lr.series[1].y.size() == 3);
  CHECK(lr.series[1].y[2] == Approx(1e-3 * 0.512));
  // A loss of exactly 0 cannot go on a log axis: the plot stays linear instead of failing.
  std::ofstream(d / "metrics.jsonl", std::ios::app) << nlohmann::json{{"epoch", 4}, {"train_loss", 0.0}}.dump() << '\n';
  CHECK(!report::detail::loss_plot({report::read_run(d.string())}).log_y);
  CHECK(xml_problem(report::report_html({report::read_run(d.string()), report::read_run(a.string())})).empty());
  fs::remove_all(d);
  fs::remove_all(a);
}

TEST_CASE("report: bad folders and files give errors naming them", "[plot][report][errors]") {
  const fs::path d = temp_run("bad");
  CHECK_THROWS_WITH(report::read_run((d / "nope").string()), Contains("nope") && Contains("is not a folder"));
  CHECK_THROWS_WITH(report::read_run(d.string()), Contains("metrics.jsonl") && Contains("is missing"));
  std::ofstream(d / "metrics.jsonl") << "{\"epoch\": 1}\n{not json\n";
  CHECK_THROWS_WITH(report::read_run(d.string()), Contains("metrics.jsonl' line 2 is not JSON"));
  std::ofstream(d / "metrics.jsonl", std::ios::trunc) << "{\"epoch\": 1}\n";
  std::ofstream(d / "summary.json") << "{";
  CHECK_THROWS_WITH(report::read_run(d.string()), Contains("summary.json' is not valid JSON"));
  CHECK_THROWS_WITH(report::report_html({}), Contains("no run folders"));
  fs::remove_all(d);
}

TEST_CASE("report: files of another layout are refused with one line naming the file, place and key",
          "[plot][report][errors]") {
  // Issue 34 item 6: these reached the user as nlohmann's "type_error.302" (or drew nothing).
  const fs::path d = temp_run("layout");
  auto refused = [&](const std::string& file, const std::string& text, const std::string& what) {
    std::ofstream(d / "metrics.jsonl", std::ios::trunc) << "{\"epoch\": 1, \"test_acc\": 0.5}\n";
    fs::remove(d / "summary.json"), fs::remove(d / "weight_hist.json");
    std::ofstream(d / file, std::ios::app) << text << "\n";
    CHECK_THROWS_WITH(report::read_run(d.string()), Contains("report: '" + (d / file).string() + "'") && Contains(what) &&
                                                        !Contains("json.exception") && !Contains("\n"));
  };
  refused("metrics.jsonl", "[1, 2]", "record 2: [1,2], expected a JSON object per line");
  refused("metrics.jsonl", "{\"epoch\": \"x\"}", "record 2: 'epoch' is \"x\", expected a number");
  refused("summary.json", "\"done\"", "\"done\", expected a JSON object");
  refused("summary.json", "{\"layers\": {}}", "'layers' is {}, expected an array of layer records");
  refused("summary.json", "{\"layers\": [{\"name\": 5}]}", "layers[0]: 'name' is 5, expected a string");
  refused("summary.json",
          "{\"layers\": [{\"name\": \"c\", \"type\": \"Conv2d\", \"quantizer\": \"-\", \"w_bits\": \"32\"}]}",
          "layers[0]: 'w_bits' is \"32\", expected a number");
  refused("weight_hist.json", "{\"layers\": [{\"values\": [1, \"a\"]}]}",
          "layers[0]: 'values' is [1,\"a\"], expected an array of numbers");
  refused("weight_hist.json", "{\"layers\": [{\"values\": [1], \"alpha\": [1]}]}", "'alpha' is [1], expected a number");
  // An output folder that cannot be made names --out (was std::filesystem's text alone).
  std::ofstream(d / "metrics.jsonl", std::ios::trunc) << "{\"epoch\": 1, \"test_acc\": 0.5}\n";
  fs::remove(d / "summary.json"), fs::remove(d / "weight_hist.json");
  std::ofstream(d / "file") << "x";
  CHECK_THROWS_WITH(report::write_report({d.string()}, (d / "file" / "sub").string()),
                    Contains("cannot create the output folder '" + (d / "file" / "sub").string() + "' (--out)"));
  fs::remove_all(d);
}

TEST_CASE("report: epoch_plot_svg draws one line per run of a metrics key, in % for accuracies", "[plot][report]") {
  std::vector<report::RunRecord> runs;
  for (int r = 0; r < 2; ++r) {
    const fs::path d = temp_run("plot" + std::to_string(r));
    std::ofstream m(d / "metrics.jsonl");
    for (int e = 1; e <= 4 + r; ++e) m << nlohmann::json{{"epoch", e}, {"test_acc", 0.1 * e + 0.05 * r}}.dump() << '\n';
    m.close();
    runs.push_back(report::read_run(d.string()));
  }
  const std::string svg = report::epoch_plot_svg(runs, "test_acc", "SLB rows");
  CHECK(xml_problem(svg).empty());
  CHECK(polyline_points(svg) == std::vector<size_t>{4, 5});
  CHECK_THAT(svg, Contains("SLB rows") && Contains("test_acc (%)") && Contains("_plot0<") && Contains("_plot1<"));
  CHECK_THAT(svg, Contains(">50<"));  // 0.55 at the top: the y ticks are in %
  try {
    report::epoch_plot_svg(runs, "tau", "");
    FAIL("expected an error");
  } catch (const std::exception& e) {
    CHECK_THAT(e.what(), Contains("no run has the metrics key 'tau'"));
  }
}
