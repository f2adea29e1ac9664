// SVG line charts: linear or log-10 x axis, linear y axis from zero, legend on the right.
#include "experiment/svg_chart.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <limits>
#include <sstream>

namespace encserve::experiment {
namespace {

constexpr const char* kPalette[] = {"#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd",
                                    "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf"};
constexpr int kPaletteSize = sizeof(kPalette) / sizeof(kPalette[0]);
// Dash patterns cycle after the colours so that series 11+ still differ.
constexpr const char* kDashes[] = {"", "6,3", "2,3"};

// A "nice" step (1, 2 or 5 times a power of ten) giving about `target` intervals over `range`.
double NiceStep(double range, int target) {
  const double raw = range / target;
  const double mag = std::pow(10.0, std::floor(std::log10(raw)));
  const double frac = raw / mag;
  const double nice = frac <= 1.0 ? 1.0 : frac <= 2.0 ? 2.0 : frac <= 5.0 ? 5.0 : 10.0;
  return nice * mag;
}

struct Axis {
  double lo = 0, hi = 1;      // in axis units (log10(x) on a log axis)
  std::vector<double> ticks;  // in data units
  bool log = false;
  double Map(double v) const { return log ? std::log10(v) : v; }
};

Axis LinearAxis(double lo, double hi, bool from_zero) {
  if (from_zero && lo > 0) lo = 0;
  if (!(hi > lo)) {
    const double pad = lo == 0 ? 1.0 : std::fabs(lo) * 0.5;
    lo -= from_zero && lo == 0 ? 0 : pad;
    hi += pad;
  }
  Axis a;
  const double step = NiceStep(hi - lo, 5);
  a.lo = std::floor(lo / step + 1e-9) * step;
  a.hi = std::ceil(hi / step - 1e-9) * step;
  for (int i = 0;; ++i) {
    const double t = a.lo + i * step;
    if (t > a.hi + step * 1e-6) break;
    a.ticks.push_back(std::fabs(t) < step * 1e-9 ? 0.0 : t);
  }
  return a;
}

Axis LogAxis(double lo, double hi) {
  Axis a;
  a.log = true;
  a.lo = std::log10(lo);
  a.hi = std::log10(hi);
  if (!(a.hi > a.lo)) {
    a.lo -= 0.5;
    a.hi += 0.5;
  }
  for (int pass = 0; pass < 2; ++pass) {
    a.ticks.clear();
    for (int k = int(std::floor(a.lo)); k <= int(std::ceil(a.hi)); ++k) {
      for (double m : {1.0, 2.0, 5.0}) {
        if (pass == 1 && m != 1.0) continue;
        const double t = m * std::pow(10.0, k);
        const double lt = std::log10(t);
        if (lt >= a.lo - 1e-9 && lt <= a.hi + 1e-9) a.ticks.push_back(t);
      }
    }
    if (a.ticks.size() <= 10) break;
  }
  if (a.ticks.size() < 2) a.ticks = {std::pow(10.0, a.lo), std::pow(10.0, a.hi)};
  return a;
}

std::string F1(double v) {
  return FormatFixed(v, 1);
}

}  // namespace

std::string FormatFixed(double value, int decimals) {
  if (!std::isfinite(value)) return std::isnan(value) ? "nan" : (value > 0 ? "inf" : "-inf");
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.*f", decimals, value);
  std::string s = buf;
  if (s[0] == '-' && s.find_first_not_of("-0.") == std::string::npos) s.erase(0, 1);
  return s;
}

std::string FormatTick(double value) {
  std::string s = FormatFixed(value, 6);
  if (s.find('.') != std::string::npos) {
    s.erase(s.find_last_not_of('0') + 1);
    if (s.back() == '.') s.pop_back();
  }
  return s == "-0" ? "0" : s;
}

std::string EscapeMarkup(const std::string& text, std::string_view apostrophe) {
  std::string out;
  out.reserve(text.size());
  for (char c : text) {
    switch (c) {
      case '&':
        out += "&amp;";
        break;
      case '<':
        out += "&lt;";
        break;
      case '>':
        out += "&gt;";
        break;
      case '"':
        out += "&quot;";
        break;
      case '\'':
        out += apostrophe;
        break;
      default:
        out += c;
    }
  }
  return out;
}

std::string XmlEscape(const std::string& text) {
  return EscapeMarkup(text, "&apos;");
}

std::string RenderLineChart(const ChartOptions& options, const std::vector<ChartSeries>& series) {
  const double w = options.width, h = options.height;
  const double left = 72, right = w - 180, top = 44, bottom = h - 56;

  // Usable points per series (log axis: x > 0) and the data ranges.
  std::vector<std::vector<std::pair<double, double>>> pts(series.size());
  double xmin = std::numeric_limits<double>::infinity(), xmax = -xmin;
  double ymin = xmin, ymax = -xmin;
  for (size_t i = 0; i < series.size(); ++i) {
    for (const auto& [x, y] : series[i].points) {
      if (!std::isfinite(x) || !std::isfinite(y) || (options.log_x && x <= 0)) continue;
      pts[i].emplace_back(x, y);
      xmin = std::min(xmin, x);
      xmax = std::max(xmax, x);
      ymin = std::min(ymin, y);
      ymax = std::max(ymax, y);
    }
  }
  const bool empty = !std::isfinite(xmin);
  if (empty) xmin = options.log_x ? 1 : 0, xmax = options.log_x ? 10 : 1, ymin = 0, ymax = 1;
  const Axis xa = options.log_x ? LogAxis(xmin, xmax) : LinearAxis(xmin, xmax, false);
  const Axis ya = LinearAxis(ymin, ymax, ymin >= 0);
  auto px = [&](double x) { return left + (xa.Map(x) - xa.lo) / (xa.hi - xa.lo) * (right - left); };
  auto py = [&](double y) { return bottom - (y - ya.lo) / (ya.hi - ya.lo) * (bottom - top); };

  std::ostringstream o;
  o << "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"" << options.width << "\" height=\""
    << options.height << "\" viewBox=\"0 0 " << options.width << " " << options.height
    << "\" font-family=\"sans-serif\" font-size=\"12\">\n";
  o << "<rect x=\"0\" y=\"0\" width=\"" << options.width << "\" height=\"" << options.height
    << "\" fill=\"white\"/>\n";
  o << "<text x=\"" << F1((left + right) / 2) << "\" y=\"24\" text-anchor=\"middle\" "
    << "font-size=\"15\" font-weight=\"bold\">" << XmlEscape(options.title) << "</text>\n";

  // Grid, ticks and tick labels.
  o << "<g class=\"grid\" stroke=\"#e0e0e0\" stroke-width=\"1\">\n";
  for (double t : xa.ticks) {
    o << "<line x1=\"" << F1(px(t)) << "\" y1=\"" << F1(top) << "\" x2=\"" << F1(px(t))
      << "\" y2=\"" << F1(bottom) << "\"/>\n";
  }
  for (double t : ya.ticks) {
    o << "<line x1=\"" << F1(left) << "\" y1=\"" << F1(py(t)) << "\" x2=\"" << F1(right)
      << "\" y2=\"" << F1(py(t)) << "\"/>\n";
  }
  o << "</g>\n<g class=\"axes\" stroke=\"black\" stroke-width=\"1\">\n";
  o << "<line x1=\"" << F1(left) << "\" y1=\"" << F1(bottom) << "\" x2=\"" << F1(right)
    << "\" y2=\"" << F1(bottom) << "\"/>\n";
  o << "<line x1=\"" << F1(left) << "\" y1=\"" << F1(top) << "\" x2=\"" << F1(left) << "\" y2=\""
    << F1(bottom) << "\"/>\n</g>\n";
  o << "<g class=\"ticks\">\n";
  for (double t : xa.ticks) {
    o << "<text x=\"" << F1(px(t)) << "\" y=\"" << F1(bottom + 16) << "\" text-anchor=\"middle\">"
      << FormatTick(t) << "</text>\n";
  }
  for (double t : ya.ticks) {
    o << "<text x=\"" << F1(left - 6) << "\" y=\"" << F1(py(t) + 4) << "\" text-anchor=\"end\">"
      << FormatTick(t) << "</text>\n";
  }
  o << "</g>\n";
  o << "<text x=\"" << F1((left + right) / 2) << "\" y=\"" << F1(h - 14)
    << "\" text-anchor=\"middle\">" << XmlEscape(options.x_label)
    << (options.log_x ? " (log scale)" : "") << "</text>\n";
  o << "<text x=\"16\" y=\"" << F1((top + bottom) / 2) << "\" text-anchor=\"middle\" "
    << "transform=\"rotate(-90 16 " << F1((top + bottom) / 2) << ")\">"
    << XmlEscape(options.y_label) << "</text>\n";
  if (empty) {
    o << "<text x=\"" << F1((left + right) / 2) << "\" y=\"" << F1((top + bottom) / 2)
      << "\" text-anchor=\"middle\" fill=\"#888\">no data</text>\n";
  }

  // Series and legend.
  for (size_t i = 0; i < series.size(); ++i) {
    const char* color = kPalette[i % kPaletteSize];
    const char* dash = kDashes[(i / kPaletteSize) % 3];
    o << "<g class=\"series\" data-name=\"" << XmlEscape(series[i].name) << "\">\n";
    if (pts[i].size() > 1) {
      o << "<polyline fill=\"none\" stroke=\"" << color << "\" stroke-width=\"2\"";
      if (*dash) o << " stroke-dasharray=\"" << dash << "\"";
      o << " points=\"";
      for (size_t k = 0; k < pts[i].size(); ++k) {
        o << (k ? " " : "") << F1(px(pts[i][k].first)) << "," << F1(py(pts[i][k].second));
      }
      o << "\"/>\n";
    }
    for (const auto& [x, y] : pts[i]) {
      o << "<circle cx=\"" << F1(px(x)) << "\" cy=\"" << F1(py(y)) << "\" r=\"3\" fill=\"" << color
        << "\"/>\n";
    }
    const double ly = top + 8 + 18 * double(i);
    o << "<line x1=\"" << F1(right + 14) << "\" y1=\"" << F1(ly) << "\" x2=\"" << F1(right + 38)
      << "\" y2=\"" << F1(ly) << "\" stroke=\"" << color << "\" stroke-width=\"2\"";
    if (*dash) o << " stroke-dasharray=\"" << dash << "\"";
    o << "/>\n<text x=\"" << F1(right + 44) << "\" y=\"" << F1(ly + 4) << "\">"
      << XmlEscape(series[i].name) << "</text>\n</g>\n";
  }
  o << "</svg>\n";
  return o.str();
}

}  // namespace encserve::experiment
