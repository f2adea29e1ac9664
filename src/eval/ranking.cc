#include "eval/ranking.h"

#include <algorithm>
#include <cmath>
#include <fstream>
#include <numeric>
#include <sstream>

namespace encserve::eval {

StatusOr<Qrels> LoadQrels(const std::string& path) {
  std::ifstream in(path);
  if (!in) return NotFound("cannot open qrels " + path);
  Qrels q;
  std::string line;
  int n = 0;
  while (std::getline(in, line)) {
    ++n;
    if (line.empty()) continue;
    std::istringstream ss(line);
    std::string qid, q0, docid;
    int grade = 0;
    if (!(ss >> qid >> q0 >> docid >> grade)) {
      return DataLoss(path + ":" + std::to_string(n) + ": expected 'qid Q0 docid grade'");
    }
    q[qid][docid] = grade;
  }
  return q;
}

double NdcgAt(const std::vector<std::string>& ranked, const std::map<std::string, int>& judged,
              int k) {
  auto discount = [](int rank) { return 1.0 / std::log2(rank + 2.0); };  // rank is 0-based
  double dcg = 0;
  for (int r = 0; r < k && r < static_cast<int>(ranked.size()); ++r) {
    auto it = judged.find(ranked[r]);
    if (it != judged.end() && it->second > 0) dcg += it->second * discount(r);
  }
  std::vector<int> grades;
  for (const auto& [doc, g] : judged) {
    if (g > 0) grades.push_back(g);
  }
  std::sort(grades.rbegin(), grades.rend());
  double ideal = 0;
  for (int r = 0; r < k && r < static_cast<int>(grades.size()); ++r)
    ideal += grades[r] * discount(r);
  return ideal > 0 ? dcg / ideal : 0.0;
}

StatusOr<RerankQuality> EvaluateRerank(const Pipeline* engine, const std::vector<RerankQuery>& run,
                                       const Qrels& qrels) {
  RerankQuality out;
  double sum = 0, bm25 = 0;
  for (const RerankQuery& q : run) {
    auto judged = qrels.find(q.qid);
    if (judged == qrels.end() || q.docids.empty()) continue;
    bm25 += NdcgAt(q.docids, judged->second, 10);
    std::vector<std::string> ranked = q.docids;
    if (engine != nullptr) {
      std::vector<TextPair> pairs;
      for (const std::string& p : q.passages) pairs.emplace_back(q.query, p);
      ASSIGN_OR_RETURN(std::vector<float> scores, engine->Score(pairs));
      std::vector<int> order(scores.size());
      std::iota(order.begin(), order.end(), 0);
      std::stable_sort(order.begin(), order.end(),
                       [&](int a, int b) { return scores[a] > scores[b]; });
      for (size_t i = 0; i < order.size(); ++i) ranked[i] = q.docids[order[i]];
    }
    sum += NdcgAt(ranked, judged->second, 10);
    ++out.queries;
  }
  if (out.queries == 0) return InvalidArgument("no run query has judgements in the qrels");
  out.ndcg10 = sum / out.queries;
  out.bm25_ndcg10 = bm25 / out.queries;
  return out;
}

}  // namespace encserve::eval
