#include "bench/latency_stats.h"

#include <algorithm>
#include <cmath>
#include <numeric>

namespace encserve::bench {

double NearestRank(const std::vector<double>& sorted, double p) {
  if (sorted.empty()) return 0;
  const double n = static_cast<double>(sorted.size());
  // The small tolerance keeps e.g. 99.9% of 1000 at rank 999 despite binary rounding.
  const double rank = std::ceil(p / 100.0 * n - 1e-9);
  const size_t k = static_cast<size_t>(std::clamp(rank, 1.0, n));
  return sorted[k - 1];
}

LatencySummary Summarize(std::vector<double>& samples) {
  LatencySummary s;
  s.count = samples.size();
  if (samples.empty()) return s;
  std::sort(samples.begin(), samples.end());
  s.min = samples.front();
  s.max = samples.back();
  s.mean = std::accumulate(samples.begin(), samples.end(), 0.0) / static_cast<double>(s.count);
  s.p50 = NearestRank(samples, 50);
  s.p90 = NearestRank(samples, 90);
  s.p95 = NearestRank(samples, 95);
  s.p99 = NearestRank(samples, 99);
  s.p999 = NearestRank(samples, 99.9);
  return s;
}

nlohmann::ordered_json ToJson(const LatencySummary& s) {
  nlohmann::ordered_json j;
  j["count"] = s.count;
  j["min_ms"] = s.min;
  j["mean_ms"] = s.mean;
  j["p50_ms"] = s.p50;
  j["p90_ms"] = s.p90;
  j["p95_ms"] = s.p95;
  j["p99_ms"] = s.p99;
  j["p99_9_ms"] = s.p999;
  j["max_ms"] = s.max;
  return j;
}

}  // namespace encserve::bench
