// Hugging Face `tokenizers` truncation (utils/truncation.rs), LongestFirst strategy.
#pragma once

#include <algorithm>
#include <cstddef>
#include <utility>

namespace encserve::tokenizer_internal {

// New lengths of a pair of sequences of n1 and n2 tokens truncated to `budget` tokens in total
// (budget = max_length minus the special tokens). Keeps each sequence's head.
inline std::pair<size_t, size_t> LongestFirstLengths(size_t n1, size_t n2, size_t budget) {
  if (budget == 0) return {0, 0};
  if (n1 + n2 <= budget) return {n1, n2};
  const bool swap = n1 > n2;
  if (swap) std::swap(n1, n2);  // n1 is the shorter one
  if (n1 > budget) {
    n2 = n1;
  } else {
    n2 = std::max(n1, budget - n1);
  }
  if (n1 + n2 > budget) {
    n1 = budget / 2;
    n2 = n1 + budget % 2;
  }
  if (swap) std::swap(n1, n2);
  return {n1, n2};
}

}  // namespace encserve::tokenizer_internal
