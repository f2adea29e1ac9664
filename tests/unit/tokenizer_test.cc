// Unit tests of the tokenizer module: loading errors, UTF-8 validation, normalization,
// WordPiece, added tokens, truncation, thread safety.
#include "tokenizer/tokenizer.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "tokenizer/normalizer.h"
#include "tokenizer/truncation.h"
#include "tokenizer/unicode.h"

namespace encserve {
namespace {

namespace fs = std::filesystem;

// A fresh temporary folder per test, removed afterwards.
class TempDir {
 public:
  TempDir() {
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    path_ = fs::temp_directory_path() /
            ("encserve_tok_" + std::to_string(::getpid()) + "_" + info->name());
    fs::remove_all(path_);
    fs::create_directories(path_);
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path_, ec);
  }
  std::string Write(const std::string& name, const std::string& content) const {
    const fs::path p = path_ / name;
    std::ofstream(p, std::ios::binary) << content;
    return p.string();
  }
  std::string path() const { return path_.string(); }

 private:
  fs::path path_;
};

#ifndef ENCSERVE_MODEL_DIR
#define ENCSERVE_MODEL_DIR ""
#endif

// $ENCSERVE_MODEL_DIR if set, else the location CMake compiled in.
std::string ModelDir() {
  const char* v = std::getenv("ENCSERVE_MODEL_DIR");
  return v != nullptr && *v != '\0' ? std::string(v) : std::string(ENCSERVE_MODEL_DIR);
}

const Tokenizer& Model() {
  static std::unique_ptr<Tokenizer> tok = [] {
    auto t = Tokenizer::FromDirectory(ModelDir());
    if (!t.ok()) {
      ADD_FAILURE() << "cannot load the model tokenizer from ENCSERVE_MODEL_DIR='" << ModelDir()
                    << "': " << t.status().ToString();
      std::abort();
    }
    return std::move(t).value();
  }();
  return *tok;
}

// Small vocabulary: ids are line numbers.
const char* kSmallVocab =
    "[PAD]\n[UNK]\n[CLS]\n[SEP]\n[MASK]\nhello\nworld\nun\n##aff\n##able\na\n##a\nb\n##b\n"
    "!\n,\nthe\ncafe\n##s\nx\n";
constexpr int32_t kPad = 0, kUnk = 1, kCls = 2, kSep = 3, kMask = 4, kHello = 5, kWorld = 6,
                  kUn = 7, kAff = 8, kAble = 9, kA = 10, kHashA = 11, kB = 12, kHashB = 13,
                  kBang = 14, kComma = 15, kThe = 16, kCafe = 17, kHashS = 18, kX = 19;

std::unique_ptr<Tokenizer> SmallTokenizer(const TempDir& dir, TokenizerOptions opts = {}) {
  auto t = Tokenizer::FromVocabFile(dir.Write("vocab.txt", kSmallVocab), opts);
  EXPECT_TRUE(t.ok()) << t.status().ToString();
  return t.ok() ? std::move(t).value() : nullptr;
}

std::vector<int32_t> Ids(const Tokenizer& tok, std::string_view text, size_t max_length = 512) {
  auto enc = tok.Encode(text, max_length);
  EXPECT_TRUE(enc.ok()) << enc.status().ToString();
  return enc.ok() ? enc->ids : std::vector<int32_t>{};
}

// ---- Loading -------------------------------------------------------------------------------

TEST(TokenizerLoad, MissingFilesAreNotFound) {
  TempDir dir;
  EXPECT_EQ(Tokenizer::FromDirectory(dir.path() + "/nope").status().code(), StatusCode::kNotFound);
  EXPECT_EQ(Tokenizer::FromDirectory(dir.path()).status().code(), StatusCode::kNotFound);
  EXPECT_EQ(Tokenizer::FromTokenizerJson(dir.path() + "/tokenizer.json").status().code(),
            StatusCode::kNotFound);
  EXPECT_EQ(Tokenizer::FromVocabFile(dir.path() + "/vocab.txt", {}).status().code(),
            StatusCode::kNotFound);
}

TEST(TokenizerLoad, MalformedTokenizerJson) {
  TempDir dir;
  const std::vector<std::string> bad = {
      "{not json",
      "[1, 2, 3]",
      "{}",
      R"({"model": {"type": "WordPiece", "vocab": {"[UNK]": "zero"}}})",
      R"({"model": {"type": "WordPiece", "vocab": {"[UNK]": -5}}})",
      R"({"model": {"type": "WordPiece", "vocab": {"a": 0}}})",  // no [UNK]
      R"({"model": {"type": "WordPiece", "vocab": [1]}})",
      R"({"model": {"type": "WordPiece", "vocab": {"[UNK]": 0}}, "added_tokens": [{"id": 1}]})",
      R"({"model": {"type": "WordPiece", "vocab": {"[UNK]": 0}}, "normalizer": {"type":
         "BertNormalizer", "lowercase": "yes"}})",
  };
  for (const std::string& content : bad) {
    auto t = Tokenizer::FromTokenizerJson(dir.Write("tokenizer.json", content));
    ASSERT_FALSE(t.ok()) << content;
    EXPECT_EQ(t.status().code(), StatusCode::kDataLoss)
        << content << " -> " << t.status().ToString();
  }
}

