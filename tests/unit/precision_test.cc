// Accuracy of every reduced precision against the fp32 path on real text (MS MARCO queries and
// STS-B sentences), and STS-B Spearman per precision. bf16/fp16/int8 bounds are the project's
// targets (mean cosine ≥ 0.9999 / ≥ 0.999 with min ≥ 0.99). The int4 bound guards what the
// default int4 recipe (affine g64 + Hadamard rotation + GPTQ on vocabulary calibration) achieves
// today, 0.9881 / 0.922 / 0.8213 (round to nearest: 0.972 / 0.890 / 0.8236), which is still
// short of the target (int4 g64 mean ≥ 0.99): see docs/benchmarks/engine.md.
#include "eval/datasets.h"
#include "eval/quality.h"
#include "native_pipeline.h"
#include "test_util.h"

namespace encserve {
namespace {

using kernels::Precision;

struct Target {
  Precision precision;
  double min_mean_cos;
  double min_cos;
  double min_spearman;
};

std::unique_ptr<Pipeline> Load(Precision p) {
  testing::NativeLoad o;
  o.model_dir = testing::ModelDir();
  o.threads = 2;
  o.precision = p;
  o.group_size = 64;
  auto e = testing::LoadNative(o);
  EXPECT_TRUE(e.ok()) << e.status().ToString();
  return e.ok() ? std::move(e).value() : nullptr;
}

std::vector<std::string> Texts() {
  auto q = eval::LoadMsMarcoQueries(testing::DataDir() + "/msmarco-dev-small-queries.tsv");
  auto sts = eval::LoadStsB(testing::DataDir() + "/sts-b-test.tsv");
  EXPECT_TRUE(q.ok() && sts.ok());
  std::vector<std::string> texts(q->begin(), q->begin() + 400);
  for (size_t i = 0; i < 200; ++i) {
    texts.push_back((*sts)[i * 5].a);
    texts.push_back((*sts)[i * 5].b);
  }
  return texts;
}

class PrecisionTest : public ::testing::TestWithParam<Target> {};

TEST_P(PrecisionTest, CloseToFp32AndKeepsStsQuality) {
  const Target t = GetParam();
  auto engine = Load(t.precision);
  ASSERT_TRUE(engine);
  auto fp32 = Load(Precision::kF32);
  ASSERT_TRUE(fp32);
  const auto texts = Texts();
  auto want = fp32->Embed(texts);
  auto got = engine->Embed(texts);
  ASSERT_TRUE(want.ok() && got.ok());
  double sum = 0, worst = 1;
  for (int i = 0; i < got->rows; ++i) {
    const double c = testing::Cosine(got->row(i), want->row(i), got->dim);
    sum += c;
    worst = std::min(worst, c);
  }
  const double mean = sum / got->rows;
  auto pairs = eval::LoadStsB(testing::DataDir() + "/sts-b-test.tsv");
  ASSERT_TRUE(pairs.ok());
  auto sts = eval::EvaluateSts(*engine, *pairs);
  ASSERT_TRUE(sts.ok());
  std::printf(
      "%s (kernels %s): cosine vs fp32 mean %.6f min %.6f over %d texts; STS-B Spearman %.4f\n",
      kernels::PrecisionName(t.precision), engine->backend().info().fp32_kernels.c_str(), mean,
      worst, got->rows, sts->spearman);
  EXPECT_GE(mean, t.min_mean_cos);
  EXPECT_GE(worst, t.min_cos);
  EXPECT_GE(sts->spearman, t.min_spearman);
}

INSTANTIATE_TEST_SUITE_P(Targets, PrecisionTest,
                         ::testing::Values(Target{Precision::kBF16, 0.9999, 0.999, 0.820},
                                           Target{Precision::kF16, 0.9999, 0.9995, 0.8193},
                                           Target{Precision::kInt8, 0.999, 0.99, 0.818},
                                           Target{Precision::kInt4, 0.986, 0.90, 0.815}),
                         [](const auto& info) {
                           return std::string(kernels::PrecisionName(info.param.precision));
                         });

}  // namespace
}  // namespace encserve
