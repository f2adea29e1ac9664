// The start-up self-check's pieces (server/self_check.h) and the embedding-space fingerprint
// (pipeline/embedding_space.h). The real check on the real model is tests/integration/
// test_self_check.py.
#include "server/self_check.h"

#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "core/sha256.h"
#include "pipeline/embedding_space.h"

namespace encserve::server {
namespace {
namespace fs = std::filesystem;
using Json = nlohmann::json;

// A golden set of `n` texts whose row i is the unit vector e_(i % dim).
Json GoldenJson(int n, int dim, const std::string& weights = "aa") {
  Json j = {{"format", "encserve-selfcheck/1"},
            {"model", "m"},
            {"weights_sha256", weights},
            {"normalize", true},
            {"dim", dim},
            {"texts", Json::array()},
            {"embeddings", Json::array()}};
  for (int i = 0; i < n; ++i) {
    j["texts"].push_back("text " + std::to_string(i));
    Json row = Json::array();
    for (int k = 0; k < dim; ++k) row.push_back(k == i % dim ? 1.0 : 0.0);
    j["embeddings"].push_back(row);
  }
  return j;
}

GoldenSet Parsed(const Json& j) {
  auto g = ParseGoldenSet(j.dump(), "g.json");
  EXPECT_TRUE(g.ok()) << g.status().ToString();
  return g.ok() ? *g : GoldenSet{};
}

TEST(GoldenSet, ParsesRowsInOrder) {
  const GoldenSet g = Parsed(GoldenJson(3, 4));
  ASSERT_EQ(g.texts.size(), 3u);
  EXPECT_EQ(g.dim, 4);
  ASSERT_EQ(g.embeddings.size(), 12u);
  EXPECT_EQ(g.embeddings[4 + 1], 1.0f);  // row 1 is e_1
  EXPECT_EQ(g.embeddings[4 + 0], 0.0f);
}

TEST(GoldenSet, MalformedFilesAreErrorsNamingTheProblem) {
  auto expect_error = [](const Json& j, const std::string& part) {
    auto g = ParseGoldenSet(j.dump(), "g.json");
    ASSERT_FALSE(g.ok()) << j.dump().substr(0, 80);
    EXPECT_NE(g.status().message().find(part), std::string::npos) << g.status().message();
  };
  Json j = GoldenJson(2, 3);
  j["format"] = "other/1";
  expect_error(j, "format");
  j = GoldenJson(2, 3);
  j["embeddings"][1].push_back(0.5);
  expect_error(j, "embeddings[1] must have 3 numbers");
  j = GoldenJson(2, 3);
  j["embeddings"].erase(1);
  expect_error(j, "one row per text");
  j = GoldenJson(2, 3);
  j["embeddings"][0][0] = "x";
  expect_error(j, "not a finite number");
  j = GoldenJson(2, 3);
  j.erase("weights_sha256");
  expect_error(j, "weights_sha256");
  EXPECT_FALSE(ParseGoldenSet("{not json", "g.json").ok());
  EXPECT_FALSE(ParseGoldenSet(GoldenJson(0, 3).dump(), "g.json").ok());
}

TEST(CompareToGolden, PassesOnTheReferencesAndFailsOnRowsOfOtherTexts) {
  const GoldenSet g = Parsed(GoldenJson(4, 4));
  SelfCheckResult same = CompareToGolden(g, g.embeddings, 0.9999);
  EXPECT_EQ(same.status, "passed");
  EXPECT_NEAR(same.min_cosine, 1.0, 1e-12);
  EXPECT_EQ(same.texts, 4);
  // Each row one text later: the mix-up a broken batch would cause.
  std::vector<float> rotated(g.embeddings.begin() + 4, g.embeddings.end());
  rotated.insert(rotated.end(), g.embeddings.begin(), g.embeddings.begin() + 4);
  SelfCheckResult mixed = CompareToGolden(g, rotated, 0.9);
  EXPECT_EQ(mixed.status, "failed");
  EXPECT_NEAR(mixed.min_cosine, 0.0, 1e-12);
  EXPECT_NE(mixed.reason.find("below 0.9"), std::string::npos) << mixed.reason;
  // One slightly-off row sets the minimum and names its text.
  std::vector<float> off = g.embeddings;
  off[2 * 4 + 3] = 0.1f;  // row 2 = (0, 0, 1, 0.1): cosine 1 / sqrt(1.01)
  SelfCheckResult near = CompareToGolden(g, off, 0.99);
  EXPECT_EQ(near.worst_text, 2);
  EXPECT_NEAR(near.min_cosine, 1.0 / std::sqrt(1.01), 1e-6);
  EXPECT_EQ(near.status, "passed");  // 0.99504 >= 0.99
  EXPECT_EQ(CompareToGolden(g, off, 0.999).status, "failed");
}

TEST(CompareToGolden, WrongShapesAndNaNsFail) {
  const GoldenSet g = Parsed(GoldenJson(2, 3));
  EXPECT_EQ(CompareToGolden(g, std::vector<float>(5, 1.0f), 0.5).status, "failed");
  std::vector<float> nan = g.embeddings;
  nan[0] = std::nanf("");
  const SelfCheckResult r = CompareToGolden(g, nan, 0.5);
  EXPECT_EQ(r.status, "failed");
  EXPECT_EQ(r.worst_text, 0);
}

TEST(SelfCheck, DefaultThresholdsFollowThePrecision) {
  EXPECT_DOUBLE_EQ(DefaultMinCosine("fp32"), 0.9999);
  EXPECT_DOUBLE_EQ(DefaultMinCosine("int8"), 0.99);
  EXPECT_DOUBLE_EQ(DefaultMinCosine("int4"), 0.90);
  EXPECT_LT(DefaultMinCosine("int4"), DefaultMinCosine("int8"));
  EXPECT_LT(DefaultMinCosine("bf16"), DefaultMinCosine("fp16"));
  EXPECT_DOUBLE_EQ(DefaultMinCosine("something-new"), 0.99);
}

TEST(FindGoldenSet, ChoosesTheFileMadeForTheWeights) {
  const fs::path dir = fs::temp_directory_path() / ("golden-" + std::to_string(::getpid()));
  fs::create_directories(dir);
  std::ofstream(dir / "a.json") << GoldenJson(2, 3, "aaaa").dump();
  std::ofstream(dir / "b.json") << GoldenJson(3, 3, "bbbb").dump();
  std::ofstream(dir / "notes.txt") << "not a golden set";
  auto b = FindGoldenSet("", {"/does/not/exist", dir.string()}, "bbbb");
  ASSERT_TRUE(b.ok()) << b.status().ToString();
  ASSERT_TRUE(b->has_value());
  EXPECT_EQ((*b)->texts.size(), 3u);
  auto none = FindGoldenSet("", {dir.string()}, "cccc");
  ASSERT_TRUE(none.ok());
  EXPECT_FALSE(none->has_value());
  // A file named explicitly must be for these weights.
  auto wrong = FindGoldenSet((dir / "a.json").string(), {}, "bbbb");
  ASSERT_FALSE(wrong.ok());
  EXPECT_NE(wrong.status().message().find("made for weights aaaa"), std::string::npos)
      << wrong.status().message();
  EXPECT_FALSE(FindGoldenSet((dir / "missing.json").string(), {}, "bbbb").ok());
  fs::remove_all(dir);
}

TEST(EmbeddingSpace, Sha256MatchesTheStandardVectors) {
  EXPECT_EQ(Sha256Hex("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  EXPECT_EQ(Sha256Hex(""), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  const fs::path f = fs::temp_directory_path() / ("sha-" + std::to_string(::getpid()));
  std::ofstream(f, std::ios::binary) << std::string(3u << 20, 'a');  // 3 blocks
  auto d = Sha256FileHex(f.string());
  ASSERT_TRUE(d.ok());
  EXPECT_EQ(*d, Sha256Hex(std::string(3u << 20, 'a')));
  fs::remove(f);
  EXPECT_EQ(Sha256FileHex(f.string()).status().code(), StatusCode::kNotFound);
}

TEST(EmbeddingSpace, FingerprintChangesWithEveryFieldThatMovesTheVectors) {
  EmbeddingSpace s{"w", "t", "mean", true, 384, "", 256};
  const std::string base = Fingerprint(s);
  EXPECT_EQ(base.rfind("es1-", 0), 0u);
  EXPECT_EQ(base.size(), 4u + 32u);
  EXPECT_EQ(base, Fingerprint(s));  // stable
  EXPECT_EQ(base, "es1-" + Sha256Hex(CanonicalText(s)).substr(0, 32));
  EXPECT_EQ(CanonicalText(s),
            "encserve-embedding-space/1\nweights=w\ntokenizer=t\npooling=mean\nnormalize=true\n"
            "dimensions=384\nprompt=" +
                Sha256Hex("") + "\nmax_tokens=256\n");
  auto differs = [&](EmbeddingSpace o) { EXPECT_NE(Fingerprint(o), base); };
  differs({"w2", "t", "mean", true, 384, "", 256});
  differs({"w", "t2", "mean", true, 384, "", 256});
  differs({"w", "t", "cls", true, 384, "", 256});
  differs({"w", "t", "mean", false, 384, "", 256});
  differs({"w", "t", "mean", true, 128, "", 256});
  differs({"w", "t", "mean", true, 384, "query: ", 256});
  differs({"w", "t", "mean", true, 384, "", 128});
  EXPECT_EQ(Fingerprint(WithOutput(s, 128, true)),
            Fingerprint(EmbeddingSpace{"w", "t", "mean", true, 128, "", 256}));
}

}  // namespace
}  // namespace encserve::server
