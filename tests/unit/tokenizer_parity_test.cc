// Parity with Hugging Face `tokenizers`: compares ids and type_ids with the golden files that
// tools/gen_tokenizer_golden.py writes into $ENCSERVE_GOLDEN_DIR (CTest fixture), for the real
// data sets, the edge cases, both loading paths, and every Unicode code point.
#include <gtest/gtest.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <vector>

#include "tokenizer/normalizer.h"
#include "tokenizer/tokenizer.h"
#include "tokenizer/unicode.h"

namespace encserve {
namespace {

using json = nlohmann::json;
namespace fs = std::filesystem;

#ifndef ENCSERVE_MODEL_DIR
#define ENCSERVE_MODEL_DIR ""
#endif
#ifndef ENCSERVE_GOLDEN_DIR
#define ENCSERVE_GOLDEN_DIR ""
#endif

// The environment variable if set, else the location CMake compiled in.
std::string Env(const char* name, const char* compiled_default) {
  const char* v = std::getenv(name);
  return v != nullptr && *v != '\0' ? std::string(v) : std::string(compiled_default);
}

// Golden folder, or "" after recording a failure that says why.
std::string GoldenDir() {
  const std::string dir = Env("ENCSERVE_GOLDEN_DIR", ENCSERVE_GOLDEN_DIR);
  if (dir.empty()) {
    ADD_FAILURE() << "ENCSERVE_GOLDEN_DIR is not set (neither in the environment nor compiled "
                     "in); run through ctest, which generates the golden files with "
                     "tools/gen_tokenizer_golden.py";
    return "";
  }
  if (!fs::exists(fs::path(dir) / "manifest.json")) {
    ADD_FAILURE() << "golden files missing in " << dir
                  << " (no manifest.json): run `ctest -R '[Tt]okenizer'` (fixture "
                     "generate_tokenizer_golden) or tools/gen_tokenizer_golden.py";
    return "";
  }
  return dir;
}

std::string ModelDir() {
  std::string dir = Env("ENCSERVE_MODEL_DIR", ENCSERVE_MODEL_DIR);
  if (dir.empty()) ADD_FAILURE() << "ENCSERVE_MODEL_DIR is not set";
  return dir;
}

struct Record {
  std::string text;
  std::optional<std::string> pair;
  size_t max_length = 0;
  std::vector<int32_t> ids;
  std::vector<int32_t> type_ids;
  bool truncated = false;
  TruncationSide side = TruncationSide::kRight;
};

// Records of one set from a golden JSONL file (lines start with {"set":"<name>").
std::vector<Record> LoadSet(const std::string& file, const std::string& set) {
  std::vector<Record> out;
  const std::string dir = GoldenDir();
  if (dir.empty()) return out;
  std::ifstream in(fs::path(dir) / file);
  if (!in) {
    ADD_FAILURE() << "cannot open " << (fs::path(dir) / file);
    return out;
  }
  const std::string prefix = "{\"set\":\"" + set + "\"";
  std::string line;
  while (std::getline(in, line)) {
    if (line.compare(0, prefix.size(), prefix) != 0) continue;
    const json j = json::parse(line);
    Record r;
    r.text = j.at("text").get<std::string>();
    if (!j.at("pair").is_null()) r.pair = j.at("pair").get<std::string>();
    r.max_length = j.at("max_length").get<size_t>();
    r.ids = j.at("ids").get<std::vector<int32_t>>();
    r.type_ids = j.at("type_ids").get<std::vector<int32_t>>();
    r.truncated = j.at("truncated").get<bool>();
    if (j.value("direction", "right") == "left") r.side = TruncationSide::kLeft;
    out.push_back(std::move(r));
  }
  return out;
}

std::string Escape(std::string_view s, size_t limit = 160) {
  std::string out;
  for (size_t i = 0; i < s.size() && out.size() < limit; ++i) {
    const unsigned char c = static_cast<unsigned char>(s[i]);
    if (c < 0x20 || c == 0x7F) {
      char buf[8];
      std::snprintf(buf, sizeof(buf), "\\x%02X", c);
      out += buf;
    } else {
      out += static_cast<char>(c);
    }
  }
  if (out.size() >= limit) out += "...";
  return out;
}

std::string Tokens(const Tokenizer& tok, const std::vector<int32_t>& ids, size_t from) {
  std::ostringstream os;
  for (size_t i = from; i < ids.size() && i < from + 12; ++i) {
    os << ids[i] << ":" << tok.IdToToken(ids[i]) << " ";
  }
  return os.str();
}

// Encodes every record and compares; returns the number of mismatches and reports the first few.
void CheckRecords(const Tokenizer& tok, const std::vector<Record>& records, const char* what,
                  size_t expected_count) {
  if (expected_count > 0) {
    EXPECT_EQ(records.size(), expected_count) << what << ": unexpected number of golden records";
  }
  ASSERT_FALSE(records.empty()) << what << ": no golden records";
  size_t mismatches = 0;
  std::ostringstream report;
  for (const Record& r : records) {
    StatusOr<Encoding> enc = r.pair ? tok.EncodePair(r.text, *r.pair, r.max_length, r.side)
                                    : tok.Encode(r.text, r.max_length, r.side);
    std::string problem;
    if (!enc.ok()) {
      problem = "error " + enc.status().ToString();
    } else if (enc->ids != r.ids) {
      size_t d = 0;
      while (d < r.ids.size() && d < enc->ids.size() && r.ids[d] == enc->ids[d]) ++d;
      const size_t from = d > 3 ? d - 3 : 0;
      problem = "ids differ at " + std::to_string(d) + " (lengths " + std::to_string(r.ids.size()) +
                " vs " + std::to_string(enc->ids.size()) +
                ")\n      expected: " + Tokens(tok, r.ids, from) +
                "\n      got:      " + Tokens(tok, enc->ids, from);
    } else if (enc->type_ids != r.type_ids) {
      problem = "type_ids differ";
    } else if (enc->truncated != r.truncated) {
      problem = std::string("truncated flag ") + (enc->truncated ? "true" : "false");
    }
    if (problem.empty()) continue;
    if (++mismatches <= 5) {
      report << "  [" << what << " max_length=" << r.max_length << "] text=\"" << Escape(r.text)
             << "\"";
      if (r.pair) report << " pair=\"" << Escape(*r.pair) << "\"";
      report << "\n    " << problem << "\n";
    }
  }
  EXPECT_EQ(mismatches, 0u) << what << ": " << mismatches << " of " << records.size()
                            << " encodings differ from HF tokenizers; first ones:\n"
                            << report.str();
  std::printf("[parity] %s: %zu records, %zu mismatches\n", what, records.size(), mismatches);
}

const Tokenizer* JsonTokenizer() {
  static std::unique_ptr<Tokenizer> tok = [] {
    auto t = Tokenizer::FromTokenizerJson(ModelDir() + "/tokenizer.json");
    EXPECT_TRUE(t.ok()) << t.status().ToString();
    return t.ok() ? std::move(t).value() : nullptr;
  }();
  return tok.get();
}

const Tokenizer* VocabTokenizer() {
  static std::unique_ptr<Tokenizer> tok = [] {
    TokenizerOptions opts;
    opts.lowercase = true;
    auto t = Tokenizer::FromVocabFile(ModelDir() + "/vocab.txt", opts);
    EXPECT_TRUE(t.ok()) << t.status().ToString();
    return t.ok() ? std::move(t).value() : nullptr;
  }();
  return tok.get();
}

constexpr size_t kMsMarco = 6980, kStsSentences = 2 * 1379, kDl19Pairs = 4300;

TEST(TokenizerParityJson, MsMarcoQueries) {
  ASSERT_NE(JsonTokenizer(), nullptr);
  CheckRecords(*JsonTokenizer(), LoadSet("tokenizer_json.jsonl", "msmarco"), "msmarco",
               2 * kMsMarco);
}

TEST(TokenizerParityJson, StsBSentences) {
  ASSERT_NE(JsonTokenizer(), nullptr);
  CheckRecords(*JsonTokenizer(), LoadSet("tokenizer_json.jsonl", "sts"), "sts-b",
               2 * kStsSentences);
}

TEST(TokenizerParityJson, Dl19QueryPassagePairs) {
  ASSERT_NE(JsonTokenizer(), nullptr);
  CheckRecords(*JsonTokenizer(), LoadSet("tokenizer_json.jsonl", "dl19_pairs"), "dl19 pairs",
               2 * kDl19Pairs);
}

// truncation_direction "left" (HF enable_truncation(direction="left")): each sequence keeps its
// end; pairs lose tokens by longest_first as on the right.
TEST(TokenizerParityJson, LeftTruncation) {
  ASSERT_NE(JsonTokenizer(), nullptr);
  const std::vector<Record> passages = LoadSet("tokenizer_json.jsonl", "dl19_passages_left");
  const std::vector<Record> pairs = LoadSet("tokenizer_json.jsonl", "dl19_pairs_left");
  size_t cut = 0;
  for (const Record& r : passages) cut += r.truncated ? 1 : 0;
  EXPECT_GT(cut, passages.size() / 2) << "most passages must be cut at 48 tokens";
  CheckRecords(*JsonTokenizer(), passages, "dl19 passages, left", 0);
  CheckRecords(*JsonTokenizer(), pairs, "dl19 pairs, left", 2 * ((kDl19Pairs + 3) / 4));
}

TEST(TokenizerParityJson, EdgeCases) {
  ASSERT_NE(JsonTokenizer(), nullptr);
  CheckRecords(*JsonTokenizer(), LoadSet("tokenizer_json.jsonl", "edge"), "edge singles", 0);
  CheckRecords(*JsonTokenizer(), LoadSet("tokenizer_json.jsonl", "edge_pairs"), "edge pairs", 0);
}

TEST(TokenizerParityVocabTxt, MsMarcoQueries) {
  ASSERT_NE(VocabTokenizer(), nullptr);
  CheckRecords(*VocabTokenizer(), LoadSet("vocab_txt.jsonl", "msmarco"), "vocab.txt msmarco",
               kMsMarco);
}

TEST(TokenizerParityVocabTxt, StsBAndDl19) {
  ASSERT_NE(VocabTokenizer(), nullptr);
  CheckRecords(*VocabTokenizer(), LoadSet("vocab_txt.jsonl", "sts"), "vocab.txt sts-b",
               kStsSentences);
  CheckRecords(*VocabTokenizer(), LoadSet("vocab_txt.jsonl", "dl19_pairs"), "vocab.txt dl19 pairs",
               kDl19Pairs);
}

TEST(TokenizerParityVocabTxt, EdgeCases) {
  ASSERT_NE(VocabTokenizer(), nullptr);
  CheckRecords(*VocabTokenizer(), LoadSet("vocab_txt.jsonl", "edge"), "vocab.txt edge singles", 0);
  CheckRecords(*VocabTokenizer(), LoadSet("vocab_txt.jsonl", "edge_pairs"), "vocab.txt edge pairs",
               0);
}

TEST(TokenizerParityVocabTxt, NormalizerOptionsOnEdgeCases) {
  // Same variants as VOCAB_OPTION_VARIANTS in tools/gen_tokenizer_golden.py.
  struct Variant {
    const char* set;
    TokenizerOptions opts;
  };
  std::vector<Variant> variants(4);
  variants[0].set = "opt_cased";
  variants[0].opts.lowercase = false;
  variants[1].set = "opt_keep_accents";
  variants[1].opts.strip_accents = false;
  variants[2].set = "opt_strip_cased";
  variants[2].opts.lowercase = false;
  variants[2].opts.strip_accents = true;
  variants[3].set = "opt_raw";
  variants[3].opts.clean_text = false;
  variants[3].opts.handle_chinese_chars = false;
  for (const Variant& v : variants) {
    auto tok = Tokenizer::FromVocabFile(ModelDir() + "/vocab.txt", v.opts);
    ASSERT_TRUE(tok.ok()) << tok.status().ToString();
    const std::string name = std::string("vocab.txt ") + v.set;
    CheckRecords(**tok, LoadSet("vocab_txt.jsonl", v.set), name.c_str(), 0);
    CheckRecords(**tok, LoadSet("vocab_txt.jsonl", std::string(v.set) + "_pairs"),
                 (name + " pairs").c_str(), 0);
  }
}

TEST(TokenizerParityJson, FromDirectoryMatchesTokenizerJson) {
  ASSERT_NE(JsonTokenizer(), nullptr);
  auto dir_tok = Tokenizer::FromDirectory(ModelDir());
  ASSERT_TRUE(dir_tok.ok()) << dir_tok.status().ToString();
  const auto records = LoadSet("tokenizer_json.jsonl", "edge");
  CheckRecords(**dir_tok, records, "FromDirectory edge singles", 0);
}

// ---- Every code point ----------------------------------------------------------------------

json LoadUnicode() {
  const std::string dir = GoldenDir();
  if (dir.empty()) return json();
  std::ifstream in(fs::path(dir) / "unicode.json");
  if (!in) {
    ADD_FAILURE() << "cannot open unicode.json in " << dir;
    return json();
  }
  return json::parse(in);
}

bool IsScalar(char32_t c) {
  return c < 0xD800 || (c > 0xDFFF && c < 0x110000);
}

std::string Utf8(std::u32string_view s) {
  std::string out;
  for (char32_t c : s) unicode::AppendUtf8(c, &out);
  return out;
}

// A golden table {"removed": ranges, "spaced": ranges, "changed": {cp: output}} expanded for
// fast lookup; code points not listed are unchanged by the probed function.
struct ProbeTable {
  enum Kind : uint8_t { kSame, kRemoved, kSpaced, kChanged };
  std::vector<uint8_t> kind = std::vector<uint8_t>(0x110000, kSame);
  std::map<char32_t, std::string> changed;