TEST(TokenizerLoad, UnsupportedComponentsAreUnimplemented) {
  TempDir dir;
  const std::string vocab = R"("vocab": {"[UNK]": 0, "a": 1})";
  const std::vector<std::string> unsupported = {
      R"({"model": {"type": "BPE", "vocab": {}, "merges": []}})",
      R"({"model": {"type": "Unigram", "vocab": []}})",
      R"({"model": {"type": "WordPiece", )" + vocab + R"(}, "normalizer": {"type": "NFKC"}})",
      R"({"model": {"type": "WordPiece", )" + vocab +
          R"(}, "pre_tokenizer": {"type": "ByteLevel"}})",
      R"({"model": {"type": "WordPiece", )" + vocab +
          R"(}, "post_processor": {"type": "RobertaProcessing"}})",
  };
  for (const std::string& content : unsupported) {
    auto t = Tokenizer::FromTokenizerJson(dir.Write("tokenizer.json", content));
    ASSERT_FALSE(t.ok()) << content;
    EXPECT_EQ(t.status().code(), StatusCode::kUnimplemented) << t.status().ToString();
    EXPECT_NE(t.status().message().find("not supported"), std::string::npos);
  }
}

TEST(TokenizerLoad, MinimalTokenizerJsonWithoutProcessors) {
  TempDir dir;
  auto t = Tokenizer::FromTokenizerJson(
      dir.Write("tokenizer.json",
                R"({"model": {"type": "WordPiece", "vocab": {"[UNK]": 0, "ab": 1, "##c": 2}},
          "normalizer": null, "pre_tokenizer": {"type": "BertPreTokenizer"},
          "post_processor": null, "added_tokens": []})"));
  ASSERT_TRUE(t.ok()) << t.status().ToString();
  EXPECT_EQ(Ids(**t, "abc ab AB"), (std::vector<int32_t>{1, 2, 1, 0}));  // no normalizer
  EXPECT_EQ((*t)->num_special_tokens(false), 0u);
  EXPECT_EQ((*t)->vocab_size(), 3u);
}

TEST(TokenizerLoad, BadVocabFiles) {
  TempDir dir;
  EXPECT_EQ(Tokenizer::FromVocabFile(dir.Write("empty.txt", ""), {}).status().code(),
            StatusCode::kDataLoss);
  EXPECT_EQ(
      Tokenizer::FromVocabFile(dir.Write("nounk.txt", "[CLS]\n[SEP]\na\n"), {}).status().code(),
      StatusCode::kDataLoss);
  EXPECT_EQ(
      Tokenizer::FromVocabFile(dir.Write("nocls.txt", "[UNK]\n[SEP]\na\n"), {}).status().code(),
      StatusCode::kDataLoss);
  EXPECT_EQ(Tokenizer::FromVocabFile(dir.Write("utf8.txt", "[UNK]\n[CLS]\n[SEP]\n\xC3\n"), {})
                .status()
                .code(),
            StatusCode::kDataLoss);
}

