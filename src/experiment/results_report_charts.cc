// The SVG charts of one run, from the grouped points (failed repeats left out).
#include <algorithm>
#include <map>
#include <set>
#include <tuple>

#include "experiment/results_report.h"

namespace encserve::experiment {
namespace {

struct Layout {
  bool x_is_rate = false;  // open-loop sweep at one concurrency: x = offered rate
  bool varies_rate = false, varies_wait = false;
  std::string x_label;
};

Layout LayoutFor(const std::vector<PointGroup>& groups) {
  std::set<int> conc;
  std::set<double> rates;
  std::set<long> waits;
  bool all_rate = true;
  for (const PointGroup& g : groups) {
    conc.insert(g.concurrency);
    rates.insert(g.rate.value_or(-1));
    waits.insert(g.max_wait_us);
    all_rate = all_rate && g.rate.has_value();
  }
  Layout l;
  l.varies_rate = rates.size() > 1;
  l.varies_wait = waits.size() > 1;
  l.x_is_rate = conc.size() <= 1 && l.varies_rate && all_rate;
  l.x_label = l.x_is_rate ? "offered rate (requests/s)" : "concurrency (requests in flight)";
  return l;
}

// Variant ("" without model.variants), batch size, rate (-1), max wait (-1).
using SeriesKey = std::tuple<std::string, int, double, long>;

SeriesKey KeyOf(const PointGroup& g, const Layout& l) {
  const double rate = l.varies_rate && !l.x_is_rate ? g.rate.value_or(-1) : -1;
  return {g.variant, g.batch_size, rate, l.varies_wait ? g.max_wait_us : -1};
}

std::string NameOf(const SeriesKey& k) {
  std::string s = std::get<0>(k).empty() ? "" : std::get<0>(k) + " ";
  s += "b=" + std::to_string(std::get<1>(k));
  if (std::get<2>(k) >= 0) s += " rate=" + FormatTick(std::get<2>(k)) + "/s";
  if (std::get<3>(k) >= 0) s += " wait=" + std::to_string(std::get<3>(k)) + "us";
  return s;
}

double XOf(const PointGroup& g, const Layout& l) {
  return l.x_is_rate ? g.rate.value_or(0) : g.concurrency;
}

// Good groups per series, each series ordered by x.
std::map<SeriesKey, std::vector<PointGroup>> BySeries(const std::vector<PointGroup>& groups,
                                                      const Layout& l) {
  std::map<SeriesKey, std::vector<PointGroup>> out;
  for (const PointGroup& g : groups) {
    if (g.ok()) out[KeyOf(g, l)].push_back(g);
  }
  for (auto& [k, v] : out) {
    std::stable_sort(v.begin(), v.end(), [&](const PointGroup& a, const PointGroup& b) {
      return XOf(a, l) < XOf(b, l);
    });
  }
  return out;
}

bool WantLogX(const std::map<SeriesKey, std::vector<PointGroup>>& series, const Layout& l) {
  double lo = 0, hi = 0;
  bool first = true;
  for (const auto& [k, v] : series) {
    for (const PointGroup& g : v) {
      const double x = XOf(g, l);
      lo = first ? x : std::min(lo, x);
      hi = first ? x : std::max(hi, x);
      first = false;
    }
  }
  return !first && lo > 0 && hi / lo >= 8;
}

std::string Title(const nlohmann::json& r, const std::string& what) {
  const std::string name = JsonString(r, "name");
  return name.empty() ? what : name + ": " + what;
}

std::string ItemsName(const nlohmann::json& r) {
  const std::string items = JsonString(r, "items_name");
  return items.empty() ? "items" : items;
}

}  // namespace

std::string ThroughputSvg(const nlohmann::json& results) {
  const auto groups = GroupPoints(results);
  const Layout l = LayoutFor(groups);
  const auto by = BySeries(groups, l);
  std::vector<ChartSeries> series;
  for (const auto& [k, v] : by) {
    ChartSeries s{NameOf(k), {}};
    for (const PointGroup& g : v) s.points.emplace_back(XOf(g, l), g.items_per_s);
    series.push_back(std::move(s));
  }
  ChartOptions o;
  o.title = Title(results, "throughput");
  o.x_label = l.x_label;
  o.y_label = ItemsName(results) + "/s";
  o.log_x = WantLogX(by, l);
  return RenderLineChart(o, series);
}

std::string LatencySvg(const nlohmann::json& results) {
  const auto groups = GroupPoints(results);
  const Layout l = LayoutFor(groups);
  const auto by = BySeries(groups, l);
  std::vector<ChartSeries> series;
  for (const auto& [k, v] : by) {
    ChartSeries p50{NameOf(k) + " p50", {}}, p95{NameOf(k) + " p95", {}},
        p99{NameOf(k) + " p99", {}};
    for (const PointGroup& g : v) {
      p50.points.emplace_back(XOf(g, l), g.p50_ms);
      p95.points.emplace_back(XOf(g, l), g.p95_ms);
      p99.points.emplace_back(XOf(g, l), g.p99_ms);
    }
    series.push_back(std::move(p50));
    series.push_back(std::move(p95));
    series.push_back(std::move(p99));
  }
  ChartOptions o;
  o.title = Title(results, "latency (p50 / p95 / p99)");
  o.x_label = l.x_label;
  o.y_label = "latency (ms)";
  o.log_x = WantLogX(by, l);
  return RenderLineChart(o, series);
}

std::string TradeoffSvg(const nlohmann::json& results) {
  const auto groups = GroupPoints(results);
  const Layout l = LayoutFor(groups);
  std::vector<ChartSeries> series;
  for (const auto& [k, v] : BySeries(groups, l)) {
    ChartSeries s{NameOf(k), {}};  // ordered by concurrency (or rate): the load rises along it
    for (const PointGroup& g : v) s.points.emplace_back(g.p50_ms, g.items_per_s);
    series.push_back(std::move(s));
  }
  ChartOptions o;
  o.title = Title(results, "throughput vs latency");
  o.x_label = "p50 latency (ms)";
  o.y_label = ItemsName(results) + "/s";
  return RenderLineChart(o, series);
}

}  // namespace encserve::experiment
