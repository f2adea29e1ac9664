#include "backends/native/calibration.h"

#include <algorithm>
#include <cmath>
#include <string>

namespace encserve {
namespace {

bool IsPlainWord(const std::string& token) {
  if (token.size() < 2) return false;
  return std::all_of(token.begin(), token.end(), [](char c) { return c >= 'a' && c <= 'z'; });
}

}  // namespace

std::vector<std::vector<int32_t>> VocabularyCalibration(const Tokenizer& tokenizer, int n) {
  std::vector<int32_t> words;
  for (size_t id = 0; id < tokenizer.vocab_size(); ++id) {
    if (IsPlainWord(tokenizer.IdToToken(static_cast<int32_t>(id))))
      words.push_back(static_cast<int32_t>(id));
  }
  std::vector<std::vector<int32_t>> seqs;
  if (words.empty()) return seqs;
  uint32_t state = 777;
  auto next = [&state] {
    state = state * 1664525u + 1013904223u;
    return state / 4294967296.0;
  };
  const double log_words = std::log(static_cast<double>(words.size()));
  for (int s = 0; s < n; ++s) {
    const int length = 6 + static_cast<int>(next() * 35);
    std::vector<int32_t> ids{tokenizer.cls_id()};
    for (int i = 0; i < length; ++i) {
      const int r = static_cast<int>(std::exp(next() * log_words)) - 1;
      ids.push_back(words[std::min<size_t>(std::max(r, 0), words.size() - 1)]);
    }
    ids.push_back(tokenizer.sep_id());
    seqs.push_back(std::move(ids));
  }
  return seqs;
}

}  // namespace encserve
