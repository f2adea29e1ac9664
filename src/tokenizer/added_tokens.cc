#include "tokenizer/added_tokens.h"

#include <algorithm>

#include "tokenizer/unicode.h"

namespace encserve::tokenizer_internal {

namespace {

// Code point that ends at byte `end` of valid UTF-8 `s` (end > 0).
char32_t LastCodePoint(std::string_view s, size_t end) {
  size_t start = end - 1;
  while (start > 0 && (static_cast<unsigned char>(s[start]) & 0xC0) == 0x80) --start;
  return unicode::DecodeUtf8(s, &start);
}

// Start of the run of whitespace that ends at `end` (regex `\s*$` on s[..end]).
size_t TrailingSpaceStart(std::string_view s, size_t end) {
  while (end > 0) {
    size_t start = end - 1;
    while (start > 0 && (static_cast<unsigned char>(s[start]) & 0xC0) == 0x80) --start;
    size_t pos = start;
    if (!unicode::IsWhitespace(unicode::DecodeUtf8(s, &pos))) break;
    end = start;
  }
  return end;
}

// End of the run of whitespace that starts at `begin` (regex `^\s*` on s[begin..]).
size_t LeadingSpaceEnd(std::string_view s, size_t begin) {
  while (begin < s.size()) {
    size_t pos = begin;
    if (!unicode::IsWhitespace(unicode::DecodeUtf8(s, &pos))) break;
    begin = pos;
  }
  return begin;
}

}  // namespace

void AddedTokenMatcher::Build(const std::vector<std::string>& patterns,
                              const std::vector<AddedToken>& tokens) {
  patterns_.clear();
  by_first_byte_.assign(256, {});
  for (size_t i = 0; i < patterns.size(); ++i) {
    if (patterns[i].empty()) continue;
    patterns_.push_back(
        {patterns[i], tokens[i].id, tokens[i].single_word, tokens[i].lstrip, tokens[i].rstrip});
  }
  for (uint32_t i = 0; i < patterns_.size(); ++i) {
    by_first_byte_[static_cast<unsigned char>(patterns_[i].text[0])].push_back(i);
  }
  for (auto& list : by_first_byte_) {
    // Longest first; equal lengths keep insertion order (first pattern wins, as aho-corasick).
    std::stable_sort(list.begin(), list.end(), [this](uint32_t a, uint32_t b) {
      return patterns_[a].text.size() > patterns_[b].text.size();
    });
  }
}

int AddedTokenMatcher::FindAt(std::string_view text, size_t pos) const {
  for (uint32_t idx : by_first_byte_[static_cast<unsigned char>(text[pos])]) {
    const std::string& p = patterns_[idx].text;
    if (text.size() - pos >= p.size() && text.compare(pos, p.size(), p) == 0) {
      return static_cast<int>(idx);
    }
  }
  return -1;
}

void AddedTokenMatcher::Split(std::string_view text, std::vector<TextPiece>* pieces) const {
  const auto push_plain = [&](size_t b, size_t e) {
    if (b < e) pieces->push_back({static_cast<uint32_t>(b), static_cast<uint32_t>(e), -1});
  };
  if (text.empty()) {
    pieces->push_back({0, 0, -1});
    return;
  }
  if (patterns_.empty()) {
    push_plain(0, text.size());
    return;
  }
  size_t piece_start = 0;  // end of the previous match
  size_t pos = 0;
  while (pos < text.size()) {
    const int idx = FindAt(text, pos);
    if (idx < 0) {
      ++pos;
      continue;
    }
    const Pattern& p = patterns_[idx];
    size_t start = pos;
    size_t stop = pos + p.text.size();
    pos = stop;  // matches never overlap, even a discarded one (aho-corasick find_iter)
    if (p.single_word) {
      const bool start_space = start == 0 || !unicode::IsWordChar(LastCodePoint(text, start));
      size_t next = stop;
      const bool stop_space =
          stop == text.size() || !unicode::IsWordChar(unicode::DecodeUtf8(text, &next));
      if (!start_space || !stop_space) continue;
    }
    if (p.lstrip) start = std::max(TrailingSpaceStart(text, start), piece_start);
    if (p.rstrip) stop = LeadingSpaceEnd(text, stop);
    push_plain(piece_start, start);
    pieces->push_back({static_cast<uint32_t>(start), static_cast<uint32_t>(stop), p.id});
    piece_start = stop;
    pos = stop;
  }
  push_plain(piece_start, text.size());
}

}  // namespace encserve::tokenizer_internal
