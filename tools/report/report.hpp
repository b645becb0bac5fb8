// The training report: one self-contained HTML page (inline SVG from svg_plot.hpp, inline
// CSS, no scripts, no external files) for one or more train_cifar output folders. It is
// well-formed XML (XHTML), so any XML parser can read it back.
//
// What it reads from each folder (all written by examples/train_cifar.cpp):
//   metrics.jsonl      one object per epoch: train_loss, train_acc, test_loss, test_acc, lr,
//                      plus the method's own keys          -> curves, the method's section
//                      (the curves a method asks for: Method::report_plots, quant/method.hpp)
//   summary.json       the result and config, and "layers" (the summary() rows)
//                                                                     -> tables, bits per layer
//   config.json        the resolved config, written when the run starts (summary.json has it too)
//   weight_hist.json   optional: {"layers": [{"name", "values", "levels", "alpha"}]}: the
//                      normalized weights of chosen layers with the quantizer's levels
//                      (WeightQuantizer::histogram)       -> weight histograms
// A folder of a run still in progress (no summary.json yet) gets its curves and config from
// metrics.jsonl and checkpoint-free defaults; sections without data are left out, and the
// page says which.
#pragma once
#include <algorithm>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <vector>

#include <lowbit/core/error.hpp>
#include <lowbit/io/atomic_write.hpp>
#include <lowbit/quant/registry.hpp>

#include "svg_plot.hpp"

