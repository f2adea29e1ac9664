// The two shapes that cross the backend boundary: a padding-free batch of token sequences
// (input) and a row-major float matrix (output: embeddings or logits).
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

namespace encserve {

// A padding-free batch: sequence s is tokens [offsets[s], offsets[s+1]) of ids/type_ids.
// Attention never crosses sequences, so no FLOPs go to padding and no mask is needed.
struct TokenBatch {
  std::vector<int32_t> ids;
  std::vector<int32_t> type_ids;
  std::vector<int> offsets{0};
  int num_seqs() const { return static_cast<int>(offsets.size()) - 1; }
  int num_tokens() const { return offsets.back(); }
  int length(int s) const { return offsets[s + 1] - offsets[s]; }
  // Appends one sequence; empty seq_type_ids means all zeros.
  void Add(const std::vector<int32_t>& seq_ids, const std::vector<int32_t>& seq_type_ids) {
    ids.insert(ids.end(), seq_ids.begin(), seq_ids.end());
    if (seq_type_ids.empty()) {
      type_ids.insert(type_ids.end(), seq_ids.size(), 0);
    } else {
      type_ids.insert(type_ids.end(), seq_type_ids.begin(), seq_type_ids.end());
    }
    offsets.push_back(static_cast<int>(ids.size()));
  }
  void Clear() {
    ids.clear();
    type_ids.clear();
    offsets.assign(1, 0);
  }
};

// Row-major [rows, dim] embeddings (or logits).
struct Embeddings {
  int rows = 0;
  int dim = 0;
  std::vector<float> data;
  const float* row(int i) const { return data.data() + static_cast<size_t>(i) * dim; }
  float* row(int i) { return data.data() + static_cast<size_t>(i) * dim; }
  static Embeddings Zeros(int rows, int dim) {
    return Embeddings{rows, dim, std::vector<float>(static_cast<size_t>(rows) * dim, 0.0f)};
  }
};

}  // namespace encserve