  explicit ProbeTable(const json& t) {
    for (const json& r : t.at("removed")) {
      for (char32_t c = r[0].get<char32_t>(); c <= r[1].get<char32_t>(); ++c) kind[c] = kRemoved;
    }
    for (const json& r : t.at("spaced")) {
      for (char32_t c = r[0].get<char32_t>(); c <= r[1].get<char32_t>(); ++c) kind[c] = kSpaced;
    }
    for (const auto& [key, value] : t.at("changed").items()) {
      const char32_t c = static_cast<char32_t>(std::stoul(key));
      kind[c] = kChanged;
      changed[c] = value.get<std::string>();
    }
  }
  std::string Expected(char32_t c, const std::string& input) const {
    switch (kind[c]) {
      case kRemoved:
        return "";
      case kSpaced:
        return " " + input + " ";
      case kChanged:
        return changed.at(c);
      default:
        return input;
    }
  }
};

// Checks a function over all code points (except surrogates and '|', the separator the golden
// script used) against a golden table.
template <typename Probe, typename Fn>
void CheckAllCodePoints(const json& golden, const char* what, Probe probe, Fn fn) {
  ASSERT_TRUE(golden.is_object()) << what << " missing in unicode.json";
  const ProbeTable table(golden);
  size_t mismatches = 0, checked = 0;
  std::ostringstream report;
  for (char32_t c = 0; c < 0x110000; ++c) {
    if (!IsScalar(c) || c == U'|') continue;
    const std::string input = probe(c);
    const std::string want = table.Expected(c, input);
    const std::string got = fn(input);
    ++checked;
    if (got != want && ++mismatches <= 10) {
      char buf[64];
      std::snprintf(buf, sizeof(buf), "U+%04X", static_cast<unsigned>(c));
      report << "  " << buf << ": expected \"" << Escape(want) << "\" got \"" << Escape(got)
             << "\"\n";
    }
  }
  EXPECT_EQ(mismatches, 0u) << what << ": " << mismatches << " code points differ:\n"
                            << report.str();
  std::printf("[parity] %s: %zu code points, %zu mismatches\n", what, checked, mismatches);
}

TEST(TokenizerParityUnicode, NormalizerComponentsOnEveryCodePoint) {
  const json u = LoadUnicode();
  ASSERT_TRUE(u.is_object());
  using tokenizer_internal::NormalizerConfig;
  struct Case {
    const char* key;
    NormalizerConfig cfg;
  };
  const Case cases[] = {
      {"clean_text", {true, true, false, false, false}},
      {"chinese_chars", {true, false, true, false, false}},
      {"strip_accents", {true, false, false, true, false}},
      {"lowercase", {true, false, false, false, true}},
      {"bert_default", {true, true, true, true, true}},
  };
  for (const Case& tc : cases) {
    tokenizer_internal::NormalizerScratch scratch;
    std::string out;
    CheckAllCodePoints(
        u[tc.key], tc.key, [](char32_t c) { return Utf8(std::u32string(1, c)); },
        [&](const std::string& in) {
          tokenizer_internal::Normalize(tc.cfg, in, &scratch, &out);
          return out;
        });
  }
}

TEST(TokenizerParityUnicode, NfdCanonicalOrderingOnEveryCodePoint) {
  const json u = LoadUnicode();
  ASSERT_TRUE(u.is_object());
  const auto nfd = [](const std::string& in) {
    std::u32string s;
    for (size_t pos = 0; pos < in.size();) s.push_back(unicode::DecodeUtf8(in, &pos));
    return Utf8(unicode::Nfd(s));
  };
  CheckAllCodePoints(
      u["nfd_c_0334"], "NFD(c + U+0334)",
      [](char32_t c) {
        return Utf8(std::u32string{c, 0x334});
      },
      nfd);
  CheckAllCodePoints(
      u["nfd_0345_c"], "NFD(U+0345 + c)",
      [](char32_t c) {
        return Utf8(std::u32string{0x345, c});
      },
      nfd);
}

TEST(TokenizerParityUnicode, PreTokenizerClassesOnEveryCodePoint) {
  const json u = LoadUnicode();
  ASSERT_TRUE(u.is_object());
  std::vector<bool> punct(0x110000), space(0x110000);
  for (const json& c : u.at("punctuation")) punct[c.get<char32_t>()] = true;
  for (const json& c : u.at("whitespace")) space[c.get<char32_t>()] = true;
  size_t mismatches = 0;
  std::ostringstream report;
  std::vector<std::string_view> words;
  for (char32_t c = 0; c < 0x110000; ++c) {
    if (!IsScalar(c) || c == U'a') continue;
    const std::string text = Utf8(std::u32string{U'a', c, U'a'});
    words.clear();
    tokenizer_internal::BertPreTokenize(text, &words);
    const size_t want = punct[c] ? 3 : space[c] ? 2 : 1;
    if (words.size() != want && ++mismatches <= 10) {
      report << "  U+" << std::hex << static_cast<unsigned>(c) << std::dec << ": expected " << want
             << " words, got " << words.size() << "\n";
    }
  }
  EXPECT_EQ(mismatches, 0u) << report.str();
  std::printf("[parity] BertPreTokenizer classes: %zu mismatches\n", mismatches);
}

}  // namespace
}  // namespace encserve
