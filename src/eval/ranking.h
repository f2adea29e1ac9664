// Ranking quality on TREC DL: qrels, nDCG@k (standard TREC definition, trec_eval ndcg_cut:
// linear gains = grades 0-3, log2(rank + 1) discount, ideal ranking from all judged documents
// of the query), and reranking BM25 top-100 lists with a model.
#pragma once

#include <map>
#include <string>
#include <vector>

#include "pipeline/pipeline.h"
#include "eval/datasets.h"

namespace encserve::eval {

// qid -> docid -> grade, from "qid Q0 docid grade" lines.
using Qrels = std::map<std::string, std::map<std::string, int>>;
StatusOr<Qrels> LoadQrels(const std::string& path);

// nDCG@k of one ranked list of docids against one query's judgements (unjudged = 0).
double NdcgAt(const std::vector<std::string>& ranked, const std::map<std::string, int>& judged,
              int k);

struct RerankQuality {
  double ndcg10 = 0;       // mean over judged queries, model order
  double bm25_ndcg10 = 0;  // mean over the same queries, the run's own (BM25) order
  int queries = 0;
};

// Mean nDCG@10 over the queries that have judgements. With `engine`, each query's passages
// are re-ordered by Pipeline::Score (cross-encoder score, or bi-encoder cosine); without it
// (nullptr) only the BM25 order is scored.
StatusOr<RerankQuality> EvaluateRerank(const Pipeline* engine, const std::vector<RerankQuery>& run,
                                       const Qrels& qrels);

}  // namespace encserve::eval
