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
  // Selection instead of a full sort. After nth_element places rank k, everything behind it is
  // >= it, so the next (higher) rank is selected among the elements after k only.
  if (!samples.empty()) {
    const uint64_t n = samples.size();
    size_t done = 0;  // elements [0, done) are final
    double* out[] = {&s.p50_ms, &s.p95_ms, &s.p99_ms};
    const int p_tenths[] = {500, 950, 990};
    for (int i = 0; i < 3; ++i) {
      const size_t k = std::clamp<uint64_t>((uint64_t(p_tenths[i]) * n + 999) / 1000, 1, n) - 1;
      if (k >= done) {
        std::nth_element(samples.begin() + done, samples.begin() + k, samples.end());
        done = k + 1;
      }
      *out[i] = samples[k];
    }
  }
  const double seconds = std::chrono::duration<double>(now - start).count();
  s.throughput_rps = seconds > 0 ? double(s.count) / seconds : 0;
  return s;
}

}  // namespace encserve::server