TEST(TokenizerLoad, VocabFileLinesAreTrimmedAndCrlfTolerated) {
  TempDir dir;
  auto t = Tokenizer::FromVocabFile(dir.Write("v.txt", "[UNK]\r\n[CLS]  \r\n[SEP]\t\nhi\r\n"), {});
  ASSERT_TRUE(t.ok()) << t.status().ToString();
  EXPECT_EQ(Ids(**t, "hi"), (std::vector<int32_t>{1, 3, 2}));
  EXPECT_EQ((*t)->IdToToken(1), "[CLS]");
}

TEST(TokenizerLoad, DirectoryWithVocabAndConfig) {
  TempDir dir;
  dir.Write("vocab.txt", std::string(kSmallVocab) + "Hello\n");
  dir.Write("tokenizer_config.json", R"({"do_lower_case": false})");
  auto cased = Tokenizer::FromDirectory(dir.path());
  ASSERT_TRUE(cased.ok()) << cased.status().ToString();
  EXPECT_EQ(Ids(**cased, "Hello hello"), (std::vector<int32_t>{kCls, 20, kHello, kSep}));
  dir.Write("tokenizer_config.json", R"({"do_lower_case": true})");
  auto uncased = Tokenizer::FromDirectory(dir.path());
  ASSERT_TRUE(uncased.ok());
  EXPECT_EQ(Ids(**uncased, "Hello hello"), (std::vector<int32_t>{kCls, kHello, kHello, kSep}));
  dir.Write("tokenizer_config.json", "{broken");
  EXPECT_EQ(Tokenizer::FromDirectory(dir.path()).status().code(), StatusCode::kDataLoss);
}

// ---- UTF-8 ---------------------------------------------------------------------------------

TEST(TokenizerUtf8, FindInvalid) {
  using unicode::FindInvalidUtf8;
  using unicode::kValidUtf8;
  EXPECT_EQ(FindInvalidUtf8(""), kValidUtf8);
  EXPECT_EQ(FindInvalidUtf8("plain ascii"), kValidUtf8);
  EXPECT_EQ(FindInvalidUtf8("caf\xC3\xA9 \xE4\xB8\xAD \xF0\x9F\xA4\x97 \xF4\x8F\xBF\xBF"),
            kValidUtf8);
  EXPECT_EQ(FindInvalidUtf8(std::string_view("a\0b", 3)), kValidUtf8);
  EXPECT_EQ(FindInvalidUtf8("abc\xC3"), 3u);           // truncated 2-byte
  EXPECT_EQ(FindInvalidUtf8("ab\xE4\xB8"), 2u);        // truncated 3-byte
  EXPECT_EQ(FindInvalidUtf8("\xF0\x9F\xA4 x"), 0u);    // truncated 4-byte
  EXPECT_EQ(FindInvalidUtf8("x\xC3(y"), 1u);           // bad continuation
  EXPECT_EQ(FindInvalidUtf8("\xC0\xAF"), 0u);          // overlong '/'
  EXPECT_EQ(FindInvalidUtf8("ok\xC1\xBF"), 2u);        // overlong
  EXPECT_EQ(FindInvalidUtf8("\xE0\x80\xAF"), 0u);      // overlong 3-byte
  EXPECT_EQ(FindInvalidUtf8("\xF0\x80\x80\xAF"), 0u);  // overlong 4-byte
  EXPECT_EQ(FindInvalidUtf8("abcd\x80"), 4u);          // lone continuation
  EXPECT_EQ(FindInvalidUtf8("\xBF"), 0u);
  EXPECT_EQ(FindInvalidUtf8("s\xED\xA0\x80"), 1u);     // U+D800 surrogate
  EXPECT_EQ(FindInvalidUtf8("\xED\xBF\xBF"), 0u);      // U+DFFF surrogate
  EXPECT_EQ(FindInvalidUtf8("\xF4\x90\x80\x80"), 0u);  // U+110000
  EXPECT_EQ(FindInvalidUtf8("\xF5\x80\x80\x80"), 0u);
  EXPECT_EQ(FindInvalidUtf8("\xFF"), 0u);
  EXPECT_EQ(FindInvalidUtf8("\xFE"), 0u);
}

