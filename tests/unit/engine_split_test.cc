// The engine's sequence-parallel split (native.split_batches): the pure split function,
// and that split and intra-op runs of the real model and a tiny cross-encoder give the same
// numbers in every precision.
#include <algorithm>
#include <cstdio>
#include <nlohmann/json.hpp>

#include "backends/native/native_backend.h"
#include "native_pipeline.h"
#include "test_util.h"

namespace encserve {
namespace {

using backends::SplitBatch;

std::vector<int> Offsets(const std::vector<int>& lens) {
  std::vector<int> o{0};
  for (int l : lens) o.push_back(o.back() + l);
  return o;
}

TEST(SplitBatch, NoSplitForOneSequenceOrTooFewTokens) {
  EXPECT_EQ(SplitBatch(Offsets({500}), 2, 64), (std::vector<int>{0, 1}));
  EXPECT_EQ(SplitBatch(Offsets({30, 30, 30}), 2, 64), (std::vector<int>{0, 3}));  // 90 < 2·64
  EXPECT_EQ(SplitBatch(Offsets({64, 64}), 1, 64), (std::vector<int>{0, 2}));      // one thread
}

TEST(SplitBatch, EqualSequencesSplitEvenly) {
  EXPECT_EQ(SplitBatch(Offsets(std::vector<int>(32, 16)), 2, 64), (std::vector<int>{0, 16, 32}));
  EXPECT_EQ(SplitBatch(Offsets(std::vector<int>(32, 16)), 4, 64),
            (std::vector<int>{0, 8, 16, 24, 32}));
  // 128 tokens, 64 per part at least: at most 2 parts even with 4 threads.
  EXPECT_EQ(SplitBatch(Offsets(std::vector<int>(8, 16)), 4, 64), (std::vector<int>{0, 4, 8}));
}

TEST(SplitBatch, BalancesTokensNotSequences) {
  // One long sequence and many short ones: the long one gets a part of its own.
  EXPECT_EQ(SplitBatch(Offsets({200, 10, 10, 10, 10, 10, 10, 10, 10, 10, 10}), 2, 64),
            (std::vector<int>{0, 1, 11}));
  EXPECT_EQ(SplitBatch(Offsets({10, 10, 10, 10, 10, 10, 10, 10, 10, 10, 200}), 2, 64),
            (std::vector<int>{0, 10, 11}));
}

TEST(SplitBatch, EveryPartHasASequenceAndBoundariesIncrease) {
  for (int seqs = 2; seqs <= 40; seqs += 3) {
    for (int parts = 2; parts <= 8; ++parts) {
      std::vector<int> lens;
      for (int s = 0; s < seqs; ++s) lens.push_back(1 + (s * 37) % 120);
      const std::vector<int> b = SplitBatch(Offsets(lens), parts, 0);
      ASSERT_EQ(b.front(), 0);
      ASSERT_EQ(b.back(), seqs);
      ASSERT_EQ(static_cast<int>(b.size()) - 1, std::min(parts, seqs)) << seqs << " " << parts;
      for (size_t i = 1; i < b.size(); ++i) ASSERT_LT(b[i - 1], b[i]) << seqs << " " << parts;
    }
  }
}

std::vector<std::string> MsMarcoQueries(int n) {
  std::ifstream in(testing::DataDir() + "/msmarco-dev-small-queries.tsv");
  std::vector<std::string> out;
  std::string line;
  while (static_cast<int>(out.size()) < n && std::getline(in, line)) {
    out.push_back(line.substr(line.find('\t') + 1));
  }
  return out;
}

std::unique_ptr<Pipeline> Load(const std::string& dir, kernels::Precision p, bool split,
                               std::optional<kernels::Isa> isa = std::nullopt,
                               int max_batch_size = 64) {
  testing::NativeLoad o;
  o.model_dir = dir;
  o.isa = isa;
  o.max_batch_size = max_batch_size;
  o.threads = 2;
  o.precision = p;
  o.split_batches = split;
  auto e = testing::LoadNative(o);
  EXPECT_TRUE(e.ok()) << e.status().ToString();
  return e.ok() ? std::move(e).value() : nullptr;
}

class SplitParity : public ::testing::TestWithParam<kernels::Precision> {};

// 48 real queries (≈ 500 tokens: split into two parts) plus a long text at the end, so the parts
// differ in size; every row must equal the intra-op result bit for bit: no kernel's arithmetic on
// a row depends on the other rows of its batch or on how the work is partitioned.
TEST_P(SplitParity, EmbeddingsEqualIntraOp) {
  std::vector<std::string> texts = MsMarcoQueries(48);
  ASSERT_EQ(texts.size(), 48u);
  texts.push_back(std::string(600, 'x') + " the end of a long text");
  auto split = Load(testing::ModelDir(), GetParam(), true);
  auto intra = Load(testing::ModelDir(), GetParam(), false);
  ASSERT_TRUE(split && intra);
  auto a = split->Embed(texts);
  auto b = intra->Embed(texts);
  ASSERT_TRUE(a.ok() && b.ok());
  ASSERT_EQ(a->rows, b->rows);
  for (int i = 0; i < a->rows; ++i) {
    EXPECT_EQ(testing::MaxAbsDiff(a->row(i), b->row(i), a->dim), 0.0f) << "text " << i;
  }
}

// A large batch: each split part has ~1,000 rows, so a part's QKV projection + attention and its
// int8/int4 FFN run chunk by chunk (ops::QkvAttention, BertModel::Encode: 256 and 128 rows on the
// non-AMX kernels, 384 on AMX); every row must still equal the intra-op result bit for bit.
TEST_P(SplitParity, ChunkedPartsEqualIntraOp) {
  const std::vector<std::string> texts = MsMarcoQueries(200);
  for (kernels::Isa isa : {kernels::Isa::kAvx512, kernels::Isa::kAmx}) {
    if (isa > kernels::BestSupportedIsa()) continue;
    auto split = Load(testing::ModelDir(), GetParam(), true, isa, 256);  // one batch of 200
    auto intra = Load(testing::ModelDir(), GetParam(), false, isa, 256);
    ASSERT_TRUE(split && intra);
    auto a = split->Embed(texts);
    auto b = intra->Embed(texts);
    ASSERT_TRUE(a.ok() && b.ok());
    for (int i = 0; i < a->rows; ++i) {
      ASSERT_EQ(testing::MaxAbsDiff(a->row(i), b->row(i), a->dim), 0.0f)
          << "text " << i << " isa " << kernels::IsaName(isa);
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Precisions, SplitParity,
                         ::testing::Values(kernels::Precision::kF32, kernels::Precision::kBF16,
                                           kernels::Precision::kInt8, kernels::Precision::kInt4),
                         [](const auto& info) { return kernels::PrecisionName(info.param); });

// A text's embedding must not depend on its batch mates beyond the precision's own noise. int8:
// bit for bit. int4: batches with at least 48 tokens per GEMM run the AMX-BF16 path (int4
// decoded to bf16) where the CPU has it, single short texts the VNNI path (u8 activations), so
// the two differ by activation rounding only: both share the same int4 weights.
TEST(BatchInvariance, SingleTextsAgreeWithTheBatch) {
  const std::vector<std::string> texts = MsMarcoQueries(48);
  for (auto p : {kernels::Precision::kInt8, kernels::Precision::kInt4}) {
    auto engine = Load(testing::ModelDir(), p, true);
    ASSERT_TRUE(engine);
    auto batch = engine->Embed(texts);
    ASSERT_TRUE(batch.ok());
    double sum = 0, worst = 1;
    for (int i = 0; i < batch->rows; ++i) {
      auto one = engine->Embed({texts[i]});
      ASSERT_TRUE(one.ok());
      if (p == kernels::Precision::kInt8) {
        EXPECT_EQ(testing::MaxAbsDiff(one->row(0), batch->row(i), batch->dim), 0.0f) << i;
      }
      double dot = 0;  // both rows are L2-normalised
      for (int j = 0; j < batch->dim; ++j) dot += double(one->row(0)[j]) * batch->row(i)[j];
      sum += dot;
      worst = std::min(worst, dot);
    }
    std::printf("%s: single vs batched cosine mean %.6f min %.6f\n", kernels::PrecisionName(p),
                sum / batch->rows, worst);
    EXPECT_GE(sum / batch->rows, 0.999);
    EXPECT_GE(worst, 0.998);
  }
}

// An invalid sequence in the second part of a split batch is reported with its index in the
// whole batch.
TEST(SplitErrors, NameTheSequenceInTheWholeBatch) {
  auto engine = Load(testing::ModelDir(), kernels::Precision::kInt8, true);
  ASSERT_TRUE(engine);
  TokenBatch batch;
  for (int s = 0; s < 9; ++s) batch.Add(std::vector<int32_t>(20, 1000), {});
  batch.Add(std::vector<int32_t>(600, 1000), {});          // past max_position_embeddings (512)
  ASSERT_GT(SplitBatch(batch.offsets, 2, 64).size(), 2u);  // it would be split
  auto r = engine->backend().Run(backends::Task::kEmbed, batch);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("sequence 9 has 600 tokens"), std::string::npos)
      << r.status().message();
  // and the engine still serves
  batch.Clear();
  for (int s = 0; s < 10; ++s) batch.Add(std::vector<int32_t>(20, 1000), {});
  EXPECT_TRUE(engine->backend().Run(backends::Task::kEmbed, batch).ok());
}

TEST(SplitParity, CrossEncoderLogitsEqualIntraOp) {
  const std::string dir = testing::TestData() + "/tiny-cross-encoder";
  std::vector<TextPair> pairs;
  for (const std::string& q : MsMarcoQueries(40)) pairs.emplace_back(q, q + " " + q + " " + q);
  auto split = Load(dir, kernels::Precision::kF32, true);
  auto intra = Load(dir, kernels::Precision::kF32, false);
  ASSERT_TRUE(split && intra);
  auto a = split->Logits(pairs);
  auto b = intra->Logits(pairs);
  ASSERT_TRUE(a.ok() && b.ok()) << a.status().ToString() << b.status().ToString();
  ASSERT_EQ(a->rows, 40);
  for (int i = 0; i < a->rows; ++i) {
    EXPECT_EQ(testing::MaxAbsDiff(a->row(i), b->row(i), a->dim), 0.0f) << "pair " << i;
  }
}

}  // namespace
}  // namespace encserve
