// Request payloads built from the real data sets (shared/data), assigned round-robin: request i
// takes the next B items of the set (items i*B .. i*B+B-1, modulo the set size), so no item is
// reused before the whole set has been sent once, and the sequence continues across warm-up and
// measurement.
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "core/status.h"

namespace encserve::bench {

enum class WorkloadKind {
  kMsMarcoQueries,  // embed: B queries per request
  kDl19Pairs,       // score: B query-passage pairs per request
  kDl19Rerank,      // rerank: one query and its (up to 100) passages per request
  kStsB,            // score: B sentence pairs per request
};

// "msmarco-queries", "dl19-pairs", "dl19-rerank", "sts-b".
StatusOr<WorkloadKind> ParseWorkload(const std::string& name);
const char* WorkloadName(WorkloadKind kind);
// The operation a workload exercises: "embed", "score" or "rerank".
const char* WorkloadOp(WorkloadKind kind);

using Pair = std::pair<std::string, std::string>;

struct Payload {
  enum class Op { kEmbed, kScore, kRerank } op = Op::kEmbed;
  std::vector<std::string> texts;  // embed
  std::vector<Pair> pairs;         // score
  std::string query;               // rerank
  std::vector<std::string> documents;

  // Items this request carries: texts, pairs or documents.
  size_t items() const;
};

struct RerankGroup {
  std::string query;
  std::vector<std::string> documents;
};

class Workload {
 public:
  // Loads the workload's file from `data_dir`.
  static StatusOr<Workload> Load(WorkloadKind kind, const std::string& data_dir);
  static Workload FromTexts(std::vector<std::string> texts);
  static Workload FromPairs(WorkloadKind kind, std::vector<Pair> pairs);
  static Workload FromRerank(std::vector<RerankGroup> groups);

  // The payload of request number `index` (0-based) with `batch` items (rerank: one group).
  Payload Make(uint64_t index, int batch) const;

  WorkloadKind kind() const { return kind_; }
  // Texts, pairs or rerank groups in the set.
  size_t size() const;

 private:
  WorkloadKind kind_ = WorkloadKind::kMsMarcoQueries;
  std::vector<std::string> texts_;
  std::vector<Pair> pairs_;
  std::vector<RerankGroup> groups_;
};

}  // namespace encserve::bench
