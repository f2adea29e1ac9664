// Open-loop arrival schedules: a Poisson process of rate lambda (exponential inter-arrival
// times with mean 1/lambda), drawn from an injectable uniform source so runs are reproducible.
#pragma once

#include <cstdint>
#include <functional>
#include <random>
#include <vector>

namespace encserve::bench {

class PoissonArrivals {
 public:
  // `uniform01` returns draws in [0, 1).
  PoissonArrivals(double rate_per_s, std::function<double()> uniform01);
  // Seeded std::mt19937_64: the same seed gives the same schedule.
  PoissonArrivals(double rate_per_s, uint64_t seed);

  // Seconds from the start of the run to the next arrival; non-decreasing.
  double Next();
  // One inter-arrival gap in seconds (-ln(1 - u) / rate).
  double NextGap();

  double rate() const { return rate_; }

 private:
  double rate_;
  std::function<double()> uniform01_;
  double t_ = 0;
};

// The first `n` arrival times (seconds from the start) of a seeded Poisson process.
std::vector<double> PoissonSchedule(double rate_per_s, size_t n, uint64_t seed);

}  // namespace encserve::bench
