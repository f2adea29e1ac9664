#include "scheduler/wait_calibration.h"

#include <algorithm>
#include <cmath>
#include <vector>

namespace encserve::scheduler {

void WaitCalibration::Add(double ratio) {
  if (!std::isfinite(ratio) || ratio <= 0) return;
  ring_[next_] = ratio;
  next_ = (next_ + 1) % kWindow;
  count_ = std::min(count_ + 1, kWindow);
  // Every 8 ratios (and for each of the first 32, while the window fills).
  if (++since_recompute_ >= 8 || count_ <= 32) Recompute();
}

bool WaitCalibration::Counts(double estimate_s, double budget_s) const {
  return estimate_s >= std::max(0.005, std::min(0.25, 0.5 / factor_) * budget_s);
}

std::vector<double> WaitCalibration::Ratios() const {
  std::vector<double> out;
  out.reserve(count_);
  const size_t first = count_ < kWindow ? 0 : next_;
  for (size_t i = 0; i < count_; ++i) out.push_back(ring_[(first + i) % kWindow]);
  return out;
}

void WaitCalibration::Recompute() {
  since_recompute_ = 0;
  std::vector<double> v(ring_.begin(), ring_.begin() + static_cast<std::ptrdiff_t>(count_));
  const size_t k = static_cast<size_t>(kQuantile * static_cast<double>(v.size() - 1) + 0.5);
  std::nth_element(v.begin(), v.begin() + static_cast<std::ptrdiff_t>(k), v.end());
  factor_ = std::clamp(v[k], 1.0, kMaxFactor);
}

}  // namespace encserve::scheduler
