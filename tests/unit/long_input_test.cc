// Long inputs (docs/http.md, "Long inputs"): with truncation on, a text over the byte limit is
// cut near it before tokenising (LongTextCut) and gives exactly the tokens of the whole text;
// truncation can keep the end (left); without truncation the byte limit is an error.
#include <gtest/gtest.h>

#include "pipeline/pipeline.h"
#include "test_util.h"

namespace encserve {
namespace {

const Pipeline& MiniLm() {
  static std::unique_ptr<Pipeline> p = [] {
    PipelineOptions o;
    o.common.model_dir = testing::ModelDir();
    o.common.threads = 1;
    auto loaded = Pipeline::Load(o);
    EXPECT_TRUE(loaded.ok()) << loaded.status().ToString();
    return std::move(loaded).value();
  }();
  return *p;
}

// "w0 w1 w2 ..." (about 7 bytes a word; each word is a few tokens).
std::string Words(int n, const char* stem = "w") {
  std::string s;
  for (int i = 0; i < n; ++i) {
    if (i > 0) s.push_back(' ');
    s.append(stem).append(std::to_string(i));
  }
  return s;
}

TEST(LongTextCut, CutsAtTheLastWhitespaceWithinTheLimit) {
  EXPECT_FALSE(LongTextCut("short text", 100, TruncationSide::kRight).has_value());
  EXPECT_EQ(LongTextCut("aaa bbb ccc", 9, TruncationSide::kRight).value(), "aaa bbb");
  EXPECT_EQ(LongTextCut("aaa bbb ccc", 7, TruncationSide::kRight).value(), "aaa bbb");
  EXPECT_EQ(LongTextCut("aaa bbb ccc", 6, TruncationSide::kRight).value(), "aaa");
  EXPECT_EQ(LongTextCut("aaa bbb ccc", 9, TruncationSide::kLeft).value(), "bbb ccc");
  EXPECT_EQ(LongTextCut("aaa\nbbb\tccc", 4, TruncationSide::kLeft).value(), "ccc");
  // No whitespace where the cut would go: no cut (the whole text is tokenised).
  EXPECT_FALSE(LongTextCut(std::string(50, 'x'), 10, TruncationSide::kRight).has_value());
  EXPECT_FALSE(LongTextCut(std::string(50, 'x'), 10, TruncationSide::kLeft).has_value());
  // Never more than the limit.
  const std::string t = Words(2000);
  for (size_t limit : {10u, 100u, 1000u}) {
    EXPECT_LE(LongTextCut(t, limit, TruncationSide::kRight)->size(), limit);
    EXPECT_LE(LongTextCut(t, limit, TruncationSide::kLeft)->size(), limit);
  }
}

TEST(LongInput, OverTheByteLimitGivesTheWholeTextsTokens) {
  const Pipeline& p = MiniLm();
  const std::string big = Words(40000);  // ~270 KB
  ASSERT_GT(big.size(), 200000u);
  for (TruncationSide side : {TruncationSide::kRight, TruncationSide::kLeft}) {
    const InputLimits limits{1000, true, side};
    auto cut = p.EncodeTexts({big}, limits);
    ASSERT_TRUE(cut.ok()) << cut.status().ToString();
    // The reference: the whole text, no byte limit.
    auto whole = p.EncodeTexts({big}, InputLimits{SIZE_MAX, true, side});
    ASSERT_TRUE(whole.ok());
    EXPECT_EQ((*cut)[0].ids, (*whole)[0].ids);
    EXPECT_TRUE((*cut)[0].truncated);
    EXPECT_EQ((*cut)[0].ids.size(), static_cast<size_t>(p.max_length()));
  }
  // The cut itself, tokenised alone, is what EncodeTexts answered: the bounded path is taken.
  for (TruncationSide side : {TruncationSide::kRight, TruncationSide::kLeft}) {
    const auto cut = LongTextCut(big, 1000, side);
    ASSERT_TRUE(cut.has_value());
    EXPECT_LE(cut->size(), 1000u);
    auto alone = p.tokenizer().Encode(*cut, p.max_length(), side);
    ASSERT_TRUE(alone.ok());
    EXPECT_TRUE(alone->truncated);
    EXPECT_EQ(alone->ids, (*p.EncodeTexts({big}, InputLimits{1000, true, side}))[0].ids);
  }
  // Left and right keep different ends.
  auto r = p.EncodeTexts({big}, InputLimits{1000, true, TruncationSide::kRight});
  auto l = p.EncodeTexts({big}, InputLimits{1000, true, TruncationSide::kLeft});
  EXPECT_NE((*r)[0].ids, (*l)[0].ids);
  // Without truncation the byte limit stands.
  auto refused = p.EncodeTexts({big}, InputLimits{1000, false});
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.status().code(), StatusCode::kOutOfRange);
}

TEST(LongInput, LeftKeepsTheEnd) {
  const Pipeline& p = MiniLm();
  const std::string text = Words(600, "x");  // far over 256 tokens
  auto l = p.EncodeTexts({text}, InputLimits{SIZE_MAX, true, TruncationSide::kLeft});
  auto all = p.EncodeTexts({text}, InputLimits{SIZE_MAX, true});
  ASSERT_TRUE(l.ok() && all.ok());
  const Tokenizer& tok = p.tokenizer();
  auto full = tok.Encode(text, 1u << 20);
  ASSERT_TRUE(full.ok());
  const std::vector<int32_t>& ids = (*l)[0].ids;
  ASSERT_EQ(ids.size(), static_cast<size_t>(p.max_length()));
  EXPECT_EQ(ids.front(), tok.cls_id());
  EXPECT_EQ(ids.back(), tok.sep_id());
  // The body is the last max_length - 2 tokens of the whole text.
  const std::vector<int32_t> tail(full->ids.end() - 1 - (ids.size() - 2), full->ids.end() - 1);
  EXPECT_EQ(std::vector<int32_t>(ids.begin() + 1, ids.end() - 1), tail);
}

TEST(LongInput, MostlyWhitespaceFallsBackToTheWholeText) {
  const Pipeline& p = MiniLm();
  // The cut keeps only whitespace: the whole text decides (its one word is after the cut).
  const std::string text = std::string(5000, ' ') + " hello";
  auto e = p.EncodeTexts({text}, InputLimits{1000, true});
  ASSERT_TRUE(e.ok()) << e.status().ToString();
  auto want = p.tokenizer().Encode("hello", 256);
  EXPECT_EQ((*e)[0].ids, want->ids);
}

TEST(LongInput, InvalidUtf8PastTheCutIsStillAnError) {
  const Pipeline& p = MiniLm();
  std::string text = Words(3000) + " bad\xff";
  auto e = p.EncodeTexts({text}, InputLimits{1000, true});
  ASSERT_FALSE(e.ok());
  EXPECT_EQ(e.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(e.status().message().find("invalid UTF-8"), std::string::npos) << e.status().message();
}

}  // namespace
}  // namespace encserve
