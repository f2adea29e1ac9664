#include "eval/quality.h"

#include "eval/metrics.h"

namespace encserve::eval {

StatusOr<StsResult> EvaluateSts(const Pipeline& engine, const std::vector<StsPair>& pairs) {
  if (pairs.empty()) return InvalidArgument("no STS pairs");
  std::vector<TextPair> text_pairs;
  std::vector<double> gold;
  for (const StsPair& p : pairs) {
    text_pairs.emplace_back(p.a, p.b);
    gold.push_back(p.score);
  }
  std::vector<double> predicted;
  if (engine.config().kind == ModelKind::kEmbedding) {
    ASSIGN_OR_RETURN(std::vector<float> scores, engine.Score(text_pairs));
    predicted.assign(scores.begin(), scores.end());
  } else {
    return FailedPrecondition("STS-B evaluation needs an embedding model");
  }
  StsResult r;
  r.pairs = static_cast<int>(pairs.size());
  r.spearman = Spearman(predicted, gold);
  r.pearson = Pearson(predicted, gold);
  return r;
}

}  // namespace encserve::eval
