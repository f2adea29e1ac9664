// WordPiece model (greedy longest-match-first), as Hugging Face `tokenizers` models::WordPiece.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include "core/status.h"

namespace encserve::tokenizer_internal {

struct WordPieceConfig {
  std::string unk_token = "[UNK]";
  std::string continuing_subword_prefix = "##";
  size_t max_input_chars_per_word = 100;
};

class WordPiece {
 public:
  // `vocab` lists (token, id) pairs; a later duplicate token overrides an earlier one (as
  // inserting into HF's HashMap). Fails if the unk token is missing or an id is negative/huge.
  static StatusOr<std::unique_ptr<WordPiece>> Create(
      std::vector<std::pair<std::string, int32_t>> vocab, WordPieceConfig config);

  WordPiece(const WordPiece&) = delete;
  WordPiece& operator=(const WordPiece&) = delete;

  // Appends the ids for one pre-tokenized word (valid UTF-8, non-empty). A word longer than
  // max_input_chars_per_word code points, or one that cannot be fully covered by vocabulary
  // pieces, becomes a single unk id.
  void Tokenize(std::string_view word, std::vector<int32_t>* ids) const;

  std::optional<int32_t> TokenToId(std::string_view token) const;
  // nullptr if no token has this id.
  const std::string* IdToToken(int32_t id) const;
  // Number of distinct tokens (HF get_vocab_size()).
  size_t size() const { return vocab_.size(); }
  // One past the largest id.
  size_t id_bound() const { return id_to_entry_.size(); }
  int32_t unk_id() const { return unk_id_; }
  const WordPieceConfig& config() const { return config_; }

 private:
  WordPiece() = default;

  WordPieceConfig config_;
  std::vector<std::string> tokens_;   // one per vocabulary entry; never resized after Create
  std::vector<int32_t> id_to_entry_;  // id -> index into tokens_, or -1
  // Keys are views into tokens_.
  std::unordered_map<std::string_view, int32_t> vocab_;
  // Tokens that start with the continuation prefix, keyed without the prefix.
  std::unordered_map<std::string_view, int32_t> continuation_;
  int32_t unk_id_ = -1;
};

}  // namespace encserve::tokenizer_internal
