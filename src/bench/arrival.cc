#include "bench/arrival.h"

#include <cmath>
#include <memory>

namespace encserve::bench {

PoissonArrivals::PoissonArrivals(double rate_per_s, std::function<double()> uniform01)
    : rate_(rate_per_s), uniform01_(std::move(uniform01)) {}

PoissonArrivals::PoissonArrivals(double rate_per_s, uint64_t seed) : rate_(rate_per_s) {
  auto rng = std::make_shared<std::mt19937_64>(seed);
  // 53 random bits -> [0, 1), the same on every platform (unlike std::uniform_real_distribution).
  uniform01_ = [rng] { return static_cast<double>((*rng)() >> 11) * 0x1.0p-53; };
}

double PoissonArrivals::NextGap() {
  return -std::log1p(-uniform01_()) / rate_;
}

double PoissonArrivals::Next() {
  t_ += NextGap();
  return t_;
}

std::vector<double> PoissonSchedule(double rate_per_s, size_t n, uint64_t seed) {
  PoissonArrivals a(rate_per_s, seed);
  std::vector<double> t(n);
  for (auto& x : t) x = a.Next();
  return t;
}

}  // namespace encserve::bench
