// Data-free GPTQ calibration (backends/native/calibration.h): its shape, and the same sequences as
// tools/quant_sim.py's "wordsz512" set, whose accuracy docs/kernels_quant.md reports.
#include "backends/native/calibration.h"

#include <gtest/gtest.h>

#include <array>
#include <string>
#include <vector>

#include "test_util.h"

namespace encserve {
namespace {

// From tools/quant_sim.py (word_ids(tok, 512, zipf=True) with the all-MiniLM-L6-v2 tokenizer).
constexpr size_t kSimTokens = 13232;
constexpr std::array<int32_t, 26> kSimFirst = {
    101,  4188, 7004, 2070, 2004, 2425, 2008, 2145, 4775, 2003, 2026,  6945, 2653,
    2089, 2061, 2934, 3354, 1998, 2042, 2957, 2157, 8228, 2000, 20627, 2004, 102};

TEST(VocabularyCalibration, WordSequencesLikeTheSimulation) {
  auto tok = Tokenizer::FromDirectory(testing::ModelDir());
  ASSERT_TRUE(tok.ok()) << tok.status().ToString();
  const auto seqs = VocabularyCalibration(**tok);
  ASSERT_EQ(seqs.size(), 512u);
  size_t tokens = 0;
  for (const auto& s : seqs) {
    ASSERT_GE(s.size(), 8u);
    ASSERT_LE(s.size(), 42u);
    EXPECT_EQ(s.front(), (*tok)->cls_id());
    EXPECT_EQ(s.back(), (*tok)->sep_id());
    for (size_t i = 1; i + 1 < s.size(); ++i) {
      const std::string& w = (*tok)->IdToToken(s[i]);
      ASSERT_GE(w.size(), 2u) << w;
      for (char c : w) ASSERT_TRUE(c >= 'a' && c <= 'z') << w;
    }
    tokens += s.size();
  }
  EXPECT_EQ(tokens, kSimTokens);
  // The first sequence as tools/quant_sim.py's word_ids(tok, 512, zipf=True) makes it.
  EXPECT_EQ(seqs[0], std::vector<int32_t>(kSimFirst.begin(), kSimFirst.end()));
  EXPECT_EQ(VocabularyCalibration(**tok), seqs);  // deterministic
}

}  // namespace
}  // namespace encserve