TEST(TokenizerUtf8, EncodeRejectsInvalidUtf8WithOffset) {
  const Tokenizer& tok = Model();
  struct Case {
    std::string text;
    size_t offset;
  };
  const Case cases[] = {
      {"hello \xC3", 6},        // truncated multibyte
      {"\xC0\xAF", 0},          // overlong encoding
      {"ab\xE0\x80\xAF", 2},    // overlong 3-byte
      {"caf\xC3\xA9\x80", 5},   // lone continuation byte after a valid char
      {"x \xED\xA0\x80 y", 2},  // surrogate U+D800 encoded in UTF-8
      {"\xF4\x90\x80\x80", 0},  // beyond U+10FFFF
  };
  for (const Case& c : cases) {
    auto enc = tok.Encode(c.text, 128);
    ASSERT_FALSE(enc.ok());
    EXPECT_EQ(enc.status().code(), StatusCode::kInvalidArgument);
    EXPECT_NE(enc.status().message().find("byte offset " + std::to_string(c.offset)),
              std::string::npos)
        << enc.status().message();
    auto pair_a = tok.EncodePair(c.text, "fine", 128);
    EXPECT_EQ(pair_a.status().code(), StatusCode::kInvalidArgument);
    auto pair_b = tok.EncodePair("fine", c.text, 128);
    EXPECT_EQ(pair_b.status().code(), StatusCode::kInvalidArgument);
    EXPECT_NE(pair_b.status().message().find("second"), std::string::npos);
  }
}

// ---- Normalizer / pre-tokenizer ------------------------------------------------------------

std::string Norm(std::string_view in, tokenizer_internal::NormalizerConfig cfg = {}) {
  tokenizer_internal::NormalizerScratch scratch;
  std::string out;
  tokenizer_internal::Normalize(cfg, in, &scratch, &out);
  return out;
}

TEST(TokenizerNormalizer, BertDefaults) {
  EXPECT_EQ(Norm("Héllo WÖRLD"), "hello world");
  EXPECT_EQ(Norm("Ångström naïve café"), "angstrom naive cafe");
  EXPECT_EQ(Norm("a\tb\nc\r\nd\xC2\xA0"
                 "e\xE3\x80\x80"
                 "f"),
            "a b c  d e f");  // whitespace
  EXPECT_EQ(Norm(std::string_view("a\0b\x07"
                                  "c\xE2\x80\x8B"
                                  "d\xEF\xBB\xBF"
                                  "e\xC2\xAD"
                                  "f",
                                  16)),
            "abcdef");                      // NUL, BEL, ZWSP, BOM, soft hyphen removed
  EXPECT_EQ(Norm("x\xEF\xBF\xBDy"), "xy");  // U+FFFD removed
  EXPECT_EQ(Norm("中文ok"), " 中  文 ok");
  EXPECT_EQ(Norm("İ"), "i");  // NFD + strip + lowercase
  EXPECT_EQ(Norm("Straße"), "straße");
  EXPECT_EQ(Norm(""), "");
}

TEST(TokenizerNormalizer, Options) {
  tokenizer_internal::NormalizerConfig keep_accents;
  keep_accents.strip_accents = false;
  EXPECT_EQ(Norm("Café İ", keep_accents), "café i\xCC\x87");  // full lowercase of U+0130
  tokenizer_internal::NormalizerConfig no_clean;
  no_clean.clean_text = false;
  EXPECT_EQ(Norm("a\tb\x07", no_clean), "a\tb\x07");
  tokenizer_internal::NormalizerConfig no_cjk;
  no_cjk.handle_chinese_chars = false;
  EXPECT_EQ(Norm("中文", no_cjk), "中文");
  tokenizer_internal::NormalizerConfig off;
  off.enabled = false;
  EXPECT_EQ(Norm("ÀB\t", off), "ÀB\t");
}

