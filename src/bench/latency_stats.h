// Client-side latency figures of a load run: exact percentiles over all samples.
//
// Percentile definition (nearest rank): for n samples sorted ascending x[1] <= ... <= x[n], the
// p-th percentile (0 < p <= 100) is x[k] with k = ceil(p / 100 * n), clamped to [1, n]; that is,
// the smallest sample such that at least p% of the samples are <= it. It is always one of the
// samples (no interpolation). p = 0 gives the minimum; an empty set gives 0 for every figure.
// Examples for the samples 1..1000: p50 = 500, p99 = 990, p99.9 = 999, p100 = 1000.
#pragma once

#include <cstddef>
#include <nlohmann/json.hpp>
#include <vector>

namespace encserve::bench {

// Nearest-rank percentile of an ascending-sorted vector (see above).
double NearestRank(const std::vector<double>& sorted, double p);

struct LatencySummary {
  size_t count = 0;
  double min = 0, mean = 0, p50 = 0, p90 = 0, p95 = 0, p99 = 0, p999 = 0, max = 0;
};

// Summarises samples (milliseconds); sorts `samples` in place.
LatencySummary Summarize(std::vector<double>& samples);

// {"count", "min_ms", "mean_ms", "p50_ms", "p90_ms", "p95_ms", "p99_ms", "p99_9_ms", "max_ms"}
nlohmann::ordered_json ToJson(const LatencySummary& s);

}  // namespace encserve::bench
