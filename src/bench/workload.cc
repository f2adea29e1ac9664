#include "bench/workload.h"

#include "eval/datasets.h"

namespace encserve::bench {

namespace {
struct KindInfo {
  WorkloadKind kind;
  const char* name;
  const char* op;
};
constexpr KindInfo kKinds[] = {
    {WorkloadKind::kMsMarcoQueries, "msmarco-queries", "embed"},
    {WorkloadKind::kDl19Pairs, "dl19-pairs", "score"},
    {WorkloadKind::kDl19Rerank, "dl19-rerank", "rerank"},
    {WorkloadKind::kStsB, "sts-b", "score"},
};
}  // namespace

StatusOr<WorkloadKind> ParseWorkload(const std::string& name) {
  for (const auto& k : kKinds) {
    if (name == k.name) return k.kind;
  }
  return InvalidArgument("unknown workload '" + name +
                         "' (msmarco-queries, dl19-pairs, dl19-rerank, sts-b)");
}

const char* WorkloadName(WorkloadKind kind) {
  for (const auto& k : kKinds) {
    if (k.kind == kind) return k.name;
  }
  return "?";
}

const char* WorkloadOp(WorkloadKind kind) {
  for (const auto& k : kKinds) {
    if (k.kind == kind) return k.op;
  }
  return "?";
}

size_t Payload::items() const {
  switch (op) {
    case Op::kEmbed:
      return texts.size();
    case Op::kScore:
      return pairs.size();
    case Op::kRerank:
      return documents.size();
  }
  return 0;
}

StatusOr<Workload> Workload::Load(WorkloadKind kind, const std::string& data_dir) {
  switch (kind) {
    case WorkloadKind::kMsMarcoQueries: {
      auto q = eval::LoadMsMarcoQueries(data_dir + "/msmarco-dev-small-queries.tsv");
      if (!q.ok()) return q.status();
      return FromTexts(std::move(q).value());
    }
    case WorkloadKind::kStsB: {
      auto s = eval::LoadStsB(data_dir + "/sts-b-test.tsv");
      if (!s.ok()) return s.status();
      std::vector<Pair> pairs;
      pairs.reserve(s->size());
      for (auto& p : *s) pairs.emplace_back(std::move(p.a), std::move(p.b));
      return FromPairs(kind, std::move(pairs));
    }
    case WorkloadKind::kDl19Pairs:
    case WorkloadKind::kDl19Rerank: {
      auto run = eval::LoadTrecRunJson(data_dir + "/trec-dl19-bm25-top100.json");
      if (!run.ok()) return run.status();
      if (kind == WorkloadKind::kDl19Rerank) {
        std::vector<RerankGroup> groups;
        for (auto& rq : *run) {
          if (!rq.passages.empty()) groups.push_back({rq.query, std::move(rq.passages)});
        }
        return FromRerank(std::move(groups));
      }
      std::vector<Pair> pairs;
      for (const auto& rq : *run) {
        for (const auto& p : rq.passages) pairs.emplace_back(rq.query, p);
      }
      return FromPairs(kind, std::move(pairs));
    }
  }
  return InvalidArgument("unknown workload");
}

Workload Workload::FromTexts(std::vector<std::string> texts) {
  Workload w;
  w.kind_ = WorkloadKind::kMsMarcoQueries;
  w.texts_ = std::move(texts);
  return w;
}

Workload Workload::FromPairs(WorkloadKind kind, std::vector<Pair> pairs) {
  Workload w;
  w.kind_ = kind;
  w.pairs_ = std::move(pairs);
  return w;
}

Workload Workload::FromRerank(std::vector<RerankGroup> groups) {
  Workload w;
  w.kind_ = WorkloadKind::kDl19Rerank;
  w.groups_ = std::move(groups);
  return w;
}

size_t Workload::size() const {
  if (kind_ == WorkloadKind::kMsMarcoQueries) return texts_.size();
  if (kind_ == WorkloadKind::kDl19Rerank) return groups_.size();
  return pairs_.size();
}

Payload Workload::Make(uint64_t index, int batch) const {
  Payload p;
  const size_t n = size();
  if (n == 0) return p;
  if (kind_ == WorkloadKind::kDl19Rerank) {
    const RerankGroup& g = groups_[index % n];
    p.op = Payload::Op::kRerank;
    p.query = g.query;
    p.documents = g.documents;
    return p;
  }
  const uint64_t first = index * static_cast<uint64_t>(batch);
  if (kind_ == WorkloadKind::kMsMarcoQueries) {
    p.op = Payload::Op::kEmbed;
    p.texts.reserve(batch);
    for (int k = 0; k < batch; ++k) p.texts.push_back(texts_[(first + k) % n]);
  } else {
    p.op = Payload::Op::kScore;
    p.pairs.reserve(batch);
    for (int k = 0; k < batch; ++k) p.pairs.push_back(pairs_[(first + k) % n]);
  }
  return p;
}

}  // namespace encserve::bench