TEST(TokenizerPreTokenizer, SplitsOnWhitespaceAndPunctuation) {
  std::vector<std::string_view> words;
  tokenizer_internal::BertPreTokenize("  hello, world!!  «x»y-z \xE3\x80\x82 ", &words);
  const std::vector<std::string_view> want = {"hello", ",", "world", "!", "!", "«",
                                              "x",     "»", "y",     "-", "z", "。"};
  EXPECT_EQ(words, want);
  words.clear();
  tokenizer_internal::BertPreTokenize("$5 + 3^2", &words);  // ASCII symbols count as punctuation
  EXPECT_EQ(words, (std::vector<std::string_view>{"$", "5", "+", "3", "^", "2"}));
  words.clear();
  tokenizer_internal::BertPreTokenize("€5 ©", &words);  // Unicode symbols (Sc, So) do not
  EXPECT_EQ(words, (std::vector<std::string_view>{"€5", "©"}));
}

// ---- WordPiece / added tokens on a small vocabulary -----------------------------------------

TEST(TokenizerWordPiece, GreedyLongestMatchFirst) {
  TempDir dir;
  auto tok = SmallTokenizer(dir);
  ASSERT_NE(tok, nullptr);
  EXPECT_EQ(Ids(*tok, "unaffable"), (std::vector<int32_t>{kCls, kUn, kAff, kAble, kSep}));
  EXPECT_EQ(Ids(*tok, "Hello, World!"),
            (std::vector<int32_t>{kCls, kHello, kComma, kWorld, kBang, kSep}));
  EXPECT_EQ(Ids(*tok, "aaab"), (std::vector<int32_t>{kCls, kA, kHashA, kHashA, kHashB, kSep}));
  // One piece missing: the whole word is [UNK], neighbours are unaffected.
  EXPECT_EQ(Ids(*tok, "the unaffablez world"),
            (std::vector<int32_t>{kCls, kThe, kUnk, kWorld, kSep}));
  EXPECT_EQ(Ids(*tok, "cafés"), (std::vector<int32_t>{kCls, kCafe, kHashS, kSep}));
}

TEST(TokenizerWordPiece, MaxInputCharsPerWord) {
  TempDir dir;
  auto tok = SmallTokenizer(dir);
  ASSERT_NE(tok, nullptr);
  std::vector<int32_t> want = {kCls, kA};
  want.insert(want.end(), 99, kHashA);
  want.push_back(kSep);
  EXPECT_EQ(Ids(*tok, std::string(100, 'a')), want);  // exactly 100 chars: tokenized
  EXPECT_EQ(Ids(*tok, std::string(101, 'a')), (std::vector<int32_t>{kCls, kUnk, kSep}));
  EXPECT_EQ(Ids(*tok, std::string(150, 'a') + " x"), (std::vector<int32_t>{kCls, kUnk, kX, kSep}));
  // The limit counts code points after normalization: 100 x "á" -> 100 x "a".
  std::string accented;
  for (int i = 0; i < 100; ++i) accented += "\xC3\xA1";
  EXPECT_EQ(Ids(*tok, accented), want);
}

TEST(TokenizerAddedTokens, SpecialTokensMatchedInRawText) {
  TempDir dir;
  auto tok = SmallTokenizer(dir);
  ASSERT_NE(tok, nullptr);
  EXPECT_EQ(Ids(*tok, "hello [MASK] world"),
            (std::vector<int32_t>{kCls, kHello, kMask, kWorld, kSep}));
  EXPECT_EQ(Ids(*tok, "a[MASK]b[SEP]x"),
            (std::vector<int32_t>{kCls, kA, kMask, kB, kSep, kX, kSep}));
  EXPECT_EQ(Ids(*tok, "[PAD][UNK][CLS]"), (std::vector<int32_t>{kCls, kPad, kUnk, kCls, kSep}));
  // Matching is case-sensitive and happens before lowercasing.
  EXPECT_EQ(Ids(*tok, "[mask]"), (std::vector<int32_t>{kCls, kUnk, kUnk, kUnk, kSep}));
}

