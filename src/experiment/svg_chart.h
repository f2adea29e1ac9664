// A small, dependency-free SVG line-chart writer for experiment reports. The output is
// deterministic (fixed number formatting, fixed palette, no timestamps) so it can be
// golden-tested and diffed in review.
#pragma once

#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace encserve::experiment {

struct ChartSeries {
  std::string name;                               // legend entry
  std::vector<std::pair<double, double>> points;  // (x, y), drawn in this order
};

struct ChartOptions {
  std::string title;
  std::string x_label;
  std::string y_label;
  bool log_x = false;  // points with x <= 0 are dropped on a log axis
  int width = 720;
  int height = 420;
};

// The whole SVG document ("<svg ...>...</svg>\n"). Series without points are listed in the
// legend only; with no points at all the plot says "no data".
std::string RenderLineChart(const ChartOptions& options, const std::vector<ChartSeries>& series);

// Fixed-point with `decimals` digits ("%.*f"), "-0" normalised to "0".
std::string FormatFixed(double value, int decimals);
// Short tick label: fixed-point with trailing zeros (and a trailing '.') removed.
std::string FormatTick(double value);
// Escapes & < > " ' for markup text and attributes, ' as `apostrophe`.
std::string EscapeMarkup(const std::string& text, std::string_view apostrophe);
// EscapeMarkup for XML (' as &apos;).
std::string XmlEscape(const std::string& text);

}  // namespace encserve::experiment
