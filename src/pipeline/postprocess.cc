#include "pipeline/postprocess.h"

#include <algorithm>
#include <cmath>
#include <numeric>
#include <string_view>
#include <unordered_map>

#include "core/op_profile.h"
#include "model/ops.h"

namespace encserve {

float PairScore(const float* logits, int num_labels, ScoreActivation activation) {
  if (activation == ScoreActivation::kRaw) return logits[num_labels - 1];
  if (num_labels == 1) return 1.0f / (1.0f + std::exp(-logits[0]));
  const float mx = *std::max_element(logits, logits + num_labels);
  double sum = 0;
  for (int j = 0; j < num_labels; ++j) sum += std::exp(logits[j] - mx);
  return static_cast<float>(std::exp(logits[num_labels - 1] - mx) / sum);
}

std::vector<float> PairScores(const Embeddings& logits, ScoreActivation activation) {
  std::vector<float> scores(logits.rows);
  for (int i = 0; i < logits.rows; ++i)
    scores[i] = PairScore(logits.row(i), logits.dim, activation);
  return scores;
}

void NormalizeRows(Embeddings* rows) {
  const profile::Scope scope("normalize");
  for (int i = 0; i < rows->rows; ++i) ops::L2Normalize(rows->row(i), rows->dim);
}

Embeddings FinishEmbeddings(const Embeddings& rows, int dims, bool normalize) {
  Embeddings out = Embeddings::Zeros(rows.rows, dims);
  for (int i = 0; i < rows.rows; ++i) {
    std::copy(rows.row(i), rows.row(i) + dims, out.row(i));
    if (normalize) ops::L2Normalize(out.row(i), dims);
  }
  return out;
}

PairTexts DedupePairTexts(const std::vector<TextPair>& pairs) {
  PairTexts out;
  std::unordered_map<std::string_view, int> index;
  auto row_of = [&](const std::string& text) {
    auto [it, inserted] = index.emplace(text, static_cast<int>(out.texts.size()));
    if (inserted) out.texts.push_back(text);
    return it->second;
  };
  out.rows.reserve(pairs.size());
  for (const TextPair& p : pairs) out.rows.emplace_back(row_of(p.first), row_of(p.second));
  return out;
}

std::vector<float> CosineScores(const Embeddings& normalized,
                                const std::vector<std::pair<int, int>>& rows) {
  std::vector<float> scores;
  scores.reserve(rows.size());
  for (auto [a, b] : rows) {
    scores.push_back(ops::Dot(normalized.row(a), normalized.row(b), normalized.dim));
  }
  return scores;
}

std::vector<float> CosineToFirst(const Embeddings& normalized) {
  std::vector<float> scores;
  for (int i = 1; i < normalized.rows; ++i) {
    scores.push_back(ops::Dot(normalized.row(0), normalized.row(i), normalized.dim));
  }
  return scores;
}

std::vector<int> RankByScore(const std::vector<float>& scores, std::optional<int> top_n) {
  std::vector<int> order(scores.size());
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(), [&](int a, int b) { return scores[a] > scores[b]; });
  const size_t n =
      std::min(order.size(),
               static_cast<size_t>(std::max(0, top_n.value_or(static_cast<int>(order.size())))));
  order.resize(n);
  return order;
}

}  // namespace encserve