TEST(TokenizerAddedTokens, OptionsFromTokenizerJson) {
  TempDir dir;
  const std::string json = R"({
    "model": {"type": "WordPiece", "unk_token": "[UNK]", "continuing_subword_prefix": "##",
              "max_input_chars_per_word": 100,
              "vocab": {"[UNK]": 0, "[CLS]": 1, "[SEP]": 2, "a": 3, "b": 4, "<m>": 5}},
    "normalizer": {"type": "BertNormalizer", "clean_text": true, "handle_chinese_chars": true,
                   "strip_accents": null, "lowercase": true},
    "pre_tokenizer": {"type": "BertPreTokenizer"},
    "post_processor": {"type": "BertProcessing", "sep": ["[SEP]", 2], "cls": ["[CLS]", 1]},
    "added_tokens": [
      {"id": 5, "content": "<m>", "single_word": false, "lstrip": true, "rstrip": true,
       "normalized": false, "special": true},
      {"id": 6, "content": "NEW", "single_word": false, "lstrip": false, "rstrip": false,
       "normalized": true, "special": false},
      {"id": 7, "content": "w", "single_word": true, "lstrip": false, "rstrip": false,
       "normalized": false, "special": false}]})";
  auto t = Tokenizer::FromTokenizerJson(dir.Write("tokenizer.json", json));
  ASSERT_TRUE(t.ok()) << t.status().ToString();
  const Tokenizer& tok = **t;
  EXPECT_EQ(Ids(tok, "a <m> b"), (std::vector<int32_t>{1, 3, 5, 4, 2}));
  // Normalized added token: its normalized form "new" is matched in the normalized text.
  EXPECT_EQ(Ids(tok, "aNewb"), (std::vector<int32_t>{1, 3, 6, 4, 2}));
  // single_word: only matched as a whole word.
  EXPECT_EQ(Ids(tok, "a w b"), (std::vector<int32_t>{1, 3, 7, 4, 2}));
  EXPECT_EQ(Ids(tok, "awb"), (std::vector<int32_t>{1, 0, 2}));
  EXPECT_EQ(tok.IdToToken(6), "NEW");
  EXPECT_EQ(tok.vocab_size(), 8u);
  EXPECT_EQ(tok.cls_id(), 1);
  EXPECT_EQ(tok.sep_id(), 2);
}

// ---- The real model ------------------------------------------------------------------------

TEST(TokenizerModel, Basics) {
  const Tokenizer& tok = Model();
  EXPECT_EQ(tok.vocab_size(), 30522u);
  EXPECT_EQ(tok.cls_id(), 101);
  EXPECT_EQ(tok.sep_id(), 102);
  EXPECT_EQ(tok.pad_id(), 0);
  EXPECT_EQ(tok.unk_id(), 100);
  EXPECT_EQ(tok.IdToToken(101), "[CLS]");
  EXPECT_EQ(tok.IdToToken(7592), "hello");
  EXPECT_EQ(tok.IdToToken(-1), "");
  EXPECT_EQ(tok.IdToToken(1 << 30), "");
  EXPECT_EQ(tok.num_special_tokens(false), 2u);
  EXPECT_EQ(tok.num_special_tokens(true), 3u);
  auto enc = tok.Encode("Hello world!", 128);
  ASSERT_TRUE(enc.ok());
  EXPECT_EQ(enc->ids, (std::vector<int32_t>{101, 7592, 2088, 999, 102}));
  EXPECT_EQ(enc->type_ids, (std::vector<int32_t>{0, 0, 0, 0, 0}));
  EXPECT_FALSE(enc->truncated);
}

TEST(TokenizerModel, EmptyAndWhitespaceOnly) {
  const Tokenizer& tok = Model();
  for (std::string_view text :
       {std::string_view(""), std::string_view(" \t\n "), std::string_view("\xE2\x80\x8B")}) {
    auto enc = tok.Encode(text, 16);
    ASSERT_TRUE(enc.ok());
    EXPECT_EQ(enc->ids, (std::vector<int32_t>{101, 102}));
    EXPECT_EQ(enc->type_ids, (std::vector<int32_t>{0, 0}));
    EXPECT_FALSE(enc->truncated);
  }
  auto pair = tok.EncodePair("", "", 16);
  ASSERT_TRUE(pair.ok());
  EXPECT_EQ(pair->ids, (std::vector<int32_t>{101, 102, 102}));
  EXPECT_EQ(pair->type_ids, (std::vector<int32_t>{0, 0, 1}));
}

