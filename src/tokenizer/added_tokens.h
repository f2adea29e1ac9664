// Added-vocabulary splitting (special tokens such as "[MASK]" in raw text), following
// Hugging Face `tokenizers` AddedVocabulary: leftmost-longest matching over all tokens, with the
// single_word / lstrip / rstrip options.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace encserve::tokenizer_internal {

struct AddedToken {
  std::string content;
  int32_t id = -1;
  bool single_word = false;
  bool lstrip = false;
  bool rstrip = false;
  bool normalized = false;  // true: matched against the normalized text
  bool special = false;
};

// A piece of the input: either an added token (id >= 0) or plain text (id == -1).
struct TextPiece {
  uint32_t begin = 0;
  uint32_t end = 0;
  int32_t id = -1;
};

class AddedTokenMatcher {
 public:
  // `patterns[i]` is the text to look for, with the options of `tokens[i]`. Empty patterns are
  // ignored.
  void Build(const std::vector<std::string>& patterns, const std::vector<AddedToken>& tokens);
  bool empty() const { return patterns_.empty(); }

  // Splits valid UTF-8 `text` into pieces covering it entirely, in order. Plain pieces are
  // never empty, except that an empty text gives one empty plain piece.
  void Split(std::string_view text, std::vector<TextPiece>* pieces) const;

 private:
  struct Pattern {
    std::string text;
    int32_t id;
    bool single_word, lstrip, rstrip;
  };
  // Longest pattern matching at `pos`, or -1.
  int FindAt(std::string_view text, size_t pos) const;

  std::vector<Pattern> patterns_;
  // For each first byte, indices into patterns_ sorted by decreasing length.
  std::vector<std::vector<uint32_t>> by_first_byte_;
};

}  // namespace encserve::tokenizer_internal
