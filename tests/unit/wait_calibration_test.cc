// WaitCalibration (scheduler/wait_calibration.h): the factor by which admission scales its
// queue-budget estimates is the 99th percentile of recent actual/estimate ratios, in [1, 4].
#include "scheduler/wait_calibration.h"

#include <gtest/gtest.h>

#include <limits>

namespace encserve::scheduler {
namespace {

TEST(WaitCalibration, StartsAtOneAndNeverGoesBelow) {
  WaitCalibration c;
  EXPECT_EQ(c.Factor(), 1.0);
  for (int i = 0; i < 300; ++i) c.Add(0.5);  // estimates too high: no factor below 1
  EXPECT_EQ(c.Factor(), 1.0);
}

TEST(WaitCalibration, IsTheNinetyNinthPercentileOfTheWindow) {
  WaitCalibration c;
  // 256 ratios 1.00 .. 3.55: the 99th percentile is index round(0.99 * 255) = 252.
  for (int i = 0; i < 256; ++i) c.Add(1.0 + i / 100.0);
  EXPECT_NEAR(c.Factor(), 1.0 + 252 / 100.0, 1e-9);
  EXPECT_EQ(c.count(), WaitCalibration::kWindow);
}

TEST(WaitCalibration, ForgetsOldRatiosAndIsBounded) {
  WaitCalibration c;
  for (int i = 0; i < 256; ++i) c.Add(1.5);
  EXPECT_NEAR(c.Factor(), 1.5, 1e-12);
  for (int i = 0; i < 256; ++i) c.Add(1.1);  // the window moved on
  EXPECT_NEAR(c.Factor(), 1.1, 1e-12);
  for (int i = 0; i < 256; ++i) c.Add(50.0);
  EXPECT_EQ(c.Factor(), WaitCalibration::kMaxFactor);
}

TEST(WaitCalibration, IgnoresNonsense) {
  WaitCalibration c;
  c.Add(0.0);
  c.Add(-2.0);
  c.Add(std::numeric_limits<double>::infinity());
  c.Add(std::numeric_limits<double>::quiet_NaN());
  EXPECT_EQ(c.count(), 0u);
  EXPECT_EQ(c.Factor(), 1.0);
}

TEST(WaitCalibration, FollowsTheFirstRatiosWhileTheWindowFills) {
  WaitCalibration c;
  c.Add(1.3);
  EXPECT_NEAR(c.Factor(), 1.3, 1e-12);
  c.Add(1.2);
  c.Add(1.25);
  EXPECT_NEAR(c.Factor(), 1.3, 1e-12);  // the largest of three is their 99th percentile
}

TEST(WaitCalibration, CountsEstimatesNearWhereAdmissionDecidesAtAnyFactor) {
  WaitCalibration c;
  const double budget = 0.1;
  EXPECT_TRUE(c.Counts(0.025, budget));  // factor 1: from a quarter of the budget
  EXPECT_FALSE(c.Counts(0.024, budget));
  for (int i = 0; i < 256; ++i) c.Add(2.0);
  ASSERT_EQ(c.Factor(), 2.0);
  EXPECT_TRUE(c.Counts(0.025, budget));  // up to factor 2: still a quarter of the budget
  EXPECT_FALSE(c.Counts(0.024, budget));
  EXPECT_FALSE(c.Counts(0.004, 10.0));  // never under 5 ms
  for (int i = 0; i < 256; ++i) c.Add(4.0);
  ASSERT_EQ(c.Factor(), 4.0);
  // At factor 4 admission takes estimates up to 25 ms only: the upper half of those counts,
  // so the ratios of what it admits can bring the factor down again.
  EXPECT_TRUE(c.Counts(0.0125, budget));
  EXPECT_TRUE(c.Counts(0.020, budget));
  EXPECT_FALSE(c.Counts(0.012, budget));
  for (int i = 0; i < 512; ++i) {
    const double estimate = 0.0125 + 0.0005 * (i % 25);  // 12.5..24.5 ms: admitted at factor 4
    if (estimate * c.Factor() <= budget && c.Counts(estimate, budget)) c.Add(1.1);
  }
  EXPECT_NEAR(c.Factor(), 1.1, 1e-12);
}

}  // namespace
}  // namespace encserve::scheduler