TEST(TokenizerModel, SingleTruncationKeepsHead) {
  const Tokenizer& tok = Model();
  const std::string text = "one two three four five six seven";
  auto full = tok.Encode(text, 512);
  ASSERT_TRUE(full.ok());
  ASSERT_EQ(full->ids.size(), 9u);
  auto enc = tok.Encode(text, 5);
  ASSERT_TRUE(enc.ok());
  ASSERT_EQ(enc->ids.size(), 5u);
  EXPECT_EQ(enc->ids.front(), 101);
  EXPECT_EQ(enc->ids.back(), 102);
  EXPECT_EQ(std::vector<int32_t>(enc->ids.begin(), enc->ids.begin() + 4),
            std::vector<int32_t>(full->ids.begin(), full->ids.begin() + 4));
  EXPECT_TRUE(enc->truncated);
  auto exact = tok.Encode(text, 9);
  ASSERT_TRUE(exact.ok());
  EXPECT_EQ(exact->ids, full->ids);
  EXPECT_FALSE(exact->truncated);
  auto minimal = tok.Encode(text, 2);
  ASSERT_TRUE(minimal.ok());
  EXPECT_EQ(minimal->ids, (std::vector<int32_t>{101, 102}));
  EXPECT_TRUE(minimal->truncated);
  EXPECT_EQ(tok.Encode(text, 1).status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(tok.Encode(text, 0).status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(tok.EncodePair(text, text, 2).status().code(), StatusCode::kInvalidArgument);
}

TEST(TokenizerTruncation, LongestFirstLengthsMatchHfTable) {
  // The table of tokenizers/src/utils/truncation.rs tests (budget 7), lengths 0, 2, 4, 8.
  using tokenizer_internal::LongestFirstLengths;
  struct Case {
    size_t n1, n2, want1, want2;
  };
  const Case cases[] = {
      {0, 0, 0, 0}, {0, 2, 0, 2}, {0, 4, 0, 4}, {0, 8, 0, 7}, {2, 0, 2, 0}, {2, 2, 2, 2},
      {2, 4, 2, 4}, {2, 8, 2, 5}, {4, 0, 4, 0}, {4, 2, 4, 2}, {4, 4, 3, 4}, {4, 8, 3, 4},
      {8, 0, 7, 0}, {8, 2, 5, 2}, {8, 4, 4, 3}, {8, 8, 3, 4},
  };
  for (const Case& c : cases) {
    auto [m1, m2] = LongestFirstLengths(c.n1, c.n2, 7);
    EXPECT_EQ(std::min(m1, c.n1), c.want1) << c.n1 << "," << c.n2;
    EXPECT_EQ(std::min(m2, c.n2), c.want2) << c.n1 << "," << c.n2;
  }
  EXPECT_EQ(LongestFirstLengths(8, 8, 0), std::make_pair(size_t{0}, size_t{0}));
}

TEST(TokenizerTruncation, EncodePairLongestFirst) {
  const Tokenizer& tok = Model();
  // Single letters are one token each.
  const auto letters = [](size_t n) {
    std::string s;
    for (size_t i = 0; i < n; ++i) s += std::string(1, static_cast<char>('a' + i)) + " ";
    return s;
  };
  struct Case {
    size_t n1, n2, max_length, want1, want2;
  };
  const Case cases[] = {
      {8, 8, 10, 3, 4},    // both truncated, the second gets the odd token
      {8, 2, 10, 5, 2},    // only the longer (first) one
      {2, 8, 10, 2, 5},    // only the longer (second) one
      {4, 4, 11, 4, 4},    // fits exactly
      {20, 20, 13, 5, 5},  // even budget
      {3, 0, 4, 1, 0},     // second empty
      {0, 6, 5, 0, 2},     // first empty
      {5, 5, 3, 0, 0},     // only the special tokens fit
  };
  for (const Case& c : cases) {
    auto enc = tok.EncodePair(letters(c.n1), letters(c.n2), c.max_length);
    ASSERT_TRUE(enc.ok()) << enc.status().ToString();
    const size_t ones = std::count(enc->type_ids.begin(), enc->type_ids.end(), 1);
    const size_t zeros = enc->type_ids.size() - ones;
    EXPECT_EQ(zeros, c.want1 + 2) << c.n1 << "," << c.n2 << " @" << c.max_length;
    EXPECT_EQ(ones, c.want2 + 1) << c.n1 << "," << c.n2 << " @" << c.max_length;
    EXPECT_EQ(enc->truncated, c.want1 < c.n1 || c.want2 < c.n2);
    ASSERT_GE(enc->ids.size(), 3u);
    EXPECT_EQ(enc->ids.front(), 101);
    EXPECT_EQ(enc->ids[c.want1 + 1], 102);
    EXPECT_EQ(enc->ids.back(), 102);
    EXPECT_LE(enc->ids.size(), c.max_length);
  }
}

TEST(TokenizerModel, RandomBytesNeverCrash) {
  const Tokenizer& tok = Model();
  std::mt19937 rng(1234);
  for (int iter = 0; iter < 2000; ++iter) {
    std::string text(rng() % 64, '\0');
    for (char& c : text) {
      // Mostly ASCII and UTF-8 lead/continuation bytes.
      const uint32_t r = rng() % 4;
      c = static_cast<char>(r == 0   ? rng() % 0x80
                            : r == 1 ? 0x80 + rng() % 0x40
                                     : 0xC0 + rng() % 0x40);
    }
    auto enc = tok.Encode(text, 32);
    const bool valid = unicode::FindInvalidUtf8(text) == unicode::kValidUtf8;
    ASSERT_EQ(enc.ok(), valid) << enc.status().ToString();
    if (valid) {
      ASSERT_LE(enc->ids.size(), 32u);
      for (int32_t id : enc->ids) ASSERT_LT(static_cast<size_t>(id), tok.vocab_size());
    } else {
      EXPECT_EQ(enc.status().code(), StatusCode::kInvalidArgument);
    }
    // Random valid code points (no surrogates).
    std::string utf8;
    for (int i = rng() % 40; i > 0; --i) {
      char32_t c = rng() % 0x110000;
      if (c >= 0xD800 && c <= 0xDFFF) c = 'x';
      unicode::AppendUtf8(c, &utf8);
    }
    auto pair = tok.EncodePair(utf8, text.substr(0, 3), 24);
    if (unicode::FindInvalidUtf8(text.substr(0, 3)) == unicode::kValidUtf8) {
      ASSERT_TRUE(pair.ok()) << pair.status().ToString();
      ASSERT_LE(pair->ids.size(), 24u);
      ASSERT_EQ(pair->ids.size(), pair->type_ids.size());
    }
  }
}

TEST(TokenizerModel, ConcurrentEncodeIsConsistent) {
  const Tokenizer& tok = Model();
  const std::vector<std::string> texts = {
      "The quick brown fox",           "Café naïve 中文 🤗",      "[MASK] is here", "",
      std::string(300, 'x') + " tail", "what is the capital of france?"};
  std::vector<std::vector<int32_t>> want;
  for (const auto& t : texts) want.push_back(Ids(tok, t, 64));
  std::vector<std::thread> threads;
  std::vector<int> failures(4, 0);
  for (int w = 0; w < 4; ++w) {
    threads.emplace_back([&, w] {
      for (int iter = 0; iter < 200; ++iter) {
        for (size_t i = 0; i < texts.size(); ++i) {
          auto enc = tok.Encode(texts[i], 64);
          if (!enc.ok() || enc->ids != want[i]) ++failures[w];
          auto pair = tok.EncodePair(texts[i], texts[(i + 1) % texts.size()], 32);
          if (!pair.ok() || pair->ids.size() > 32) ++failures[w];
        }
      }
    });
  }
  for (auto& t : threads) t.join();
  for (int f : failures) EXPECT_EQ(f, 0);
}

}  // namespace
}  // namespace encserve