namespace lowbit {
namespace report {

struct RunRecord {
  std::string dir, name;            // folder and the label used in legends (folder name)
  std::vector<nlohmann::json> epochs;  // metrics.jsonl lines
  nlohmann::json summary;           // summary.json, or null while the run is in progress
  nlohmann::json weight_hist;       // weight_hist.json, or null
  nlohmann::json config;            // the resolved config (summary.json's or config.json), or null
};

// The layout the page reads from a run's files (what train_cifar writes): anything else is one
// line naming the file, the place, the key and what was expected (never a JSON library error).
inline void check_run_layout(const RunRecord& r, const std::string& dir) {
  namespace fs = std::filesystem;
  auto need = [&](bool ok, const char* file, const std::string& where, const std::string& key, const char* expected,
                  const nlohmann::json& got) {
    if (ok) return;
    const std::string g = got.dump();
    lowbit::detail::fail("report: '", (fs::path(dir) / file).string(), "'", where, ": ", key.empty() ? "" : "'" + key + "' is ",
                         g.size() > 60 ? g.substr(0, 60) + "..." : g, ", expected ", expected);
  };
  auto numbers = [](const nlohmann::json& v) {
    if (!v.is_array()) return false;
    for (const auto& x : v)
      if (!x.is_number()) return false;
    return true;
  };
  // doc's "layers" array, if any: each entry an object, checked by fn(entry, " layers[i]").
  auto each_layer = [&](const nlohmann::json& doc, const char* file, const char* expected, auto fn) {
    if (!doc.contains("layers")) return;
    const nlohmann::json& layers = doc.at("layers");
    need(layers.is_array(), file, "", "layers", expected, layers);
    for (size_t i = 0; i < layers.size(); ++i) {
      const std::string where = " layers[" + std::to_string(i) + "]";
      need(layers[i].is_object(), file, where, "", "an object", layers[i]);
      fn(layers[i], where);
    }
  };
  for (size_t n = 0; n < r.epochs.size(); ++n) {
    const nlohmann::json& e = r.epochs[n];
    const std::string where = " record " + std::to_string(n + 1);
    need(e.is_object(), "metrics.jsonl", where, "", "a JSON object per line", e);
    if (e.contains("epoch")) need(e.at("epoch").is_number(), "metrics.jsonl", where, "epoch", "a number", e.at("epoch"));
  }
  if (!r.summary.is_null()) {
    need(r.summary.is_object(), "summary.json", "", "", "a JSON object", r.summary);
    each_layer(r.summary, "summary.json", "an array of layer records", [&](const nlohmann::json& l, const std::string& where) {
      for (const char* k : {"name", "type", "quantizer"})
        need(l.contains(k) && l.at(k).is_string(), "summary.json", where, k, "a string", l.value(k, nlohmann::json()));
      if (l.contains("act_quantizer"))
        need(l.at("act_quantizer").is_string(), "summary.json", where, "act_quantizer", "a string", l.at("act_quantizer"));
      const char* bits = l.contains("avg_bits") ? "avg_bits" : "w_bits";
      need(l.contains(bits) && l.at(bits).is_number(), "summary.json", where, bits, "a number", l.value(bits, nlohmann::json()));
      need(l.contains("weight_params") && l.at("weight_params").is_number(), "summary.json", where, "weight_params",
           "a number", l.value("weight_params", nlohmann::json()));
      for (const char* k : {"a_bits", "params", "storage_bits", "macs"})  // printed as they are
        need(l.contains(k) && (l.at(k).is_number() || l.at(k).is_null()), "summary.json", where, k, "a number or null",
             l.value(k, nlohmann::json()));
    });
  }
  if (!r.weight_hist.is_null()) {
    need(r.weight_hist.is_object(), "weight_hist.json", "", "", "a JSON object", r.weight_hist);
    auto histogram = [&](const nlohmann::json& l, const std::string& where) {
      need(l.contains("values") && numbers(l.at("values")), "weight_hist.json", where, "values", "an array of numbers",
           l.value("values", nlohmann::json()));
      if (l.contains("levels")) need(numbers(l.at("levels")), "weight_hist.json", where, "levels", "an array of numbers", l.at("levels"));
      if (l.contains("alpha")) need(l.at("alpha").is_number(), "weight_hist.json", where, "alpha", "a number", l.at("alpha"));
      for (const char* k : {"name", "xlabel"})
        if (l.contains(k)) need(l.at(k).is_string(), "weight_hist.json", where, k, "a string", l.at(k));
    };
    each_layer(r.weight_hist, "weight_hist.json", "an array of layer histograms", histogram);
  }
}

// Reads one trainer output folder; errors name the folder, file and line.
inline RunRecord read_run(const std::string& dir) {
  namespace fs = std::filesystem;
  LOWBIT_CHECK(fs::is_directory(dir), "report: '", dir, "' is not a folder (expected a train_cifar output folder)");
  RunRecord r;
  r.dir = dir;
  r.name = fs::path(dir).lexically_normal().filename().string();
  if (r.name.empty() || r.name == ".") r.name = fs::path(dir).lexically_normal().parent_path().filename().string();
  const fs::path metrics = fs::path(dir) / "metrics.jsonl";
  std::ifstream in(metrics);
  LOWBIT_CHECK(in.good(), "report: '", metrics.string(), "' is missing (expected a train_cifar output folder)");
  std::string line;
  for (int n = 1; std::getline(in, line); ++n) {
    if (line.empty()) continue;
    try {
      r.epochs.push_back(nlohmann::json::parse(line));
    } catch (const nlohmann::json::exception& e) {
      lowbit::detail::fail("report: '", metrics.string(), "' line ", n, " is not JSON: ", e.what());
    }
  }
  auto read_json = [&](const char* file) -> nlohmann::json {
    const fs::path p = fs::path(dir) / file;
    if (!fs::exists(p)) return nullptr;
    std::ifstream f(p);
    try {
      return nlohmann::json::parse(f);
    } catch (const nlohmann::json::exception& e) {
      lowbit::detail::fail("report: '", p.string(), "' is not valid JSON: ", e.what());
    }
  };
  r.summary = read_json("summary.json");
  // The run's resolved config: from summary.json, or from config.json while the run is in progress.
  r.config = r.summary.is_object() && r.summary.contains("config") ? r.summary.at("config") : read_json("config.json");
  r.weight_hist = read_json("weight_hist.json");
  check_run_layout(r, dir);
  return r;
}

namespace detail {

// One series per run of metrics key `key` against epoch; runs without the key are skipped.
// Each run keeps its colour across plots; `dashed` marks test curves beside train curves.
inline std::vector<PlotSeries> epoch_series(const std::vector<RunRecord>& runs, const std::string& key,
                                            const std::string& suffix, double scale = 1.0, bool dashed = false) {
  std::vector<PlotSeries> out;
  for (size_t i = 0; i < runs.size(); ++i) {
    const RunRecord& r = runs[i];
    PlotSeries s;
    s.label = r.name + suffix;
    s.color = static_cast<int>(i);
    s.dashed = dashed;
    for (auto& e : r.epochs)
      if (e.contains(key) && e.at(key).is_number() && e.contains("epoch")) {
        s.x.push_back(e.at("epoch").get<double>());
        s.y.push_back(e.at(key).get<double>() * scale);
      }
    if (!s.x.empty()) out.push_back(std::move(s));
  }
  return out;
}

// Train (solid) and test (dashed) loss of every run, on a log axis when every value is
// > 0: on a linear axis epoch 1's ~2.3 sets the scale and flattens the last epochs, where
// runs differ (0.46 against 0.48).
inline LinePlot loss_plot(const std::vector<RunRecord>& runs) {
  LinePlot p{"Loss", "epoch", "cross-entropy", epoch_series(runs, "train_loss", " train"), false, 560, 320};
  for (auto& s : epoch_series(runs, "test_loss", " test", 1.0, true)) p.series.push_back(s);
  p.log_y = !p.series.empty();
  for (auto& s : p.series)
    for (double y : s.y) p.log_y = p.log_y && y > 0;
  if (p.log_y) p.ylabel = "cross-entropy (log scale)";
  return p;
}

// The run's method as its summary.json or config names it ("" when unknown or not registered).
inline std::string run_method(const RunRecord& r) {
  if (!r.config.is_object()) return "";
  const nlohmann::json& j = r.config.contains("method") ? r.config.at("method") : nlohmann::json();
  return j.is_string() && quant::has_method(j.get<std::string>()) ? j.get<std::string>() : "";
}

// The learning rate that moved each run's weights: "lr" (the trainer's schedule), or the key
// the run's method names (Method::lr_metric: ALQ's AMSGrad ignores the schedule).
inline LinePlot lr_plot(const std::vector<RunRecord>& runs) {
  LinePlot p{"Learning rate", "epoch", "lr (at epoch end)", {}, false, 560, 320};
  for (size_t i = 0; i < runs.size(); ++i) {
    const std::string m = run_method(runs[i]);
    const std::string key = m.empty() ? "lr" : quant::find_method(m).lr_metric();
    for (auto& s : epoch_series({runs[i]}, key, key == "lr" ? "" : " (" + key + ")")) {
      s.color = static_cast<int>(i);
      p.series.push_back(s);
    }
  }
  return p;
}

inline std::string fmt_value(const nlohmann::json& v) {
  if (v.is_string()) return v.get<std::string>();
  if (v.is_number_float()) {
    char b[32];
    std::snprintf(b, sizeof b, "%.6g", v.get<double>());
    return b;
  }
  return v.dump();
}

inline const char* kReportCss =
    "body{font-family:sans-serif;max-width:1180px;margin:24px auto;padding:0 16px;color:#222}"
    "h1{font-size:22px}h2{font-size:18px;border-bottom:1px solid #ccc;padding-bottom:4px;margin-top:32px}"
    "table{border-collapse:collapse;font-size:13px;margin:8px 0}td,th{border:1px solid #ddd;padding:3px 8px;text-align:left}"
    "th{background:#f3f3f3}td.num{text-align:right;font-variant-numeric:tabular-nums}"
    ".plots{display:flex;flex-wrap:wrap;gap:12px}.note{color:#666;font-size:13px}";

}  // namespace detail

// The report's HTML for these runs.
inline std::string report_html(const std::vector<RunRecord>& runs) {
  LOWBIT_CHECK(!runs.empty(), "report: no run folders given");
  using nlohmann::json;
  std::ostringstream os;
  std::vector<std::string> absent;
  os << "<!DOCTYPE html>\n<html xmlns=\"http://www.w3.org/1999/xhtml\" lang=\"en\">\n<head><meta charset=\"utf-8\"/>"
     << "<title>lowbit training report</title><style>" << detail::kReportCss << "</style></head>\n<body>\n";
  os << "<h1>lowbit training report</h1>\n<p class=\"note\">runs: ";
  for (size_t i = 0; i < runs.size(); ++i) os << (i ? ", " : "") << "<code>" << xml_escape(runs[i].dir) << "</code>";
  os << "</p>\n";

  // Result: one row per run.
  os << "<h2 id=\"result\">Result</h2>\n<table><tr><th>run</th><th>model</th><th>method</th><th>W/A bits</th>"
     << "<th>epochs</th><th>final test acc</th><th>best test acc (chosen on test)</th>"
     << "<th>test acc at best val (epoch)</th><th>wall s</th><th>images/s</th>"
     << "<th>model bytes</th><th>avg weight bits</th></tr>\n";
  for (auto& r : runs) {
    const json& s = r.summary;
    auto get = [&](const char* k) { return s.is_object() && s.contains(k) ? detail::fmt_value(s.at(k)) : "-"; };
    auto pct = [&](const char* k) {
      if (!s.is_object() || !s.contains(k) || !s.at(k).is_number()) return std::string("-");
      char b[32];
      std::snprintf(b, sizeof b, "%.2f%%", 100 * s.at(k).get<double>());
      return std::string(b);
    };
    os << "<tr><td>" << xml_escape(r.name) << "</td><td>" << xml_escape(get("model")) << "</td><td>"
       << xml_escape(get("method")) << "</td><td>" << get("w_bits") << "/" << get("a_bits") << "</td><td class=\"num\">"
       << (s.is_object() ? get("epochs") : std::to_string(r.epochs.size()) + " (running)") << "</td><td class=\"num\">"
       << pct("final_test_acc") << "</td><td class=\"num\">" << pct("best_test_acc") << "</td><td class=\"num\">"
       << pct("test_acc_at_best_val")
       << (s.is_object() && s.contains("best_val_epoch") && s.at("best_val_epoch").is_number() ? " (" + get("best_val_epoch") + ")" : "")
       << "</td><td class=\"num\">"
       << get("wall_s") << "</td><td class=\"num\">" << get("images_per_s") << "</td><td class=\"num\">"
       << get("model_bytes") << "</td><td class=\"num\">" << get("avg_weight_bits") << "</td></tr>\n";
  }
  os << "</table>\n";

  // Curves.
  os << "<h2 id=\"curves\">Loss and accuracy per epoch</h2>\n<div class=\"plots\">\n";
  {
    LinePlot acc{"Accuracy", "epoch", "accuracy (%)", {}, false, 560, 320};
    for (auto& s : detail::epoch_series(runs, "train_acc", " train", 100)) acc.series.push_back(s);
    for (auto& s : detail::epoch_series(runs, "test_acc", " test", 100, true)) acc.series.push_back(s);
    for (auto& s : detail::epoch_series(runs, "val_acc", " validation", 100, true)) acc.series.push_back(s);
    os << svg_line_plot(detail::loss_plot(runs)) << svg_line_plot(acc) << svg_line_plot(detail::lr_plot(runs));
  }
  os << "</div>\n";

  // Each method's own curves (Method::report_plots), for the methods of the shown runs.
  std::vector<std::string> shown;
  for (auto& r : runs)
    if (const std::string m = detail::run_method(r); !m.empty() && std::find(shown.begin(), shown.end(), m) == shown.end())
      shown.push_back(m);
  for (auto& m : shown) {
    const std::vector<quant::ReportPlot> plots = quant::find_method(m).report_plots();
    if (plots.empty()) continue;
    std::string section;
    for (auto& rp : plots) {
      std::vector<PlotSeries> series;
      for (size_t k = 0; k < rp.keys.size(); ++k)
        for (auto& s : detail::epoch_series(runs, rp.keys[k], rp.keys.size() > 1 ? " " + rp.keys[k] : "", 1.0, k > 0))
          series.push_back(s);
      if (!series.empty()) section += svg_line_plot({rp.title, "epoch", rp.ylabel, series, rp.log_y, 560, 320});
    }
    if (section.empty()) absent.push_back("method " + m + " (its metrics are not in metrics.jsonl)");
    else os << "<h2 id=\"method-" << xml_escape(m) << "\">Method " << xml_escape(m) << "</h2>\n<div class=\"plots\">\n"
            << section << "</div>\n";
  }

  // Weight histograms with the quantizer's levels (APoT Figs. 1-2).
  bool any_hist = false;
  for (auto& r : runs) {
    if (!r.weight_hist.is_object() || !r.weight_hist.contains("layers")) continue;
    if (!any_hist) os << "<h2 id=\"weights\">Weights and quantization levels</h2>\n<div class=\"plots\">\n";
    any_hist = true;
    for (auto& l : r.weight_hist.at("layers")) {
      Histogram h;
      h.title = r.name + ": " + l.value("name", std::string("layer"));
      h.xlabel = l.value("xlabel", std::string("normalized weight"));
      h.values = l.at("values").get<std::vector<double>>();
      for (double v : l.value("levels", std::vector<double>{})) h.markers.push_back({v, "levels", "#D55E00"});
      if (l.contains("alpha")) {
        const double a = l.at("alpha").get<double>();
        h.markers.push_back({-a, "learned alpha", "#009E73"});
        h.markers.push_back({a, "learned alpha", "#009E73"});
      }
      os << svg_histogram(h);
    }
  }
  if (any_hist) os << "</div>\n";
  else absent.push_back("weight histograms (no weight_hist.json)");

  // Bits and weights per layer (ALQ Fig. 2; useful for every quantized run).
  bool any_layers = false;
  for (auto& r : runs) {
    if (!r.summary.is_object() || !r.summary.contains("layers") || r.summary.at("layers").empty()) continue;
    if (!any_layers) os << "<h2 id=\"layers\">Bits and weights per layer</h2>\n";
    any_layers = true;
    BarChart bits{r.name + ": average weight bits per layer", "layer", "bits", {}, {}, 560, 320};
    BarChart count{r.name + ": weights per layer", "layer", "weights", {}, {}, 560, 320};
    for (auto& l : r.summary.at("layers")) {
      bits.labels.push_back(l.at("name").get<std::string>());
      bits.values.push_back(l.contains("avg_bits") ? l.at("avg_bits").get<double>() : l.at("w_bits").get<double>());
      count.labels.push_back(l.at("name").get<std::string>());
      count.values.push_back(l.at("weight_params").get<double>());
    }
    os << "<div class=\"plots\">\n" << svg_bar_chart(bits) << svg_bar_chart(count) << "</div>\n";
    os << "<table><tr><th>layer</th><th>type</th><th>quantizer</th><th>W bits</th><th>A bits</th><th>weights</th>"
       << "<th>params</th><th>storage bits</th><th>MACs</th></tr>\n";
    for (auto& l : r.summary.at("layers")) {
      os << "<tr><td>" << xml_escape(l.at("name").get<std::string>()) << "</td><td>" << xml_escape(l.at("type").get<std::string>())
         << "</td><td>" << xml_escape(l.at("quantizer").get<std::string>())
         << (l.value("act_quantizer", std::string()).empty() ? "" : " / " + xml_escape(l.at("act_quantizer").get<std::string>()))
         << "</td><td class=\"num\">" << detail::fmt_value(l.contains("avg_bits") ? l.at("avg_bits") : l.at("w_bits"))
         << "</td><td class=\"num\">" << l.at("a_bits").dump() << "</td><td class=\"num\">" << l.at("weight_params").dump()
         << "</td><td class=\"num\">" << l.at("params").dump() << "</td><td class=\"num\">" << l.at("storage_bits").dump()
         << "</td><td class=\"num\">" << l.at("macs").dump() << "</td></tr>\n";
    }
    os << "</table>\n";
  }
  if (!any_layers) absent.push_back("per-layer table (no summary.json yet)");

  // Config: one column per run, a row per key.
  os << "<h2 id=\"config\">Config</h2>\n<table><tr><th>key</th>";
  for (auto& r : runs) os << "<th>" << xml_escape(r.name) << "</th>";
  os << "</tr>\n";
  // The resolved config holds only the run's own method block; its options show as
  // "method.key" rows.
  auto flat = [](const nlohmann::json& cfg) {
    std::vector<std::pair<std::string, nlohmann::json>> rows;
    for (auto it = cfg.begin(); it != cfg.end(); ++it) {
      if (it.value().is_object())
        for (auto o = it.value().begin(); o != it.value().end(); ++o) rows.emplace_back(it.key() + "." + o.key(), o.value());
      else
        rows.emplace_back(it.key(), it.value());
    }
    return rows;
  };
  std::vector<std::vector<std::pair<std::string, nlohmann::json>>> cfgs;
  std::vector<std::string> keys;
  for (auto& r : runs) {
    cfgs.push_back(r.config.is_object() ? flat(r.config) : std::vector<std::pair<std::string, nlohmann::json>>{});
    for (auto& kv : cfgs.back())
      if (std::find(keys.begin(), keys.end(), kv.first) == keys.end()) keys.push_back(kv.first);
  }
  for (auto& k : keys) {
    os << "<tr><td>" << xml_escape(k) << "</td>";
    for (auto& c : cfgs) {
      auto it = std::find_if(c.begin(), c.end(), [&k](const auto& kv) { return kv.first == k; });
      os << "<td>" << (it != c.end() ? xml_escape(detail::fmt_value(it->second)) : "-") << "</td>";
    }
    os << "</tr>\n";
  }
  os << "</table>\n";
  if (keys.empty()) absent.push_back("config (no summary.json yet)");

  if (!absent.empty()) {
    os << "<p class=\"note\">Sections left out for lack of data: ";
    for (size_t i = 0; i < absent.size(); ++i) os << (i ? "; " : "") << xml_escape(absent[i]);
    os << ".</p>\n";
  }
  os << "</body>\n</html>\n";
  return os.str();
}

// One standalone SVG: metrics key `key` per epoch, one line per run, labelled by folder name
// (docs/results.md's figures). Accuracy keys (ending in "_acc") are drawn in %.
inline std::string epoch_plot_svg(const std::vector<RunRecord>& runs, const std::string& key, const std::string& title) {
  LOWBIT_CHECK(!runs.empty(), "report: no run folders given");
  const bool acc = key.size() > 4 && key.compare(key.size() - 4, 4, "_acc") == 0;
  LinePlot p{title.empty() ? key : title, "epoch", acc ? key + " (%)" : key, detail::epoch_series(runs, key, "", acc ? 100 : 1),
             false, 640, 360};
  LOWBIT_CHECK(!p.series.empty(), "report: no run has the metrics key '", key, "' (keys are those of metrics.jsonl, e.g. test_acc)");
  return svg_line_plot(p);
}

// Writes OUT/report.html for the given run folders (temporary file + rename); returns its path.
inline std::string write_report(const std::vector<std::string>& run_dirs, const std::string& out_dir) {
  namespace fs = std::filesystem;
  std::vector<RunRecord> runs;
  for (auto& d : run_dirs) runs.push_back(read_run(d));
  const std::string html = report_html(runs);
  std::error_code ec;
  fs::create_directories(out_dir, ec);
  LOWBIT_CHECK(!ec, "report: cannot create the output folder '", out_dir, "' (--out): ", ec.message());
  const fs::path path = fs::path(out_dir) / "report.html";
  io::write_file_atomic(path.string(), html, "report");
  return path.string();
}

}  // namespace report
}  // namespace lowbit
