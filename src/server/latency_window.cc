#include "server/latency_window.h"

#include <algorithm>
#include <cmath>

namespace encserve::server {

LatencyWindow::LatencyWindow(size_t max_samples, Clock clock, uint64_t seed)
    : max_samples_(std::max<size_t>(max_samples, 1)),
      clock_(std::move(clock)),
      start_(clock_()),
      rng_(seed) {}

void LatencyWindow::Record(double ms) {
  if (!(ms >= 0)) return;
  std::lock_guard lock(mu_);
  ++count_;
  sum_ms_ += ms;
  if (samples_.size() < max_samples_) {
    samples_.push_back(ms);
    return;
  }
  // Algorithm R: the count_-th value replaces a random slot with probability max_samples/count_.
  const uint64_t j = std::uniform_int_distribution<uint64_t>(0, uint64_t(count_) - 1)(rng_);
  if (j < max_samples_) samples_[j] = ms;
}

void LatencyWindow::Reset() {
  const auto now = clock_();
  std::lock_guard lock(mu_);
  start_ = now;
  samples_.clear();
  samples_.shrink_to_fit();
  count_ = 0;
  sum_ms_ = 0;
}

double LatencyWindow::NearestRank(const std::vector<double>& sorted, int p_tenths) {
  if (sorted.empty()) return 0;
  const uint64_t n = sorted.size();
  uint64_t rank = (uint64_t(p_tenths) * n + 999) / 1000;  // ceil(p/100 × n)
  rank = std::clamp<uint64_t>(rank, 1, n);
  return sorted[rank - 1];
}

LatencySnapshot LatencyWindow::Snapshot() const {
  const auto now = clock_();
  std::vector<double> samples;
  LatencySnapshot s;
  std::chrono::steady_clock::time_point start;
  {
    std::lock_guard lock(mu_);
    samples = samples_;
    s.count = count_;
    s.avg_ms = count_ > 0 ? sum_ms_ / double(count_) : 0;
    start = start_;
  }
  s.exact = uint64_t(s.count) == samples.size();
  // Selection instead of a full sort: each nth_element narrows the range for the next one.
  auto select = [&samples](int p_tenths, size_t from) -> size_t {
    if (samples.empty()) return 0;
    const uint64_t n = samples.size();
    const size_t k = std::clamp<uint64_t>((uint64_t(p_tenths) * n + 999) / 1000, 1, n) - 1;
    std::nth_element(samples.begin() + from, samples.begin() + k, samples.end());
    return k;
  };
  const size_t k50 = select(500, 0);
  const size_t k95 = select(950, k50);
  const size_t k99 = select(990, k95);
  if (!samples.empty()) {
    s.p50_ms = samples[k50];
    s.p95_ms = samples[k95];
    s.p99_ms = samples[k99];
  }
  const double seconds = std::chrono::duration<double>(now - start).count();
  s.throughput_rps = seconds > 0 ? double(s.count) / seconds : 0;
  return s;
}

}  // namespace encserve::server
