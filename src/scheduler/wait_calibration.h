// WaitCalibration: how far the batcher's queue-budget estimates fall short of what happens.
// For each admitted request the batcher records the ratio of the time until its first batch
// was done (less the other requests' share of that batch's compute, which the estimate does not
// cover: the bound is the budget plus one batch time) to the estimate made when it was admitted;
// Factor() is the 99th percentile of the last 256 ratios, clamped to [1, 4], by which admission
// scales its estimates, so that the budget holds for (about) 99 % of admitted requests whatever
// makes the estimate short (a core shared with the front ends, batches slower under load than
// measured before). Ratios below 1 count too (they lower the percentile); a factor below 1 is never
// used. Not thread-safe: the batcher calls it under its lock.
#pragma once

#include <array>
#include <cstddef>
#include <vector>

namespace encserve::scheduler {

class WaitCalibration {
 public:
  static constexpr size_t kWindow = 256;
  static constexpr double kQuantile = 0.99;
  static constexpr double kMaxFactor = 4.0;

  void Add(double ratio);
  double Factor() const { return factor_; }
  // Whether a request admitted with (unscaled) estimate `estimate_s` under a budget of
  // `budget_s` says how accurate admission is where it decides: estimates from a quarter of the
  // budget up, and at least 5 ms (shorter ones, into an idle or short queue, are noise around one
  // forward pass); above a factor of 2 from half of the most admission accepts (budget /
  // Factor()), so that a high factor, which admits only short estimates, still sees some and can
  // come down again (a quarter of the budget would count none at factor 4).
  bool Counts(double estimate_s, double budget_s) const;
  size_t count() const { return count_; }
  // The ratios in the window, oldest first.
  std::vector<double> Ratios() const;

 private:
  void Recompute();
  std::array<double, kWindow> ring_{};
  size_t count_ = 0, next_ = 0, since_recompute_ = 0;
  double factor_ = 1.0;
};

}  // namespace encserve::scheduler
