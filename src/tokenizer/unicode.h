// Unicode helpers for the BERT tokenizer: strict UTF-8 decoding plus the character classes
// used by Hugging Face `tokenizers` (BertNormalizer / BertPreTokenizer).
//
// Character data comes from utf8proc (Unicode 15), corrected by small exception tables so that
// every code point is classified exactly like tokenizers 0.23.3, whose crates carry older
// (unicode_categories, unicode-normalization-alignments) or newer (Rust std lowercase) Unicode
// data. tokenizer_parity_test checks every code point against the Python package.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace encserve::unicode {

inline constexpr size_t kValidUtf8 = static_cast<size_t>(-1);

// Byte offset of the first byte of the first ill-formed UTF-8 sequence (truncated sequence,
// overlong form, surrogate, > U+10FFFF, stray continuation byte), or kValidUtf8.
size_t FindInvalidUtf8(std::string_view s);

// Decodes the code point starting at s[*pos] and advances *pos. `s` must be valid UTF-8.
inline char32_t DecodeUtf8(std::string_view s, size_t* pos) {
  const auto* p = reinterpret_cast<const unsigned char*>(s.data()) + *pos;
  const unsigned char b0 = p[0];
  if (b0 < 0x80) {
    *pos += 1;
    return b0;
  }
  if (b0 < 0xE0) {
    *pos += 2;
    return (static_cast<char32_t>(b0 & 0x1F) << 6) | (p[1] & 0x3F);
  }
  if (b0 < 0xF0) {
    *pos += 3;
    return (static_cast<char32_t>(b0 & 0x0F) << 12) | (static_cast<char32_t>(p[1] & 0x3F) << 6) |
           (p[2] & 0x3F);
  }
  *pos += 4;
  return (static_cast<char32_t>(b0 & 0x07) << 18) | (static_cast<char32_t>(p[1] & 0x3F) << 12) |
         (static_cast<char32_t>(p[2] & 0x3F) << 6) | (p[3] & 0x3F);
}

inline void AppendUtf8(char32_t c, std::string* out) {
  if (c < 0x80) {
    out->push_back(static_cast<char>(c));
  } else if (c < 0x800) {
    const char b[2] = {static_cast<char>(0xC0 | (c >> 6)), static_cast<char>(0x80 | (c & 0x3F))};
    out->append(b, 2);
  } else if (c < 0x10000) {
    const char b[3] = {static_cast<char>(0xE0 | (c >> 12)),
                       static_cast<char>(0x80 | ((c >> 6) & 0x3F)),
                       static_cast<char>(0x80 | (c & 0x3F))};
    out->append(b, 3);
  } else {
    const char b[4] = {
        static_cast<char>(0xF0 | (c >> 18)), static_cast<char>(0x80 | ((c >> 12) & 0x3F)),
        static_cast<char>(0x80 | ((c >> 6) & 0x3F)), static_cast<char>(0x80 | (c & 0x3F))};
    out->append(b, 4);
  }
}

// Number of code points in valid UTF-8 (counts non-continuation bytes).
inline size_t CountCodePoints(std::string_view s) {
  size_t n = 0;
  for (char ch : s) n += (static_cast<unsigned char>(ch) & 0xC0) != 0x80;
  return n;
}

// Rust char::is_whitespace: the Unicode White_Space property.
bool IsWhitespace(char32_t c);
// BertNormalizer is_control: "other" categories (Cc, Cf, Co, Cs) except \t \n \r.
bool IsControl(char32_t c);
// BertPreTokenizer is_bert_punc: ASCII punctuation or categories Pc Pd Ps Pe Pi Pf Po.
bool IsPunctuation(char32_t c);
// BertNormalizer is_chinese_char: the CJK ideograph blocks of the original BERT (as in HF).
bool IsChineseChar(char32_t c);
// General category Mn, as used by BertNormalizer strip_accents.
bool IsNonspacingMark(char32_t c);
// Canonical combining class, as used by HF's NFD.
int CombiningClass(char32_t c);

// Appends the full canonical decomposition of `c` (not yet canonically ordered).
void AppendCanonicalDecomposition(char32_t c, std::u32string* out);
// Canonical ordering (stable sort of each run of non-starters by combining class) of
// (*s)[from, end).
void CanonicalOrder(std::u32string* s, size_t from);
// NFD of a whole string, HF flavour (exposed for tests).
std::u32string Nfd(std::u32string_view s);

// Appends Rust's char::to_lowercase(c) (full mapping: U+0130 becomes "i\u0307").
void AppendLowercase(char32_t c, std::u32string* out);

// Regex `\w` (Unicode word character) approximation, used only for single_word added tokens.
bool IsWordChar(char32_t c);

}  // namespace encserve::unicode
