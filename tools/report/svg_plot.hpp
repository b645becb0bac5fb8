// A small dependency-free SVG plot writer: line plots (several series, legend), histograms
// with vertical markers, bar charts. Output is a self-contained <svg> element (well-formed
// XML, no scripts, no external files) meant to be inlined in an HTML report.
//
// Structure the tests (and any script) can rely on:
//   <g class="series" data-label="...">  one per line-plot series, holding one <polyline>
//                                         whose points="x,y x,y ..." has a pair per point
//   <g class="tick x">/<g class="tick y"> one per axis tick (a short line and its label)
//   <rect class="bar">                    one per histogram bin / bar
//   <line class="marker">                 one per histogram marker
//   <g class="legend">                    one entry per series (line plots) or marker
// Ticks are "nice" numbers (1, 2, 5 times a power of ten: Heckbert, Graphics Gems 1990),
// because round tick values are what makes a plot readable at a glance.
#pragma once
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <limits>
#include <sstream>
#include <string>
#include <vector>

#include <lowbit/core/error.hpp>

namespace lowbit {
namespace report {

struct PlotSeries {
  std::string label;
  std::vector<double> x, y;  // same length; non-finite y values are skipped
  int color = -1;            // palette index; -1: the series' position
  bool dashed = false;       // e.g. test curves next to solid train curves of the same run
};

struct LinePlot {
  std::string title, xlabel, ylabel;
  std::vector<PlotSeries> series;
  bool log_y = false;  // log10 y axis (e.g. SLB's temperature); y values must be > 0
  int width = 560, height = 320;
};

struct PlotMarker {
  double x = 0;
  std::string label;  // shown in the legend; markers with the same label share one entry
  std::string color;  // empty: the palette's next color
};

struct Histogram {
  std::string title, xlabel, ylabel = "count";
  std::vector<double> values;
  int bins = 60;
  double lo = 0, hi = 0;  // range; lo == hi: the data's range widened to include the markers
  std::vector<PlotMarker> markers;
  int width = 560, height = 320;
};

struct BarChart {
  std::string title, xlabel, ylabel;
  std::vector<std::string> labels;  // one per bar, drawn under it (rotated when crowded)
  std::vector<double> values;
  int width = 560, height = 320;
};

inline std::string xml_escape(const std::string& s) {
  std::string out;
  out.reserve(s.size());
  for (char c : s) {
    switch (c) {
      case '&': out += "&amp;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '"': out += "&quot;"; break;
      case '\'': out += "&#39;"; break;
      default: out += c;
    }
  }
  return out;
}

// Tick values covering [lo, hi] with about `target` ticks, at multiples of 1, 2 or 5 x 10^k.
inline std::vector<double> nice_ticks(double lo, double hi, int target = 6) {
  LOWBIT_CHECK(std::isfinite(lo) && std::isfinite(hi) && lo <= hi, "nice_ticks: range [", lo, ", ", hi,
               "] is not a finite interval");
  LOWBIT_CHECK(target >= 2, "nice_ticks: target = ", target, ", expected >= 2");
  if (hi == lo) {
    const double pad = lo == 0 ? 1.0 : std::abs(lo) * 0.5;
    lo -= pad;
    hi += pad;
  }
  auto nice = [](double x, bool round) {
    const double e = std::floor(std::log10(x)), f = x / std::pow(10.0, e);
    double nf;
    if (round) nf = f < 1.5 ? 1 : f < 3 ? 2 : f < 7 ? 5 : 10;
    else nf = f <= 1 ? 1 : f <= 2 ? 2 : f <= 5 ? 5 : 10;
    return nf * std::pow(10.0, e);
  };
  const double step = nice(nice(hi - lo, false) / (target - 1), true);
  std::vector<double> t;
  for (double v = std::floor(lo / step) * step; v <= std::ceil(hi / step) * step + step * 0.5; v += step)
    t.push_back(std::abs(v) < step * 1e-9 ? 0.0 : v);
  return t;
}

namespace detail {

inline const char* palette(size_t i) {
  // Colour-blind-safe qualitative palette (Okabe & Ito).
  static const char* const c[] = {"#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#000000", "#F0E442"};
  return c[i % 8];
}

// A legend entry: label, colour, dashed.
struct LegendItem {
  std::string label, color;
  bool dashed = false;
};
constexpr int kLegendRow = 16;

inline std::string fmt(double v) {
  char b[32];
  std::snprintf(b, sizeof b, "%.2f", v);
  return b;
}

// Tick label: short, no trailing zeros, scientific only when needed.
inline std::string tick_label(double v, double step) {
  char b[32];
  if (v != 0 && (std::abs(v) >= 1e5 || std::abs(v) < 1e-3)) std::snprintf(b, sizeof b, "%.0e", v);
  else {
    const int dec = step >= 1 ? 0 : static_cast<int>(std::ceil(-std::log10(step) - 1e-9));
    std::snprintf(b, sizeof b, "%.*f", std::min(dec, 6), v);
  }
  return b;
}

// Plot area and the mapping from data to pixels; draws frame, ticks, labels and title.
struct Frame {
  double x0, x1, y0, y1;       // data range (after ticks)
  double left = 64, right, top = 34, bottom;
  bool log_y = false;
  double px(double x) const { return left + (x - x0) / (x1 - x0) * (right - left); }
  double py(double y) const {
    const double v = log_y ? std::log10(y) : y;
    return bottom - (v - y0) / (y1 - y0) * (bottom - top);
  }
};

inline void open_svg(std::ostringstream& os, int w, int h, const std::string& title) {
  os << "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"" << w << "\" height=\"" << h << "\" viewBox=\"0 0 " << w
     << ' ' << h << "\" font-family=\"sans-serif\" font-size=\"12\">\n";
  os << "<rect x=\"0\" y=\"0\" width=\"" << w << "\" height=\"" << h << "\" fill=\"white\"/>\n";
  if (!title.empty())
    os << "<text class=\"title\" x=\"" << w / 2 << "\" y=\"20\" text-anchor=\"middle\" font-size=\"14\" font-weight=\"bold\">"
       << xml_escape(title) << "</text>\n";
}

// Axes with ticks. x_ticks empty: no numeric x ticks (bar charts label their bars).
inline Frame axes(std::ostringstream& os, int w, int h, const std::vector<double>& xt, const std::vector<double>& yt,
                  double xmin, double xmax, bool log_y, const std::string& xlabel, const std::string& ylabel,
                  double bottom_margin = 46, int legend_rows = 0) {
  Frame f;
  f.right = w - 16;
  f.bottom = h - bottom_margin - kLegendRow * legend_rows;
  f.log_y = log_y;
  f.x0 = xt.empty() ? xmin : xt.front();
  f.x1 = xt.empty() ? xmax : xt.back();
  f.y0 = yt.front();
  f.y1 = yt.back();
  if (f.x1 == f.x0) f.x1 = f.x0 + 1;
  os << "<g class=\"axes\" stroke=\"#333\" fill=\"none\">"
     << "<line x1=\"" << fmt(f.left) << "\" y1=\"" << fmt(f.bottom) << "\" x2=\"" << fmt(f.right) << "\" y2=\""
     << fmt(f.bottom) << "\"/>"
     << "<line x1=\"" << fmt(f.left) << "\" y1=\"" << fmt(f.top) << "\" x2=\"" << fmt(f.left) << "\" y2=\""
     << fmt(f.bottom) << "\"/></g>\n";
  const double xstep = xt.size() > 1 ? xt[1] - xt[0] : 1, ystep = yt.size() > 1 ? yt[1] - yt[0] : 1;
  for (double x : xt) {
    const double p = f.px(x);
    os << "<g class=\"tick x\"><line x1=\"" << fmt(p) << "\" y1=\"" << fmt(f.bottom) << "\" x2=\"" << fmt(p)
       << "\" y2=\"" << fmt(f.bottom + 5) << "\" stroke=\"#333\"/><text x=\"" << fmt(p) << "\" y=\"" << fmt(f.bottom + 18)
       << "\" text-anchor=\"middle\">" << tick_label(x, xstep) << "</text></g>\n";
  }
  for (double y : yt) {
    const double p = f.bottom - (y - f.y0) / (f.y1 - f.y0) * (f.bottom - f.top);
    const std::string label = log_y ? tick_label(std::pow(10.0, y), std::pow(10.0, y)) : tick_label(y, ystep);
    os << "<g class=\"tick y\"><line x1=\"" << fmt(f.left - 5) << "\" y1=\"" << fmt(p) << "\" x2=\"" << fmt(f.right)
       << "\" y2=\"" << fmt(p) << "\" stroke=\"#ddd\"/><text x=\"" << fmt(f.left - 8) << "\" y=\"" << fmt(p + 4)
       << "\" text-anchor=\"end\">" << label << "</text></g>\n";
  }
  if (!xlabel.empty())
    os << "<text class=\"xlabel\" x=\"" << fmt((f.left + f.right) / 2) << "\" y=\"" << fmt(f.bottom + 38)
       << "\" text-anchor=\"middle\">" << xml_escape(xlabel) << "</text>\n";
  if (!ylabel.empty())
    os << "<text class=\"ylabel\" transform=\"translate(14," << fmt((f.top + f.bottom) / 2)
       << ") rotate(-90)\" text-anchor=\"middle\">" << xml_escape(ylabel) << "</text>\n";
  return f;
}

// Legend rows under the x-axis title (the canvas was made taller by kLegendRow per item), so
// it never hides data however many runs are overlaid.
inline void legend(std::ostringstream& os, const Frame& f, int height, const std::vector<LegendItem>& items) {
  double y = height - kLegendRow * static_cast<double>(items.size()) + 4;
  for (auto& it : items) {
    os << "<g class=\"legend\"><line x1=\"" << fmt(f.left) << "\" y1=\"" << fmt(y) << "\" x2=\"" << fmt(f.left + 24)
       << "\" y2=\"" << fmt(y) << "\" stroke=\"" << it.color << "\" stroke-width=\"2.5\""
       << (it.dashed ? " stroke-dasharray=\"6 3\"" : "") << "/><text x=\"" << fmt(f.left + 30) << "\" y=\"" << fmt(y + 4)
       << "\">" << xml_escape(it.label) << "</text></g>\n";
    y += kLegendRow;
  }
}

}  // namespace detail

inline std::string svg_line_plot(const LinePlot& p) {
  double xmin = std::numeric_limits<double>::infinity(), xmax = -xmin, ymin = xmin, ymax = -xmin;
  for (auto& s : p.series) {
    LOWBIT_CHECK(s.x.size() == s.y.size(), "svg_line_plot '", p.title, "': series '", s.label, "' has ", s.x.size(),
                 " x values and ", s.y.size(), " y values");
    for (size_t i = 0; i < s.x.size(); ++i) {
      if (!std::isfinite(s.x[i]) || !std::isfinite(s.y[i])) continue;
      LOWBIT_CHECK(!p.log_y || s.y[i] > 0, "svg_line_plot '", p.title, "': log y axis needs y > 0, series '", s.label,
                   "' has ", s.y[i]);
      const double y = p.log_y ? std::log10(s.y[i]) : s.y[i];
      xmin = std::min(xmin, s.x[i]);
      xmax = std::max(xmax, s.x[i]);
      ymin = std::min(ymin, y);
      ymax = std::max(ymax, y);
    }
  }
  if (!std::isfinite(xmin)) xmin = 0, xmax = 1, ymin = 0, ymax = 1;  // no data: empty axes
  std::ostringstream os;
  const int rows = static_cast<int>(p.series.size()), height = p.height + detail::kLegendRow * rows;
  detail::open_svg(os, p.width, height, p.title);
  // A log axis gets one tick per decade: a tick at 10^0.5 would read "3" for 3.16.
  std::vector<double> yt;
  if (p.log_y)
    for (double e = std::floor(ymin); e <= std::max(std::ceil(ymax), std::floor(ymin) + 1); e += 1) yt.push_back(e);
  else
    yt = nice_ticks(ymin, ymax);
  const detail::Frame f = detail::axes(os, p.width, height, nice_ticks(xmin, xmax), yt, xmin, xmax, p.log_y,
                                       p.xlabel, p.ylabel, 46, rows);
  std::vector<detail::LegendItem> items;
  for (size_t k = 0; k < p.series.size(); ++k) {
    const auto& s = p.series[k];
    const char* color = detail::palette(s.color >= 0 ? static_cast<size_t>(s.color) : k);
    os << "<g class=\"series\" data-label=\"" << xml_escape(s.label) << "\"><polyline fill=\"none\" stroke=\"" << color
       << "\" stroke-width=\"2\"" << (s.dashed ? " stroke-dasharray=\"6 3\"" : "") << " points=\"";
    bool first = true;
    for (size_t i = 0; i < s.x.size(); ++i) {
      if (!std::isfinite(s.x[i]) || !std::isfinite(s.y[i])) continue;
      os << (first ? "" : " ") << detail::fmt(f.px(s.x[i])) << ',' << detail::fmt(f.py(s.y[i]));
      first = false;
    }
    os << "\"/></g>\n";
    items.push_back({s.label, color, s.dashed});
  }
  detail::legend(os, f, height, items);
  os << "</svg>\n";
  return os.str();
}

inline std::string svg_histogram(const Histogram& h) {
  LOWBIT_CHECK(h.bins >= 1, "svg_histogram '", h.title, "': bins = ", h.bins, ", expected >= 1");
  double lo = h.lo, hi = h.hi;
  if (lo == hi) {
    lo = std::numeric_limits<double>::infinity();
    hi = -lo;
    for (double v : h.values)
      if (std::isfinite(v)) lo = std::min(lo, v), hi = std::max(hi, v);
    for (auto& m : h.markers) lo = std::min(lo, m.x), hi = std::max(hi, m.x);
    if (!std::isfinite(lo)) lo = 0, hi = 1;
    if (lo == hi) lo -= 0.5, hi += 0.5;
  }
  LOWBIT_CHECK(lo < hi, "svg_histogram '", h.title, "': range [", lo, ", ", hi, "] is empty");
  std::vector<double> count(static_cast<size_t>(h.bins), 0.0);
  for (double v : h.values) {
    if (!std::isfinite(v) || v < lo || v > hi) continue;
    const int b = std::min(h.bins - 1, static_cast<int>((v - lo) / (hi - lo) * h.bins));
    count[static_cast<size_t>(b)] += 1;
  }
  const double cmax = *std::max_element(count.begin(), count.end());
  std::vector<detail::LegendItem> items;
  std::vector<std::string> marker_color;
  size_t next = 1;
  for (auto& m : h.markers) {
    auto it = std::find_if(items.begin(), items.end(), [&](auto& e) { return e.label == m.label; });
    const std::string color = !m.color.empty() ? m.color : it != items.end() ? it->color : detail::palette(next++);
    if (it == items.end()) items.push_back({m.label, color, true});
    marker_color.push_back(color);
  }
  std::ostringstream os;
  const int rows = static_cast<int>(items.size()), height = h.height + detail::kLegendRow * rows;
  detail::open_svg(os, h.width, height, h.title);
  const detail::Frame f = detail::axes(os, h.width, height, nice_ticks(lo, hi), nice_ticks(0, std::max(1.0, cmax)),
                                       lo, hi, false, h.xlabel, h.ylabel, 46, rows);
  const double bw = (hi - lo) / h.bins;
  for (int b = 0; b < h.bins; ++b) {
    const double x0 = f.px(lo + b * bw), x1 = f.px(lo + (b + 1) * bw), y = f.py(count[static_cast<size_t>(b)]);
    os << "<rect class=\"bar\" x=\"" << detail::fmt(x0) << "\" y=\"" << detail::fmt(y) << "\" width=\""
       << detail::fmt(std::max(0.0, x1 - x0 - 0.5)) << "\" height=\"" << detail::fmt(f.bottom - y)
       << "\" fill=\"#9db4cc\"/>\n";
  }
  for (size_t k = 0; k < h.markers.size(); ++k) {
    const PlotMarker& m = h.markers[k];
    const std::string& color = marker_color[k];
    os << "<line class=\"marker\" x1=\"" << detail::fmt(f.px(m.x)) << "\" y1=\"" << detail::fmt(f.top) << "\" x2=\""
       << detail::fmt(f.px(m.x)) << "\" y2=\"" << detail::fmt(f.bottom) << "\" stroke=\"" << color
       << "\" stroke-width=\"1.5\" stroke-dasharray=\"6 3\"/>\n";
  }
  detail::legend(os, f, height, items);
  os << "</svg>\n";
  return os.str();
}

inline std::string svg_bar_chart(const BarChart& c) {
  LOWBIT_CHECK(c.labels.size() == c.values.size(), "svg_bar_chart '", c.title, "': ", c.labels.size(), " labels and ",
               c.values.size(), " values");
  double vmin = 0, vmax = 0;
  for (double v : c.values)
    if (std::isfinite(v)) vmin = std::min(vmin, v), vmax = std::max(vmax, v);
  std::ostringstream os;
  const bool rotate = c.values.size() > 8;
  const int height = c.height + (rotate ? 70 : 0);
  detail::open_svg(os, c.width, height, c.title);
  const detail::Frame f = detail::axes(os, c.width, height, {}, nice_ticks(vmin, std::max(vmax, vmin + 1e-12)), 0,
                                       static_cast<double>(std::max<size_t>(1, c.values.size())), false,
                                       rotate ? "" : c.xlabel, c.ylabel, rotate ? 116 : 46);
  if (rotate) {
    // Crowded bars: labels are rotated into the extra room below the axis; the axis title goes last.
    os << "<text class=\"xlabel\" x=\"" << detail::fmt((f.left + f.right) / 2) << "\" y=\"" << height - 6
       << "\" text-anchor=\"middle\">" << xml_escape(c.xlabel) << "</text>\n";
  }
  const double slot = (f.right - f.left) / static_cast<double>(std::max<size_t>(1, c.values.size()));
  for (size_t i = 0; i < c.values.size(); ++i) {
    const double v = std::isfinite(c.values[i]) ? c.values[i] : 0.0;
    const double y0 = f.py(0), y1 = f.py(v);
    const double x = f.left + slot * static_cast<double>(i) + slot * 0.15;
    os << "<rect class=\"bar\" x=\"" << detail::fmt(x) << "\" y=\"" << detail::fmt(std::min(y0, y1)) << "\" width=\""
       << detail::fmt(slot * 0.7) << "\" height=\"" << detail::fmt(std::abs(y0 - y1)) << "\" fill=\"" << detail::palette(0)
       << "\"><title>" << xml_escape(c.labels[i]) << ": " << c.values[i] << "</title></rect>\n";
    const double cx = x + slot * 0.35;
    if (rotate)
      os << "<text class=\"barlabel\" font-size=\"10\" transform=\"translate(" << detail::fmt(cx) << ","
         << detail::fmt(f.bottom + 10) << ") rotate(60)\">" << xml_escape(c.labels[i]) << "</text>\n";
    else
      os << "<text class=\"barlabel\" x=\"" << detail::fmt(cx) << "\" y=\"" << detail::fmt(f.bottom + 16)
         << "\" text-anchor=\"middle\">" << xml_escape(c.labels[i]) << "</text>\n";
  }
  os << "</svg>\n";
  return os.str();
}

}  // namespace report
}  // namespace lowbit
