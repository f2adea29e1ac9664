// BERT WordPiece tokenizer, token-for-token compatible with Hugging Face `tokenizers` (0.23.3):
// added/special tokens, BertNormalizer, BertPreTokenizer, WordPiece, TemplateProcessing /
// BertProcessing, and `longest_first` truncation. See docs/tokenizer.md.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/status.h"

namespace encserve {

struct Encoding {
  std::vector<int32_t> ids;
  std::vector<int32_t> type_ids;  // 0 for [CLS] a [SEP], 1 for b [SEP]
  bool truncated = false;         // true if any token was dropped by truncation
};

// Which end truncation drops tokens from: kRight keeps the head (the default, HF's "right"),
// kLeft keeps the tail (HF's truncation_side / direction "left").
enum class TruncationSide { kRight, kLeft };

struct TokenizerOptions {  // BertNormalizer settings
  bool clean_text = true;
  bool handle_chinese_chars = true;
  std::optional<bool> strip_accents;  // unset: follows lowercase (HF semantics)
  bool lowercase = true;
};

namespace tokenizer_internal {
struct TokenizerImpl;
}

class Tokenizer {
 public:
  // tokenizer.json if present in dir, else vocab.txt (+ optional tokenizer_config.json:
  // do_lower_case, strip_accents, tokenize_chinese_chars).
  static StatusOr<std::unique_ptr<Tokenizer>> FromDirectory(const std::string& dir);
  // A Hugging Face tokenizer.json with a WordPiece model, BertNormalizer (or none),
  // BertPreTokenizer (or none) and TemplateProcessing/BertProcessing (or none).
  static StatusOr<std::unique_ptr<Tokenizer>> FromTokenizerJson(const std::string& path);
  // Like tokenizers.BertWordPieceTokenizer(vocab, ...): one token per line, id = line number;
  // [UNK] [SEP] [CLS] [PAD] [MASK] (when in the vocab) are special tokens.
  static StatusOr<std::unique_ptr<Tokenizer>> FromVocabFile(const std::string& path,
                                                            const TokenizerOptions& opts);

  ~Tokenizer();
  Tokenizer(const Tokenizer&) = delete;
  Tokenizer& operator=(const Tokenizer&) = delete;

  // [CLS] text [SEP], truncated (keeping the head; the tail with kLeft) so that the total incl.
  // specials is <= max_length. InvalidArgument for invalid UTF-8 or max_length <
  // num_special_tokens(false).
  StatusOr<Encoding> Encode(std::string_view text, size_t max_length,
                            TruncationSide side = TruncationSide::kRight) const;
  // [CLS] a [SEP] b [SEP], HF `longest_first` truncation to max_length total (each sequence
  // loses tokens at the `side` end). InvalidArgument for invalid UTF-8 or max_length <
  // num_special_tokens(true).
  StatusOr<Encoding> EncodePair(std::string_view a, std::string_view b, size_t max_length,
                                TruncationSide side = TruncationSide::kRight) const;

  // Token text for an id; an empty string for an unknown id.
  const std::string& IdToToken(int32_t id) const;
  // One past the largest token id (model vocabulary and added tokens).
  size_t vocab_size() const;
  int32_t cls_id() const;
  int32_t sep_id() const;
  int32_t pad_id() const;
  int32_t unk_id() const;
  // Special tokens the post-processor adds (2 single / 3 pair for BERT).
  size_t num_special_tokens(bool pair) const;

 private:
  explicit Tokenizer(std::unique_ptr<tokenizer_internal::TokenizerImpl> impl);
  friend struct tokenizer_internal::TokenizerImpl;

  std::unique_ptr<tokenizer_internal::TokenizerImpl> impl_;
};

}  // namespace encserve
