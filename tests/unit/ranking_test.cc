// nDCG@10 on TREC DL19: the BM25 order reproduces the published 0.5058, hand-computed cases,
// and MiniLM reranking beats BM25.
#include "eval/ranking.h"

#include <gtest/gtest.h>

#include "native_pipeline.h"
#include "test_util.h"

namespace encserve::eval {
namespace {

TEST(Ndcg, HandComputedCases) {
  std::map<std::string, int> judged{{"a", 3}, {"b", 1}, {"c", 0}};
  EXPECT_DOUBLE_EQ(NdcgAt({"a", "b", "c"}, judged, 10), 1.0);
  const double ideal = 3.0 + 1.0 / std::log2(3.0);
  EXPECT_NEAR(NdcgAt({"c", "a", "b"}, judged, 10), (3.0 / std::log2(3.0) + 1.0 / 2.0) / ideal,
              1e-12);
  EXPECT_NEAR(NdcgAt({"b", "x", "a"}, judged, 2), 1.0 / (3.0 + 1.0 / std::log2(3.0)), 1e-12);
  EXPECT_DOUBLE_EQ(NdcgAt({"a"}, {{"a", 0}}, 10), 0.0);
}

TEST(Ndcg, Dl19Bm25MatchesThePublishedFigureAndMiniLmImprovesIt) {
  const std::string data = ::encserve::testing::DataDir();
  auto run = LoadTrecRunJson(data + "/trec-dl19-bm25-top100.json");
  ASSERT_TRUE(run.ok()) << run.status().ToString();
  auto qrels = LoadQrels(data + "/trec-dl19-qrels.txt");
  ASSERT_TRUE(qrels.ok()) << qrels.status().ToString();
  auto bm25 = EvaluateRerank(nullptr, *run, *qrels);
  ASSERT_TRUE(bm25.ok());
  EXPECT_EQ(bm25->queries, 43);
  EXPECT_NEAR(bm25->bm25_ndcg10, 0.5058, 0.0005);  // Anserini BM25 on DL19

  testing::NativeLoad o;
  o.model_dir = ::encserve::testing::ModelDir();
  o.threads = 2;
  auto engine = testing::LoadNative(o);
  ASSERT_TRUE(engine.ok());
  // The first 12 queries keep the test short (the experiments rerank all 43).
  std::vector<RerankQuery> subset(run->begin(), run->begin() + 12);
  auto reranked = EvaluateRerank(engine->get(), subset, *qrels);
  ASSERT_TRUE(reranked.ok());
  EXPECT_GT(reranked->ndcg10, bm25->bm25_ndcg10 + 0.1) << reranked->ndcg10;
  std::printf("DL19 nDCG@10: BM25 %.4f, all-MiniLM-L6-v2 cosine rerank %.4f\n",
              reranked->bm25_ndcg10, reranked->ndcg10);
}

TEST(Qrels, BadLinesAreClearErrors) {
  ::encserve::testing::TempDir dir;
  const std::string path = dir / "bad_qrels.txt";
  ::encserve::testing::WriteFile(path, "1 Q0 d1 2\n1 Q0 d2\n");
  auto q = LoadQrels(path);
  ASSERT_FALSE(q.ok());
  EXPECT_NE(q.status().message().find(":2:"), std::string::npos);
}

}  // namespace
}  // namespace encserve::eval
