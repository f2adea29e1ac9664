// BertNormalizer and BertPreTokenizer with the semantics of Hugging Face `tokenizers`.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace encserve::tokenizer_internal {

// Resolved BertNormalizer settings (strip_accents already defaulted to `lowercase`).
struct NormalizerConfig {
  bool enabled = true;  // false: no normalizer at all (tokenizer.json "normalizer": null)
  bool clean_text = true;
  bool handle_chinese_chars = true;
  bool strip_accents = true;
  bool lowercase = true;
};

// Reusable buffers so that normalizing does not allocate per call once warmed up.
struct NormalizerScratch {
  std::u32string a;
  std::u32string b;
};

// Applies, in HF order: clean_text (drop NUL, U+FFFD and control chars, map whitespace to ' '),
// handle_chinese_chars (surround CJK ideographs with spaces), strip_accents (NFD, then drop
// Mn), lowercase (per code point, full mapping). `in` must be valid UTF-8; the result is
// written to *out (UTF-8, replacing its contents).
void Normalize(const NormalizerConfig& cfg, std::string_view in, NormalizerScratch* scratch,
               std::string* out);

// BertPreTokenizer: splits on whitespace (dropped) and punctuation (each punctuation code point
// is its own word). `text` must be valid UTF-8. Appends views into `text` to *words.
void BertPreTokenize(std::string_view text, std::vector<std::string_view>* words);

}  // namespace encserve::tokenizer_internal
