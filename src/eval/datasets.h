// Readers for the real data sets in shared/data (formats in its README.md).
#pragma once

#include <string>
#include <vector>

#include "core/status.h"

namespace encserve::eval {

// msmarco-dev-small-queries.tsv: "qid<TAB>query" per line; the query text is kept verbatim.
StatusOr<std::vector<std::string>> LoadMsMarcoQueries(const std::string& path);

struct StsPair {
  std::string a, b;
  double score = 0;  // gold similarity 0..5
};
// sts-b-test.tsv: split on TAB only; score = field 4, sentences = fields 5 and 6.
StatusOr<std::vector<StsPair>> LoadStsB(const std::string& path);

struct RerankQuery {
  std::string qid;
  std::string query;
  std::vector<std::string> docids;
  std::vector<std::string> passages;
};
// trec-dl19-bm25-top100.json: [{query, hits: [{qid, docid, rank, score, content}]}].
StatusOr<std::vector<RerankQuery>> LoadTrecRunJson(const std::string& path);

}  // namespace encserve::eval
