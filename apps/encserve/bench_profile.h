// bench-engine's efficiency and op profile: the model's multiply-adds per second as a share of
// the measured peak of the instruction its GEMMs use (kernels/peak.h), and where the time goes
// (core/op_profile.h).
#pragma once

#include <nlohmann/json.hpp>
#include <vector>

#include "pipeline/pipeline.h"

namespace encserve::app {

// The peak the run is measured against, on `threads` threads at once. Measure() runs the probe
// (about 10 ms per call); the efficiency uses the mean of the calls made before and after the
// timed run, so that a clock that drifts during the run is seen from both ends.
class PeakMeter {
 public:
  PeakMeter(const Pipeline& pipeline, int threads);
  bool available() const { return probe_ != nullptr; }
  void Measure();
  // Prints "efficiency: ..." and adds its fields to j; model_flops per second of the run.
  void Report(double model_flops_per_s, nlohmann::ordered_json* j) const;

 private:
  const void* probe_ = nullptr;  // kernels::PeakProbe
  int threads_;
  std::vector<double> samples_;
  std::string why_none_;
};

// Prints the op profile table (self time per op, share, GFLOP/s where counted) and adds it to j.
void ReportOpProfile(double wall_ms, nlohmann::ordered_json* j);

}  // namespace encserve::app
