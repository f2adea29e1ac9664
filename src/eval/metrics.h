// Correlation metrics for quality checks (STS-B).
#pragma once

#include <vector>

namespace encserve::eval {

// Pearson correlation; 0 when either side is constant.
double Pearson(const std::vector<double>& x, const std::vector<double>& y);
// Spearman rank correlation: Pearson on fractional (tie-averaged) ranks, as scipy computes it.
double Spearman(const std::vector<double>& x, const std::vector<double>& y);
// Fractional ranks (1-based, ties get their average rank).
std::vector<double> Ranks(const std::vector<double>& x);

}  // namespace encserve::eval
