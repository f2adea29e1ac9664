// What turns a backend's rows into answers, shared by the library API (pipeline.h) and the
// server (server/engine_service.h) so the two cannot disagree: normalisation, Matryoshka
// truncation, pair scores from logits, cosine scores, ranking.
#pragma once

#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "core/batch.h"

namespace encserve {

using TextPair = std::pair<std::string, std::string>;

// How a cross-encoder's logits become one score per pair.
enum class ScoreActivation {
  kRaw,       // the logit (num_labels = 1) or the last label's raw logit (num_labels > 1)
  kActivate,  // sigmoid of the logit (num_labels = 1) or softmax probability of the last label
};

// One pair score from logits [num_labels].
float PairScore(const float* logits, int num_labels, ScoreActivation activation);
std::vector<float> PairScores(const Embeddings& logits, ScoreActivation activation);

// Keeps the first `dims` columns of each row (Matryoshka; dims = rows.dim keeps all) and
// L2-normalises each row when `normalize`.
Embeddings FinishEmbeddings(const Embeddings& rows, int dims, bool normalize);
void NormalizeRows(Embeddings* rows);

// The distinct texts of `pairs` (first appearance order) and, per pair, the rows of its two
// texts in that list: a bi-encoder embeds each text once (a rerank repeats its query).
struct PairTexts {
  std::vector<std::string> texts;
  std::vector<std::pair<int, int>> rows;
};
PairTexts DedupePairTexts(const std::vector<TextPair>& pairs);

// Dot products of normalised rows: for each (a, b) in rows, emb[a] · emb[b].
std::vector<float> CosineScores(const Embeddings& normalized,
                                const std::vector<std::pair<int, int>>& rows);
// emb[0] · emb[i] for i = 1 .. rows-1 (a query or source sentence against the rest).
std::vector<float> CosineToFirst(const Embeddings& normalized);

// Document indices by descending score (ties by index), the first top_n (default all).
std::vector<int> RankByScore(const std::vector<float>& scores, std::optional<int> top_n);

}  // namespace encserve
