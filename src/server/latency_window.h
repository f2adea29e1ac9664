// LatencyWindow: latencies of successful requests since the window began (server start or
// Reset()), for the seed-compatible GetMetrics RPC.
//
// Percentile definition (nearest rank): with the N samples sorted ascending x_1 <= ... <= x_N,
// the p-th percentile is x_r with r = ceil(p/100 × N) (r >= 1), computed in integer arithmetic;
// it is always an observed value. For 1..100: p50 = 50, p95 = 95, p99 = 99.
//
// Memory is bounded: the first `max_samples` latencies are all kept, so percentiles are exact
// while count <= max_samples (default 1,000,000: 8 MB). After that the window keeps a uniform
// random sample of max_samples of all latencies seen (reservoir sampling, Vitter's Algorithm R)
// and percentiles are those of the sample: the rank error has standard deviation
// sqrt(q(1−q)/max_samples) in quantile terms (about 0.0001 for p99 at 1M, i.e. the p99 lies
// between the true p98.98 and p99.02 in 95% of cases). count, avg_ms and throughput_rps are
// always exact. `exact` in the snapshot says which case holds.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <mutex>
#include <random>
#include <vector>

namespace encserve::server {

struct LatencySnapshot {
  int64_t count = 0;  // successful requests recorded in the window
  double avg_ms = 0;
  double p50_ms = 0, p95_ms = 0, p99_ms = 0;  // 0 when count == 0
  double throughput_rps = 0;                  // count / seconds since the window began
  bool exact = true;                          // false once the reservoir is sampling
};

class LatencyWindow {
 public:
  using Clock = std::function<std::chrono::steady_clock::time_point()>;
  static constexpr size_t kDefaultMaxSamples = 1'000'000;

  // The window begins now (per `clock`).
  explicit LatencyWindow(size_t max_samples = kDefaultMaxSamples,
                         Clock clock = &std::chrono::steady_clock::now, uint64_t seed = 0x5eed);

  // Thread-safe. NaN or negative latencies are ignored.
  void Record(double ms);
  // Empties the window and restarts it now.
  void Reset();
  // Thread-safe; sorting runs on a copy, outside the lock.
  LatencySnapshot Snapshot() const;

  // Nearest-rank percentile (see above) of `sorted` (ascending); p in (0, 100] given in tenths
  // (p50 = 500, p99.9 = 999). 0 for an empty vector.
  static double NearestRank(const std::vector<double>& sorted, int p_tenths);

 private:
  const size_t max_samples_;
  const Clock clock_;
  mutable std::mutex mu_;
  std::chrono::steady_clock::time_point start_;
  std::vector<double> samples_;
  int64_t count_ = 0;
  double sum_ms_ = 0;
  std::mt19937_64 rng_;
};

}  // namespace encserve::server
