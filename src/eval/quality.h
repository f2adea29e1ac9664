// Quality checks computed by encserve itself, so speed never hides broken accuracy.
#pragma once

#include <vector>

#include "pipeline/pipeline.h"
#include "eval/datasets.h"

namespace encserve::eval {

struct StsResult {
  double spearman = 0;
  double pearson = 0;
  int pairs = 0;
};

// STS-B: cosine of the two sentence embeddings vs the gold score, over all pairs.
StatusOr<StsResult> EvaluateSts(const Pipeline& engine, const std::vector<StsPair>& pairs);

}  // namespace encserve::eval
