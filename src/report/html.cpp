// training_report_html: a report JSON as one self-contained HTML page (inline SVG and CSS, no
// JavaScript, nothing fetched). The charts are drawn here, from scratch: a line chart per metric
// with its validation twin on the same axes, bars for epoch times, a heat map for the confusion
// matrix. Not a general plotting library; the page structure is an interface (report.hpp).
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "lamina/io.hpp"
#include "lamina/metrics.hpp"
#include "lamina/report.hpp"

namespace lamina {
namespace {

// %.4g, with the words a reader expects for non-finite values.
std::string num(double v, const char* format = "%.4g") {
  if (std::isnan(v)) return "nan";
  if (std::isinf(v)) return v > 0 ? "inf" : "-inf";
  char buf[64];
  std::snprintf(buf, sizeof buf, format, v);
  return buf;
}
// SVG coordinates: two decimals are finer than any screen.
std::string coord(double v) { return num(v, "%.2f"); }

double value_of(const Json& j) { return j.is_number() ? j.get<double>() : std::nan(""); }  // null: a NaN dumped

std::vector<double> series_values(const Json& a) {
  std::vector<double> out;
  out.reserve(a.size());
  for (const Json& v : a) out.push_back(value_of(v));
  return out;
}

void check_report(const Json& r, const std::string& where) {
  if (!r.is_object() || !(r.contains("history") || r.contains("test") || r.contains("confusion_matrix")))
    throw ValueError(where + ": not a training report: expected a JSON object with \"history\", \"test\" or "
                             "\"confusion_matrix\" (as lamina train --report or lamina evaluate --report write)");
  if (r.contains("history")) {
    if (!r["history"].is_object()) throw ValueError(where + ": history: expected an object of arrays, got " + r["history"].type_name());
    for (const auto& [k, v] : r["history"].items()) {
      if (!v.is_array()) throw ValueError(where + ": history." + k + ": expected an array of numbers, got " + v.type_name());
      for (const Json& x : v)
        if (!x.is_number() && !x.is_null())
          throw ValueError(where + ": history." + k + ": expected numbers, got " + x.dump());
    }
  }
  if (r.contains("epoch_seconds") && !r["epoch_seconds"].is_array())
    throw ValueError(where + ": epoch_seconds: expected an array of numbers");
  if (r.contains("confusion_matrix")) {
    const Json& m = r["confusion_matrix"];
    bool ok = m.is_array() && !m.empty();
    for (size_t i = 0; ok && i < m.size(); ++i) {
      ok = m[i].is_array() && m[i].size() == m.size();
      for (size_t j = 0; ok && j < m[i].size(); ++j) ok = m[i][j].is_number_integer() && m[i][j].get<int64_t>() >= 0;
    }
    if (!ok)
      throw ValueError(where + ": confusion_matrix: expected K rows of K counts >= 0 (rows: true classes), got " +
                       m.dump().substr(0, 120));
  }
  if (r.contains("class_names") && !r["class_names"].is_array())
    throw ValueError(where + ": class_names: expected an array of strings");
}

// A JSON value as table text: strings bare, the rest as JSON.
std::string text_of(const Json& j) {
  if (j.is_string()) return j.get<std::string>();
  if (j.is_number_float()) return num(j.get<double>(), "%.6g");
  return j.dump();
}

// --- charts ---------------------------------------------------------------------------------------

// The chart's viewBox and plot area: narrow enough that its text stays legible on a phone, where
// the chart shrinks to the screen's width.
constexpr double kW = 520, kH = 300;
constexpr double kLeft = 80, kRight = 505, kTop = 34, kBottom = 236;

struct Series {
  std::string name;  // the history key
  std::vector<double> values;
  std::string colour;
};

// About `target` round tick values covering [lo, hi]: steps of 1, 2 or 5 times a power of ten.
double nice_step(double span, int target) {
  const double raw = span / target;
  const double mag = std::pow(10.0, std::floor(std::log10(raw)));
  const double r = raw / mag;
  return (r < 1.5 ? 1 : r < 3.5 ? 2 : r < 7.5 ? 5 : 10) * mag;
}

struct Axis {
  double lo, hi, step;
  double to(double v, double a, double b) const { return a + (v - lo) / (hi - lo) * (b - a); }
};

Axis value_axis(double lo, double hi, bool from_zero) {
  if (!std::isfinite(lo) || !std::isfinite(hi)) lo = 0, hi = 1;
  if (from_zero) lo = std::min(lo, 0.0);
  if (hi - lo <= std::abs(hi) * 1e-9) {  // a flat line: open the axis around it
    const double pad = hi == 0 ? 1 : std::abs(hi) * 0.1;
    lo -= pad, hi += pad;
  }
  const double step = nice_step(hi - lo, 5);
  return {std::floor(lo / step + 1e-9) * step, std::ceil(hi / step - 1e-9) * step, step};
}

// The x axis: epochs first..last (1-based); one epoch sits in the middle.
Axis epoch_axis(int64_t first, int64_t last) {
  if (first == last) return {first - 0.5, last + 0.5, 1};
  return {static_cast<double>(first), static_cast<double>(last), std::max(1.0, std::ceil(nice_step(static_cast<double>(last - first), 8)))};
}

void axes(std::string& s, const Axis& x, const Axis& y, const std::string& ylabel, bool integer_x_only) {
  // Grid lines and y ticks.
  for (double v = y.lo; v <= y.hi + y.step * 1e-6; v += y.step) {
    const double py = y.to(v, kBottom, kTop);
    s += "<line class=\"grid\" x1=\"" + coord(kLeft) + "\" x2=\"" + coord(kRight) + "\" y1=\"" + coord(py) + "\" y2=\"" +
         coord(py) + "\"/>";
    s += "<text class=\"tick\" x=\"" + coord(kLeft - 6) + "\" y=\"" + coord(py + 4) + "\" text-anchor=\"end\">" +
         num(std::abs(v) < y.step * 1e-6 ? 0.0 : v) + "</text>";
  }
  for (double v = std::ceil(x.lo); v <= x.hi + 1e-9; v += x.step) {
    if (integer_x_only && v != std::floor(v)) continue;
    const double px = x.to(v, kLeft, kRight);
    s += "<line class=\"tickmark\" x1=\"" + coord(px) + "\" x2=\"" + coord(px) + "\" y1=\"" + coord(kBottom) +
         "\" y2=\"" + coord(kBottom + 5) + "\"/>";
    s += "<text class=\"tick\" x=\"" + coord(px) + "\" y=\"" + coord(kBottom + 20) + "\" text-anchor=\"middle\">" +
         num(v, "%.0f") + "</text>";
  }
  s += "<line class=\"axis\" x1=\"" + coord(kLeft) + "\" x2=\"" + coord(kRight) + "\" y1=\"" + coord(kBottom) +
       "\" y2=\"" + coord(kBottom) + "\"/>";
  s += "<line class=\"axis\" x1=\"" + coord(kLeft) + "\" x2=\"" + coord(kLeft) + "\" y1=\"" + coord(kTop) + "\" y2=\"" +
       coord(kBottom) + "\"/>";
  s += "<text class=\"axis-label\" x=\"" + coord((kLeft + kRight) / 2) + "\" y=\"" + coord(kH - 14) +
       "\" text-anchor=\"middle\">epoch</text>";
  s += "<text class=\"axis-label\" transform=\"translate(18 " + coord((kTop + kBottom) / 2) +
       ") rotate(-90)\" text-anchor=\"middle\">" + html_escape(ylabel) + "</text>";
}

// A polyline through the finite points; a non-finite value breaks it.
std::string path_data(const std::vector<double>& v, int64_t first_epoch, const Axis& x, const Axis& y) {
  std::string d;
  bool pen_down = false;
  for (size_t i = 0; i < v.size(); ++i) {
    if (!std::isfinite(v[i])) {
      pen_down = false;
      continue;
    }
    d += (pen_down ? " L" : (d.empty() ? "M" : " M")) + coord(x.to(static_cast<double>(first_epoch) + static_cast<double>(i), kLeft, kRight)) + " " +
         coord(y.to(v[i], kBottom, kTop));
    pen_down = true;
  }
  return d;  // empty for an all-NaN series: the element stays, drawing nothing
}

std::string legend(const std::vector<Series>& series) {
  std::string s;
  double x = kLeft;
  for (const Series& se : series) {
    s += "<g class=\"legend\"><rect x=\"" + coord(x) + "\" y=\"10\" width=\"14\" height=\"4\" fill=\"" + se.colour +
         "\"/><text x=\"" + coord(x + 19) + "\" y=\"16\">" + html_escape(se.name) + "</text></g>";
    x += 32 + 8 * static_cast<double>(se.name.size());
  }
  return s;
}

std::string line_chart(const std::string& metric, const std::vector<Series>& series, int64_t first_epoch,
                       double smoothing) {
  size_t n = 0;
  double lo = INFINITY, hi = -INFINITY;
  for (const Series& se : series) {
    n = std::max(n, se.values.size());
    for (double v : se.values)
      if (std::isfinite(v)) lo = std::min(lo, v), hi = std::max(hi, v);
  }
  const Axis x = epoch_axis(first_epoch, first_epoch + static_cast<int64_t>(std::max<size_t>(n, 1)) - 1);
  const bool rate = metric == "learning_rate";
  const Axis y = value_axis(lo, hi, /*from_zero=*/false);
  std::string s = "<figure class=\"chart-box\"><figcaption>" + html_escape(metric) + "</figcaption>";
  s += "<svg class=\"chart\" data-chart=\"" + html_escape(metric) + "\" viewBox=\"0 0 " + num(kW) + " " + num(kH) +
       "\" role=\"img\" aria-label=\"" + html_escape(metric) + " per epoch\">";
  axes(s, x, y, rate ? "learning rate" : metric, true);
  s += legend(series);
  for (const Series& se : series) {
    const std::string name = html_escape(se.name);
    if (smoothing > 0) {
      s += "<path class=\"series\" data-series=\"" + name + "\" d=\"" + path_data(se.values, first_epoch, x, y) +
           "\" stroke=\"" + se.colour + "\" stroke-opacity=\"0.3\"/>";
      s += "<path class=\"series-smoothed\" data-series=\"" + name + "\" d=\"" +
           path_data(ema_smooth(se.values, smoothing), first_epoch, x, y) + "\" stroke=\"" + se.colour + "\"/>";
    } else {
      s += "<path class=\"series\" data-series=\"" + name + "\" d=\"" + path_data(se.values, first_epoch, x, y) +
           "\" stroke=\"" + se.colour + "\"/>";
    }
    // Points with their value as a tooltip (SVG <title>: no script needed), while they stay apart.
    if (se.values.size() <= 60)
      for (size_t i = 0; i < se.values.size(); ++i) {
        if (!std::isfinite(se.values[i])) continue;
        const int64_t epoch = first_epoch + static_cast<int64_t>(i);
        s += "<circle class=\"marker\" cx=\"" + coord(x.to(static_cast<double>(epoch), kLeft, kRight)) + "\" cy=\"" +
             coord(y.to(se.values[i], kBottom, kTop)) + "\" r=\"2.5\" fill=\"" + se.colour +
             (smoothing > 0 ? "\" fill-opacity=\"0.3" : "") + "\"><title>" + name + ", epoch " +
             std::to_string(epoch) + ": " + num(se.values[i], "%.6g") + "</title></circle>";
      }
  }
  return s + "</svg></figure>";
}

std::string bar_chart(const std::vector<double>& seconds, int64_t first_epoch) {
  double hi = 0;
  for (double v : seconds)
    if (std::isfinite(v)) hi = std::max(hi, v);
  const int64_t n = static_cast<int64_t>(seconds.size());
  const Axis x{first_epoch - 0.5, first_epoch + n - 0.5, std::max(1.0, std::ceil(nice_step(static_cast<double>(n), 8)))};
  const Axis y = value_axis(0, hi, true);
  std::string s = "<figure class=\"chart-box\"><figcaption>seconds per epoch</figcaption>";
  // class "bars", not "chart": a chart's paths are the history's series, and epoch times are none.
  s += "<svg class=\"bars\" data-chart=\"epoch_seconds\" viewBox=\"0 0 " + num(kW) + " " + num(kH) +
       "\" role=\"img\" aria-label=\"seconds per epoch\">";
  axes(s, x, y, "seconds", true);
  const double w = std::min(40.0, (kRight - kLeft) / static_cast<double>(std::max<int64_t>(n, 1)) * 0.7);
  for (int64_t i = 0; i < n; ++i) {
    const double v = std::isfinite(seconds[static_cast<size_t>(i)]) ? seconds[static_cast<size_t>(i)] : 0.0;
    const double cx = x.to(static_cast<double>(first_epoch + i), kLeft, kRight), top = y.to(v, kBottom, kTop);
    s += "<rect class=\"bar\" x=\"" + coord(cx - w / 2) + "\" y=\"" + coord(top) + "\" width=\"" + coord(w) +
         "\" height=\"" + coord(kBottom - top) + "\"><title>epoch " + std::to_string(first_epoch + i) + ": " +
         num(v, "%.3f") + " s</title></rect>";
  }
  return s + "</svg></figure>";
}

// --- sections -------------------------------------------------------------------------------------

const char* kTrainColour = "#1f77b4";
const char* kValColour = "#e4572e";
const char* kRateColour = "#2a9d3f";

std::string curves(const Json& r, double smoothing) {
  const Json& h = r["history"];
  const int64_t first = r.value("initial_epoch", 0) + 1;
  // One chart per metric: loss first, then the others as the history lists them, learning rate last.
  std::vector<std::string> metrics;
  std::set<std::string> seen;
  auto add = [&](const std::string& m) {
    if (seen.insert(m).second) metrics.push_back(m);
  };
  if (h.contains("loss") || h.contains("val_loss")) add("loss");
  for (const auto& [k, v] : h.items()) {
    if (k == "learning_rate") continue;
    add(k.rfind("val_", 0) == 0 ? k.substr(4) : k);
  }
  std::string s;
  for (const std::string& m : metrics) {
    std::vector<Series> series;
    if (h.contains(m)) series.push_back({m, series_values(h[m]), kTrainColour});
    if (h.contains("val_" + m)) series.push_back({"val_" + m, series_values(h["val_" + m]), kValColour});
    s += line_chart(m, series, first, smoothing);
  }
  if (h.contains("learning_rate"))
    s += line_chart("learning_rate", {{"learning_rate", series_values(h["learning_rate"]), kRateColour}}, first, 0.0);
  if (r.contains("epoch_seconds") && !r["epoch_seconds"].empty()) s += bar_chart(series_values(r["epoch_seconds"]), first);
  if (s.empty()) return "";
  return "<section id=\"curves\"><h2>Training curves</h2>" +
         std::string(smoothing > 0 ? "<p class=\"note\">Smoothed (TensorBoard's debiased moving average, weight " +
                                         num(smoothing, "%.3g") + "); the raw values are drawn faint.</p>"
                                   : "") +
         "<div class=\"charts\">" + s + "</div></section>";
}

std::vector<std::string> class_names(const Json& r, const HtmlReportOptions& o, int64_t k) {
  std::vector<std::string> names;
  for (int64_t i = 0; i < k; ++i) {
    const auto u = static_cast<size_t>(i);
    if (u < o.class_names.size()) names.push_back(o.class_names[u]);
    else if (r.contains("class_names") && u < r["class_names"].size()) names.push_back(text_of(r["class_names"][u]));
    else names.push_back(std::to_string(i));
  }
  return names;
}

// Row shares from white to deep blue (ColorBrewer's Blues ends).
std::string heat(double p) {
  const double lo[3] = {247, 251, 255}, hi[3] = {8, 48, 107};
  char buf[16];
  std::snprintf(buf, sizeof buf, "#%02x%02x%02x", static_cast<int>(std::lround(lo[0] + (hi[0] - lo[0]) * p)),
                static_cast<int>(std::lround(lo[1] + (hi[1] - lo[1]) * p)),
                static_cast<int>(std::lround(lo[2] + (hi[2] - lo[2]) * p)));
  return buf;
}

std::string confusion(const Json& r, const HtmlReportOptions& o) {
  const Json& m = r["confusion_matrix"];
  const auto k = static_cast<int64_t>(m.size());
  const std::vector<std::string> names = class_names(r, o, k);
  // Cells shrink with the class count; counts and shares are written while they stay legible.
  const double cell = std::clamp(560.0 / static_cast<double>(k), 12.0, 64.0);
  // Room for the class names: beside the rows, and below the columns at 45 degrees.
  size_t longest = 1;
  for (const std::string& n : names) longest = std::max(longest, std::min<size_t>(n.size(), 12));
  const double chars = static_cast<double>(longest);
  const double left = 36 + 8 * chars, top = 16, w = left + cell * static_cast<double>(k) + 12,
               h = top + cell * static_cast<double>(k) + 40 + 6 * chars;
  // At most a little above its natural size (two classes should not fill a desktop screen), and on a
  // phone no smaller than about 36 px a cell: its box scrolls sideways instead.
  std::string s = "<svg class=\"confusion\" viewBox=\"0 0 " + coord(w) + " " + coord(h) + "\" style=\"max-width:" +
                  coord(std::max(w * 1.2, 260.0)) + "px;min-width:" + coord(std::min(w, 110 + 36 * static_cast<double>(k))) +
                  "px\" role=\"img\" aria-label=\"confusion matrix\">";
  auto label = [](const std::string& n) { return n.size() > 12 ? n.substr(0, 11) + "\xe2\x80\xa6" : n; };
  for (int64_t t = 0; t < k; ++t) {
    int64_t row = 0;
    for (const Json& c : m[static_cast<size_t>(t)]) row += c.get<int64_t>();
    const double y = top + cell * static_cast<double>(t);
    s += "<text class=\"tick\" x=\"" + coord(left - 6) + "\" y=\"" + coord(y + cell / 2 + 4) + "\" text-anchor=\"end\">" +
         html_escape(label(names[static_cast<size_t>(t)])) + "<title>" + html_escape(names[static_cast<size_t>(t)]) + "</title></text>";
    for (int64_t p = 0; p < k; ++p) {
      const int64_t n = m[static_cast<size_t>(t)][static_cast<size_t>(p)].get<int64_t>();
      const double share = row > 0 ? static_cast<double>(n) / static_cast<double>(row) : 0.0;
      const double x = left + cell * static_cast<double>(p);
      s += "<rect class=\"cell\" data-true=\"" + std::to_string(t) + "\" data-pred=\"" + std::to_string(p) + "\" x=\"" +
           coord(x) + "\" y=\"" + coord(y) + "\" width=\"" + coord(cell) + "\" height=\"" + coord(cell) + "\" fill=\"" +
           heat(share) + "\"><title>true " + html_escape(names[static_cast<size_t>(t)]) + ", predicted " +
           html_escape(names[static_cast<size_t>(p)]) + ": " + std::to_string(n) + " (" + num(100 * share, "%.1f") +
           "% of the row)</title></rect>";
      // The count in every cell; its row share below it while the cell has room for two lines.
      const std::string fill = share > 0.5 ? "#fff" : "#222";
      const bool two_lines = cell >= 28;
      const double font = cell * (two_lines ? 0.27 : 0.34);
      s += "<text class=\"count\" x=\"" + coord(x + cell / 2) + "\" y=\"" +
           coord(two_lines ? y + cell * 0.47 : y + cell / 2 + font * 0.35) + "\" text-anchor=\"middle\" font-size=\"" +
           coord(font) + "\" fill=\"" + fill + "\">" + std::to_string(n) + "</text>";
      if (two_lines)
        s += "<text class=\"share\" x=\"" + coord(x + cell / 2) + "\" y=\"" + coord(y + cell * 0.78) +
             "\" text-anchor=\"middle\" font-size=\"" + coord(cell * 0.2) + "\" fill=\"" + fill + "\">" +
             num(100 * share, "%.0f") + "%</text>";
    }
  }
  const double bottom = top + cell * static_cast<double>(k);
  for (int64_t p = 0; p < k; ++p) {
    const double x = left + cell * (static_cast<double>(p) + 0.5);
    s += "<text class=\"tick\" transform=\"translate(" + coord(x + 4) + " " + coord(bottom + 8) +
         ") rotate(-45)\" text-anchor=\"end\">" + html_escape(label(names[static_cast<size_t>(p)])) + "</text>";
  }
  s += "<text class=\"axis-label\" x=\"" + coord(left + cell * static_cast<double>(k) / 2) + "\" y=\"" + coord(h - 6) +
       "\" text-anchor=\"middle\">predicted</text>";
  s += "<text class=\"axis-label\" transform=\"translate(14 " + coord(top + cell * static_cast<double>(k) / 2) +
       ") rotate(-90)\" text-anchor=\"middle\">true</text>";
  s += "</svg>";

  // Per-class precision, recall, F1 and support, through the library's ConfusionMatrix.
  ConfusionMatrix cm(k);
  std::vector<int64_t> truth, pred;
  for (int64_t t = 0; t < k; ++t)
    for (int64_t p = 0; p < k; ++p) {
      const int64_t n = m[static_cast<size_t>(t)][static_cast<size_t>(p)].get<int64_t>();
      truth.insert(truth.end(), static_cast<size_t>(n), t);
      pred.insert(pred.end(), static_cast<size_t>(n), p);
    }
  cm.update(truth, pred);
  std::string table =
      "<div class=\"table-wrap\"><table class=\"per-class\"><thead><tr><th>class</th><th>precision</th><th>recall</th>"
      "<th>F1</th><th>support</th></tr></thead><tbody>";
  for (int64_t c = 0; c < k; ++c) {
    int64_t support = 0;
    for (int64_t p = 0; p < k; ++p) support += cm.count(c, p);
    table += "<tr><td>" + html_escape(names[static_cast<size_t>(c)]) + "</td><td>" + num(cm.precision(c), "%.4f") +
             "</td><td>" + num(cm.recall(c), "%.4f") + "</td><td>" + num(cm.f1(c), "%.4f") + "</td><td>" +
             std::to_string(support) + "</td></tr>";
  }
  table += "</tbody><tfoot><tr><th>macro avg</th><td>" + num(cm.macro_precision(), "%.4f") + "</td><td>" +
           num(cm.macro_recall(), "%.4f") + "</td><td>" + num(cm.macro_f1(), "%.4f") + "</td><td>" +
           std::to_string(cm.total()) + "</td></tr><tr><th>accuracy</th><td></td><td></td><td>" +
           num(cm.accuracy(), "%.4f") + "</td><td>" + std::to_string(cm.total()) + "</td></tr></tfoot></table></div>";
  return "<section id=\"confusion\"><h2>Confusion matrix (test set)</h2><p class=\"note\">Rows are true classes; "
         "each cell gives the count and its share of the row, and is coloured by that share.</p>"
         "<div class=\"matrix\">" + s + "</div><h2>Per class</h2>" + table + "</section>";
}

std::string test_results(const Json& r) {
  if (!r.contains("test") || !r["test"].is_object() || r["test"].empty()) return "";
  std::string s = "<section id=\"test\"><h2>Test set</h2><div class=\"table-wrap\"><table class=\"test\"><tbody>";
  for (const auto& [k, v] : r["test"].items())
    s += "<tr><th>" + html_escape(k) + "</th><td>" + html_escape(v.is_number() ? num(v.get<double>(), "%.4f") : text_of(v)) + "</td></tr>";
  return s + "</tbody></table></div></section>";
}

std::string hyperparameters(const Json& r) {
  std::vector<std::pair<std::string, std::string>> rows;
  auto row = [&](const std::string& k, const std::string& v) { rows.emplace_back(k, v); };
  auto row_of = [&](const char* key, const std::string& label) {
    if (r.contains(key) && !r[key].is_null()) row(label, text_of(r[key]));
  };
  if (r.contains("compile") && r["compile"].is_object()) {
    const Json& c = r["compile"];
    if (c.contains("optimizer")) {
      const Json& opt = c["optimizer"];
      if (opt.is_object() && opt.contains("class_name")) {
        row("optimizer", text_of(opt["class_name"]));
        if (opt.contains("config") && opt["config"].is_object())
          for (const auto& [k, v] : opt["config"].items())
            if (k != "name" && !v.is_null()) row("optimizer." + k, text_of(v));
      } else {
        row("optimizer", text_of(opt));
      }
    }
    if (c.contains("loss")) row("loss", c["loss"].is_object() && c["loss"].contains("class_name") ? text_of(c["loss"]["class_name"]) : text_of(c["loss"]));
    if (c.contains("metrics")) {
      std::string list;
      for (const Json& m : c["metrics"]) list += (list.empty() ? "" : ", ") + text_of(m);
      row("metrics", list.empty() ? "none" : list);
    }
  }
  row_of("epochs", "epochs");
  if (r.value("initial_epoch", 0) > 0) row_of("initial_epoch", "resumed after epoch");
  row_of("batch_size", "batch size");
  row_of("validation_split", "validation split");
  row_of("seed", "seed");
  row_of("threads", "threads");
  if (r.contains("peak_rss_mb") && r["peak_rss_mb"].is_number()) row("peak RSS", num(r["peak_rss_mb"].get<double>(), "%.1f") + " MB");
  row_of("params", "parameters");
  if (r.contains("epoch_seconds") && !r["epoch_seconds"].empty()) {
    double total = 0;
    for (const Json& v : r["epoch_seconds"]) total += value_of(v);
    row("training time", num(total, "%.2f") + " s (" + num(total / static_cast<double>(r["epoch_seconds"].size()), "%.2f") + " s per epoch)");
  }
  row_of("spec", "spec");
  if (r.contains("preprocessing") && r["preprocessing"].is_object()) {
    const Json& p = r["preprocessing"];
    if (p.contains("data")) row("data", text_of(p["data"]));
    if (p.contains("scale")) row("input scale", text_of(p["scale"]));
  }
  row_of("data", "data");
  row_of("samples", "test samples");
  if (rows.empty()) return "";
  std::string s = "<div class=\"table-wrap\"><table class=\"hyperparams\"><tbody>";
  for (const auto& [k, v] : rows) s += "<tr><th>" + html_escape(k) + "</th><td>" + html_escape(v) + "</td></tr>";
  return s + "</tbody></table></div>";
}

std::string model_section(const Json& r) {
  const std::string table = hyperparameters(r);
  const bool summary = r.contains("summary") && r["summary"].is_string();
  if (table.empty() && !summary) return "";
  std::string s = "<section id=\"model\"><h2>Model and run</h2>";
  if (!table.empty()) s += table;
  if (summary) s += "<pre class=\"summary\">" + html_escape(r["summary"].get<std::string>()) + "</pre>";
  return s + "</section>";
}

std::string gallery(const HtmlReportOptions& o) {
  if (o.wrong.empty()) return "";
  std::string s = "<section id=\"wrong\"><h2>Most confidently wrong test images</h2><p class=\"note\">Each image "
                  "beside its saliency map (|gradient| of the predicted class), most confident first.</p>"
                  "<div class=\"gallery\">";
  for (const ReportImage& im : o.wrong)
    s += "<figure class=\"wrong\"><img src=\"data:image/png;base64," + base64_encode(im.png) + "\" alt=\"" +
         html_escape(im.caption) + "\"><figcaption>" + html_escape(im.caption) + "</figcaption></figure>";
  return s + "</div></section>";
}

// Red for evidence toward the explained class, blue against, by |score| relative to the text's largest.
std::string texts(const HtmlReportOptions& o) {
  if (o.texts.empty()) return "";
  std::string s = "<section id=\"tokens\"><h2>What the model read</h2><p class=\"note\">Integrated gradients "
                  "per token for the predicted class: red for, blue against.</p>";
  for (const ReportText& t : o.texts) {
    double top = 0;
    for (double v : t.scores)
      if (std::isfinite(v)) top = std::max(top, std::abs(v));
    s += "<figure class=\"text\"><p>";
    for (size_t i = 0; i < t.tokens.size(); ++i) {
      const double v = i < t.scores.size() && std::isfinite(t.scores[i]) ? t.scores[i] : 0.0;
      const double a = top > 0 ? std::abs(v) / top : 0.0;
      const std::string colour = v >= 0 ? "228,87,46" : "31,119,180";
      s += "<span class=\"token\" data-score=\"" + num(v) + "\" style=\"background:rgba(" + colour + "," +
           num(0.85 * a, "%.3f") + ")\" title=\"" + num(v) + "\">" + html_escape(t.tokens[i]) + "</span> ";
    }
    s += "</p><figcaption>" + html_escape(t.caption) + "</figcaption></figure>";
  }
  return s + "</section>";
}

const char* kCss = R"css(
*{box-sizing:border-box}
body{margin:0;font:15px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,Helvetica,Arial,sans-serif;color:#1b1b1b;background:#f4f5f7}
main{max-width:1180px;margin:0 auto;padding:16px}
h1{font-size:1.5em;margin:.2em 0}
h2{font-size:1.15em;margin:.2em 0 .6em}
.sub{color:#555;margin:0 0 8px;overflow-wrap:anywhere}
section{background:#fff;border:1px solid #dde0e4;border-radius:8px;padding:12px 16px;margin:14px 0}
.note{color:#555;font-size:.9em;margin:0 0 8px}
.banner{position:sticky;top:0;z-index:1;background:#fff4c2;border-bottom:1px solid #e0c75a;padding:8px 16px;font-weight:600;text-align:center}
.charts{display:grid;grid-template-columns:repeat(auto-fit,minmax(min(100%,420px),1fr));gap:14px}
figure{margin:0}
figure.chart-box{break-inside:avoid;page-break-inside:avoid}
figure.chart-box figcaption{font-weight:600;font-size:.95em}
svg.chart,svg.bars,svg.confusion{display:block;width:100%;height:auto;font-size:13px}
svg .grid{stroke:#e7e7e7}
svg .axis,svg .tickmark{stroke:#777}
svg .tick{fill:#444;font-size:13px}
svg .axis-label{fill:#222;font-size:15px;font-weight:600}
svg .legend text{fill:#333;font-size:14px}
svg path.series,svg path.series-smoothed{fill:none;stroke-width:2;stroke-linejoin:round;stroke-linecap:round}
svg path.series-smoothed{stroke-width:2.5}
svg rect.bar{fill:#8da9c4}
svg rect.cell{stroke:#fff;stroke-width:1}
.matrix{overflow-x:auto;break-inside:avoid;page-break-inside:avoid}
.table-wrap{overflow-x:auto;max-width:100%;-webkit-overflow-scrolling:touch}
table{border-collapse:collapse;font-variant-numeric:tabular-nums;margin:4px 0 10px}
th,td{padding:4px 12px;border-bottom:1px solid #eceef0;text-align:right;white-space:nowrap}
th:first-child,td:first-child{text-align:left}
table.hyperparams td{text-align:left;white-space:normal;overflow-wrap:anywhere}
tfoot th,tfoot td{border-top:2px solid #ccc;font-weight:600}
pre.summary{overflow-x:auto;background:#f7f7f9;border:1px solid #e5e5ea;border-radius:6px;padding:10px;font-size:12px;line-height:1.3}
.gallery{display:grid;grid-template-columns:repeat(auto-fill,minmax(140px,1fr));gap:12px}
figure.wrong{break-inside:avoid;page-break-inside:avoid}
figure.wrong img{display:block;width:100%;height:auto;image-rendering:pixelated;border:1px solid #ddd}
figure.wrong figcaption,figure.text figcaption{font-size:.85em;color:#444;margin-top:4px}
figure.text{margin:0 0 12px;break-inside:avoid}
figure.text p{margin:0;line-height:1.9}
span.token{padding:1px 2px;border-radius:3px}
@media (max-width:480px){main{padding:6px}section{padding:10px 8px;margin:10px 0}body{font-size:14px}th,td{padding:3px 4px}table{font-size:13px}}
@media print{
 body{background:#fff}
 .banner{display:none}
 main{max-width:none;padding:0}
 section{border:none;padding:0;margin:0 0 12px}
 .charts{grid-template-columns:1fr 1fr}
 svg,figure,.matrix,table{break-inside:avoid;page-break-inside:avoid}
 h2{break-after:avoid;page-break-after:avoid}
}
)css";

}  // namespace

std::string html_escape(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (char c : text) {
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

std::string base64_encode(std::string_view bytes) {
  static constexpr char kAlphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  out.reserve((bytes.size() + 2) / 3 * 4);
  size_t i = 0;
  for (; i + 2 < bytes.size(); i += 3) {
    const uint32_t v = static_cast<uint32_t>(static_cast<unsigned char>(bytes[i])) << 16 |
                       static_cast<uint32_t>(static_cast<unsigned char>(bytes[i + 1])) << 8 |
                       static_cast<unsigned char>(bytes[i + 2]);
    out += kAlphabet[v >> 18 & 63];
    out += kAlphabet[v >> 12 & 63];
    out += kAlphabet[v >> 6 & 63];
    out += kAlphabet[v & 63];
  }
  if (const size_t rest = bytes.size() - i; rest > 0) {
    uint32_t v = static_cast<uint32_t>(static_cast<unsigned char>(bytes[i])) << 16;
    if (rest == 2) v |= static_cast<uint32_t>(static_cast<unsigned char>(bytes[i + 1])) << 8;
    out += kAlphabet[v >> 18 & 63];
    out += kAlphabet[v >> 12 & 63];
    out += rest == 2 ? kAlphabet[v >> 6 & 63] : '=';
    out += '=';
  }
  return out;
}

std::vector<double> ema_smooth(const std::vector<double>& values, double weight) {
  if (!(weight >= 0.0 && weight < 1.0))
    throw ValueError("smoothing: expected a weight in [0, 1), got " + num(weight, "%.6g"));
  // TensorBoard's smoothing (tensorboard/plugins/scalar/.../line_chart: smoothing with debias).
  std::vector<double> out(values.size());
  double last = 0.0;
  int finite = 0;
  for (size_t i = 0; i < values.size(); ++i) {
    if (!std::isfinite(values[i])) {
      out[i] = values[i];
      continue;
    }
    last = last * weight + (1.0 - weight) * values[i];
    ++finite;
    out[i] = last / (1.0 - std::pow(weight, finite));
  }
  return out;
}

Json read_report_json(const std::string& path) {
  Json r = parse_json<IoError>(io::read_file(path), path + ": not valid JSON (expected a report that lamina train "
                                                              "--report wrote)");
  check_report(r, path);
  return r;
}

std::string training_report_html(const Json& r, const HtmlReportOptions& o) {
  check_report(r, "report");
  if (!(o.smoothing >= 0.0 && o.smoothing < 1.0))
    throw ValueError("report: smoothing must be in [0, 1) (TensorBoard's weight), got " + num(o.smoothing, "%.6g"));
  const bool live = r.value("in_progress", false);
  std::string page = "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
                     "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
                     "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; img-src data:; "
                     "style-src 'unsafe-inline'\">";
  if (live) page += "<meta http-equiv=\"refresh\" content=\"5\">";
  page += "<title>" + html_escape(o.title) + "</title><style>" + kCss + "</style></head><body>";
  if (live) {
    // Epochs done so far of all the run will do (a resumed run counts from its checkpoint's epoch).
    int64_t done = r.value("initial_epoch", 0);
    if (r.contains("history") && r["history"].contains("loss")) done += static_cast<int64_t>(r["history"]["loss"].size());
    page += "<div class=\"banner\">training: epoch " + std::to_string(done) + " of " +
            std::to_string(r.value("epochs", done)) + "</div>";
  }
  page += "<main><header><h1>" + html_escape(o.title) + "</h1>";
  std::string sub;
  if (r.contains("spec") && r["spec"].is_string()) sub += html_escape(r["spec"].get<std::string>());
  if (r.contains("test") && r["test"].is_object())
    for (const char* k : {"accuracy", "loss"})
      if (r["test"].contains(k) && r["test"][k].is_number())
        sub += std::string(sub.empty() ? "" : " · ") + "test " + k + " " + num(r["test"][k].get<double>(), "%.4f");
  if (!sub.empty()) page += "<p class=\"sub\">" + sub + "</p>";
  page += "</header>";
  if (r.contains("history")) page += curves(r, o.smoothing);
  page += test_results(r);
  if (r.contains("confusion_matrix")) page += confusion(r, o);
  page += gallery(o);
  page += texts(o);
  page += model_section(r);
  return page + "</main></body></html>\n";
}

}  // namespace lamina
