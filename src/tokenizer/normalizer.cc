#include "tokenizer/normalizer.h"

#include "tokenizer/unicode.h"

namespace encserve::tokenizer_internal {

void Normalize(const NormalizerConfig& cfg, std::string_view in, NormalizerScratch* scratch,
               std::string* out) {
  out->clear();
  if (!cfg.enabled) {
    out->assign(in);
    return;
  }
  // Pure-ASCII fast path: only clean_text and lowercase can change ASCII characters.
  bool ascii = true;
  for (char ch : in) {
    if (static_cast<unsigned char>(ch) >= 0x80) {
      ascii = false;
      break;
    }
  }
  if (ascii) {
    out->reserve(in.size());
    for (char ch : in) {
      char32_t c = static_cast<unsigned char>(ch);
      if (cfg.clean_text) {
        if (c == 0 || unicode::IsControl(c)) continue;
        if (unicode::IsWhitespace(c)) c = ' ';
      }
      if (cfg.lowercase && c >= 'A' && c <= 'Z') c += 32;
      out->push_back(static_cast<char>(c));
    }
    return;
  }

  // Steps 1+2 (per code point): clean_text, handle_chinese_chars.
  std::u32string& cur = scratch->a;
  cur.clear();
  cur.reserve(in.size() + 8);
  for (size_t pos = 0; pos < in.size();) {
    char32_t c = unicode::DecodeUtf8(in, &pos);
    if (cfg.clean_text) {
      if (c == 0 || c == 0xFFFD || unicode::IsControl(c)) continue;
      if (unicode::IsWhitespace(c)) c = ' ';
    }
    if (cfg.handle_chinese_chars && unicode::IsChineseChar(c)) {
      cur.push_back(' ');
      cur.push_back(c);
      cur.push_back(' ');
    } else {
      cur.push_back(c);
    }
  }
  // Step 3: strip_accents = NFD of the whole string, then drop non-spacing marks.
  if (cfg.strip_accents) {
    std::u32string& nfd = scratch->b;
    nfd.clear();
    nfd.reserve(cur.size() + cur.size() / 2);
    for (char32_t c : cur) unicode::AppendCanonicalDecomposition(c, &nfd);
    unicode::CanonicalOrder(&nfd, 0);
    cur.clear();
    for (char32_t c : nfd) {
      if (!unicode::IsNonspacingMark(c)) cur.push_back(c);
    }
  }
  // Step 4: lowercase (may lengthen: U+0130).
  if (cfg.lowercase) {
    std::u32string& low = scratch->b;
    low.clear();
    low.reserve(cur.size() + 4);
    for (char32_t c : cur) unicode::AppendLowercase(c, &low);
    cur.swap(low);
  }
  out->reserve(cur.size() * 2);
  for (char32_t c : cur) unicode::AppendUtf8(c, out);
}

void BertPreTokenize(std::string_view text, std::vector<std::string_view>* words) {
  size_t word_start = 0;
  bool in_word = false;
  for (size_t pos = 0; pos < text.size();) {
    const size_t char_start = pos;
    const char32_t c = unicode::DecodeUtf8(text, &pos);
    const bool space = unicode::IsWhitespace(c);
    if (space || unicode::IsPunctuation(c)) {
      if (in_word) words->push_back(text.substr(word_start, char_start - word_start));
      in_word = false;
      if (!space) words->push_back(text.substr(char_start, pos - char_start));
    } else if (!in_word) {
      in_word = true;
      word_start = char_start;
    }
  }
  if (in_word) words->push_back(text.substr(word_start));
}

}  // namespace encserve::tokenizer_internal
