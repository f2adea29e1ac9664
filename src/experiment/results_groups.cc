// The point grouping behind every best-of line, chart and analysis figure: points of the same
// setting are one group, failed repeats left out of its means.
#include <algorithm>
#include <cmath>
#include <limits>

#include "experiment/results_report.h"

namespace encserve::experiment {
namespace {

using nlohmann::json;
constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

double Mean(const std::vector<double>& v) {
  if (v.empty()) return kNaN;
  double s = 0;
  for (double x : v) s += x;
  return s / double(v.size());
}

}  // namespace

bool PointFailed(const json& point) {
  const double ok = JsonNumber(point, "ok");
  const double errors = JsonNumber(point, "errors");
  return !(ok > 0) || errors > 0;
}

std::vector<PointGroup> GroupPoints(const json& results) {
  std::vector<PointGroup> groups;
  std::vector<std::vector<const json*>> members;
  const json& points = Sub(results, "points");
  if (!points.is_array()) return groups;
  for (const json& p : points) {
    PointGroup key;
    key.variant = JsonString(p, "variant");
    key.batch_size = int(JsonNumber(p, "batch_size"));
    key.concurrency = int(JsonNumber(p, "concurrency"));
    const double rate = JsonNumber(p, "rate");
    if (!std::isnan(rate) && rate > 0) key.rate = rate;
    const double wait = JsonNumber(p, "max_wait_us");
    key.max_wait_us = std::isnan(wait) ? 0 : long(wait);
    size_t i = 0;
    for (; i < groups.size(); ++i) {
      const PointGroup& g = groups[i];
      if (g.variant == key.variant && g.batch_size == key.batch_size &&
          g.concurrency == key.concurrency && g.rate == key.rate &&
          g.max_wait_us == key.max_wait_us) {
        break;
      }
    }
    if (i == groups.size()) {
      groups.push_back(key);
      members.emplace_back();
    }
    members[i].push_back(&p);
  }
  for (size_t i = 0; i < groups.size(); ++i) {
    PointGroup& g = groups[i];
    std::vector<double> ips, p50, p95, p99, sb;
    for (const json* p : members[i]) {
      ++g.repeats;
      const double e = JsonNumber(*p, "errors");
      if (!std::isnan(e)) g.errors += long(e);
      if (PointFailed(*p)) {
        ++g.failed_repeats;
        continue;
      }
      const json& lat = Sub(*p, "latency_ms");
      ips.push_back(JsonNumber(*p, "items_per_s"));
      p50.push_back(JsonNumber(lat, "p50"));
      p95.push_back(JsonNumber(lat, "p95"));
      p99.push_back(JsonNumber(lat, "p99"));
      const double b = JsonNumber(*p, "server_batch_size_mean");
      if (!std::isnan(b)) sb.push_back(b);
    }
    g.items_per_s = Mean(ips);
    g.p50_ms = Mean(p50);
    g.p95_ms = Mean(p95);
    g.p99_ms = Mean(p99);
    g.server_batch_size_mean = Mean(sb);
    g.spread_pct = kNaN;
    if (ips.size() >= 2 && g.items_per_s > 0) {
      const auto [lo, hi] = std::minmax_element(ips.begin(), ips.end());
      g.spread_pct = (*hi - *lo) / g.items_per_s * 100.0;
    }
  }
  return groups;
}

std::optional<PointGroup> BestThroughput(const std::vector<PointGroup>& groups) {
  std::optional<PointGroup> best;
  for (const PointGroup& g : groups) {
    if (g.ok() && g.items_per_s > 0 && (!best || g.items_per_s > best->items_per_s)) best = g;
  }
  return best;
}

std::optional<PointGroup> BestLatency(const std::vector<PointGroup>& groups) {
  std::optional<PointGroup> best;
  for (const PointGroup& g : groups) {
    if (g.ok() && g.p50_ms > 0 && (!best || g.p50_ms < best->p50_ms)) best = g;
  }
  return best;
}

std::optional<PointGroup> BatchOneLatency(const std::vector<PointGroup>& groups) {
  std::vector<PointGroup> b1;
  for (const PointGroup& g : groups) {
    if (g.batch_size == 1 && g.concurrency == 1) b1.push_back(g);
  }
  return BestLatency(b1);
}

std::string GroupLabel(const PointGroup& g) {
  std::string s = (g.variant.empty() ? "" : g.variant + " ") + "b=" + std::to_string(g.batch_size) +
                  " c=" + std::to_string(g.concurrency);
  if (g.rate) s += " rate=" + FormatTick(*g.rate) + "/s";
  if (g.max_wait_us > 0) s += " wait=" + std::to_string(g.max_wait_us) + "us";
  return s;
}

}  // namespace encserve::experiment
