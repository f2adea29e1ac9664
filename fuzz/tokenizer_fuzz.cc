// libFuzzer target: the real MiniLM WordPiece tokenizer (tokenizer.json, and vocab.txt with
// several normaliser settings) on arbitrary bytes: UTF-8 checks, normalisation, pre-tokenising,
// WordPiece, single texts and pairs, truncation.
//
// Input: [flags][max_length][split] text...
//   flags bits 0-1: which tokenizer (kTokenizers), bit 2: a pair (text split at `split`),
//   bit 3: no truncation (max_length 2^20 instead of the byte's value 0..255).
//   split: where the pair is cut, as a fraction (split/255) of the text's bytes.
// Invariants: invalid UTF-8 (by an independent decoder here) gives INVALID_ARGUMENT and valid
// UTF-8 never fails (when max_length fits the special tokens); ids are in [0, vocab_size) and
// have a token; [CLS] first, [SEP] last (and between a pair); type ids 0 then 1; length <=
// max_length, exactly max_length when truncated; truncation keeps each text's head (a prefix of
// its untruncated tokens).
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "fuzz/fuzz_util.h"
#include "tokenizer/tokenizer.h"

namespace encserve::fuzz {
namespace {

constexpr size_t kNoTruncation = size_t{1} << 20;

std::vector<std::unique_ptr<Tokenizer>>* tokenizers = nullptr;

std::unique_ptr<Tokenizer> Must(StatusOr<std::unique_ptr<Tokenizer>> t, const char* what) {
  if (!t.ok()) SetupFailed(std::string(what) + ": " + t.status().ToString());
  return std::move(*t);
}

// Well-formed UTF-8 (Unicode 15, table 3-7), decoded code point by code point.
bool ValidUtf8(std::string_view s) {
  size_t i = 0;
  while (i < s.size()) {
    const unsigned char b = static_cast<unsigned char>(s[i]);
    int len = b < 0x80 ? 1 : (b >> 5) == 0x6 ? 2 : (b >> 4) == 0xE ? 3 : (b >> 3) == 0x1E ? 4 : 0;
    if (len == 0 || i + len > s.size()) return false;
    char32_t cp = len == 1 ? b : b & (0x7F >> len);
    for (int k = 1; k < len; ++k) {
      const unsigned char c = static_cast<unsigned char>(s[i + k]);
      if ((c & 0xC0) != 0x80) return false;
      cp = (cp << 6) | (c & 0x3F);
    }
    const char32_t min_cp[] = {0, 0, 0x80, 0x800, 0x10000};
    if (cp < min_cp[len] || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return false;
    i += len;
  }
  return true;
}

// Ids in range, each with a token text, type ids as long as ids.
void CheckIds(const Tokenizer& tok, const Encoding& e) {
  FUZZ_CHECK(e.ids.size() == e.type_ids.size(), "ids and type_ids differ in length");
  for (int32_t id : e.ids) {
    FUZZ_CHECK(id >= 0 && size_t(id) < tok.vocab_size(), "id " + std::to_string(id));
    FUZZ_CHECK(!tok.IdToToken(id).empty(), "no token text for id " + std::to_string(id));
  }
}

bool IsPrefix(const std::vector<int32_t>& part, const std::vector<int32_t>& full, size_t from,
              size_t n) {
  if (n > part.size() || from + n > full.size()) return false;
  return std::equal(full.begin() + from, full.begin() + from + n, part.begin());
}

// The text alone, untruncated: [CLS] tokens [SEP].
std::vector<int32_t> Full(const Tokenizer& tok, std::string_view text) {
  auto e = tok.Encode(text, kNoTruncation);
  FUZZ_CHECK(e.ok(), e.status().ToString());
  return e->ids;
}

void CheckSingle(const Tokenizer& tok, std::string_view text, size_t max_length) {
  auto e = tok.Encode(text, max_length);
  const bool valid = ValidUtf8(text);
  if (!valid || max_length < tok.num_special_tokens(false)) {
    FUZZ_CHECK(!e.ok() && e.status().code() == StatusCode::kInvalidArgument,
               "expected INVALID_ARGUMENT, got " + e.status().ToString());
    return;
  }
  FUZZ_CHECK(e.ok(), "valid UTF-8 failed: " + e.status().ToString());
  CheckIds(tok, *e);
  const std::vector<int32_t>& ids = e->ids;
  FUZZ_CHECK(ids.size() <= max_length && ids.size() >= 2, "length " + std::to_string(ids.size()));
  FUZZ_CHECK(ids.front() == tok.cls_id() && ids.back() == tok.sep_id(), "[CLS] ... [SEP]");
  for (int32_t t : e->type_ids) FUZZ_CHECK(t == 0, "type id of a single text");
  const std::vector<int32_t> full = Full(tok, text);
  FUZZ_CHECK(e->truncated == (full.size() > max_length), "truncated flag");
  if (e->truncated) FUZZ_CHECK(ids.size() == max_length, "truncated below max_length");
  FUZZ_CHECK(IsPrefix(ids, full, 0, ids.size() - 1), "truncation keeps the head");
}

void CheckPair(const Tokenizer& tok, std::string_view a, std::string_view b, size_t max_length) {
  auto e = tok.EncodePair(a, b, max_length);
  const bool valid = ValidUtf8(a) && ValidUtf8(b);
  if (!valid || max_length < tok.num_special_tokens(true)) {
    FUZZ_CHECK(!e.ok() && e.status().code() == StatusCode::kInvalidArgument,
               "expected INVALID_ARGUMENT, got " + e.status().ToString());
    return;
  }
  FUZZ_CHECK(e.ok(), "valid UTF-8 pair failed: " + e.status().ToString());
  CheckIds(tok, *e);
  const std::vector<int32_t>& ids = e->ids;
  FUZZ_CHECK(ids.size() <= max_length && ids.size() >= 3, "length " + std::to_string(ids.size()));
  FUZZ_CHECK(ids.front() == tok.cls_id() && ids.back() == tok.sep_id(), "[CLS] ... [SEP]");
  // [CLS] a [SEP] (type 0) then b [SEP] (type 1).
  size_t n_a = 0;
  while (n_a < e->type_ids.size() && e->type_ids[n_a] == 0) ++n_a;
  for (size_t i = n_a; i < e->type_ids.size(); ++i) FUZZ_CHECK(e->type_ids[i] == 1, "type ids");
  FUZZ_CHECK(n_a >= 2 && ids[n_a - 1] == tok.sep_id(), "[SEP] after the first text");
  const std::vector<int32_t> full_a = Full(tok, a), full_b = Full(tok, b);
  const size_t untruncated = full_a.size() + full_b.size() - 1;  // one [CLS] less
  FUZZ_CHECK(e->truncated == (untruncated > max_length), "truncated flag of a pair");
  if (e->truncated) FUZZ_CHECK(ids.size() == max_length, "truncated pair below max_length");
  FUZZ_CHECK(IsPrefix(ids, full_a, 0, n_a - 1), "first text keeps its head");
  std::vector<int32_t> tail(ids.begin() + n_a, ids.end() - 1);
  FUZZ_CHECK(IsPrefix(tail, full_b, 1, tail.size()), "second text keeps its head");
}

}  // namespace
}  // namespace encserve::fuzz

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  using namespace encserve;
  using encserve::fuzz::Must;
  const std::string dir = fuzz::ModelDir();
  auto* t = new std::vector<std::unique_ptr<Tokenizer>>();
  t->push_back(Must(Tokenizer::FromDirectory(dir), "tokenizer.json"));
  TokenizerOptions o;
  t->push_back(Must(Tokenizer::FromVocabFile(dir + "/vocab.txt", o), "vocab.txt"));
  o.lowercase = false;  // cased: accents kept too (strip_accents follows lowercase)
  t->push_back(Must(Tokenizer::FromVocabFile(dir + "/vocab.txt", o), "vocab.txt cased"));
  o = TokenizerOptions();
  o.clean_text = false;
  o.handle_chinese_chars = false;
  o.strip_accents = true;
  t->push_back(Must(Tokenizer::FromVocabFile(dir + "/vocab.txt", o), "vocab.txt options"));
  fuzz::tokenizers = t;
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace encserve::fuzz;
  if (size < 3) return 0;
  const uint8_t flags = data[0];
  const size_t max_length = (flags & 8) ? kNoTruncation : data[1];
  const std::string_view text = AsText(data + 3, size - 3);
  const encserve::Tokenizer& tok = *(*tokenizers)[flags & 3];
  if (flags & 4) {
    const size_t at = text.size() * data[2] / 255;
    CheckPair(tok, text.substr(0, at), text.substr(at), max_length);
  } else {
    CheckSingle(tok, text, max_length);
  }
  return 0;
}
