// Quality: STS-B test Spearman computed by encserve itself equals the published 0.8203.
#include "eval/metrics.h"
#include "eval/quality.h"
#include "native_pipeline.h"
#include "test_util.h"

namespace encserve {
namespace {

TEST(Metrics, SpearmanMatchesHandComputedValues) {
  EXPECT_NEAR(eval::Spearman({1, 2, 3, 4, 5}, {5, 6, 7, 8, 7}), 0.8207826816681233,
              1e-12);  // scipy
  EXPECT_NEAR(eval::Spearman({1, 2, 3}, {3, 2, 1}), -1.0, 1e-12);
  EXPECT_EQ(eval::Ranks({10, 20, 20, 5}), (std::vector<double>{2, 3.5, 3.5, 1}));
  EXPECT_EQ(eval::Pearson({1, 1, 1}, {1, 2, 3}), 0.0);
}

TEST(StsB, SpearmanIsThePublishedFigure) {
  auto pairs = eval::LoadStsB(testing::DataDir() + "/sts-b-test.tsv");
  ASSERT_TRUE(pairs.ok()) << pairs.status().ToString();
  ASSERT_EQ(pairs->size(), 1379u);
  testing::NativeLoad o;
  o.model_dir = testing::ModelDir();
  o.threads = 2;
  auto engine = testing::LoadNative(o);
  ASSERT_TRUE(engine.ok()) << engine.status().ToString();
  auto r = eval::EvaluateSts(**engine, *pairs);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  std::printf("STS-B Spearman %.5f Pearson %.5f\n", r->spearman, r->pearson);
  EXPECT_NEAR(r->spearman, 0.8203, 0.001);
}

}  // namespace
}  // namespace encserve
