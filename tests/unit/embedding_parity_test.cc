// The real all-MiniLM-L6-v2 against sentence-transformers (golden outputs committed by
// tools/gen_embedding_golden.py), and the engine's batching / threading / ISA invariants.
#include <nlohmann/json.hpp>
#include <thread>

#include "native_pipeline.h"
#include "reference_data.h"
#include "test_util.h"

namespace encserve {
namespace {

using testing::Cosine;
using testing::MaxAbsDiff;

using testing::Golden;
using testing::LoadGolden;

std::unique_ptr<Pipeline> LoadEngine(int threads = 1, std::optional<kernels::Isa> isa = {},
                                     bool split_batches = true) {
  testing::NativeLoad o;
  o.model_dir = testing::ModelDir();
  o.threads = threads;
  o.isa = isa;
  o.split_batches = split_batches;
  auto e = testing::LoadNative(o);
  EXPECT_TRUE(e.ok()) << e.status().ToString();
  return e.ok() ? std::move(e).value() : nullptr;
}

TEST(EmbeddingParity, MatchesSentenceTransformersOnOver1000RealTexts) {
  const Golden& g = LoadGolden();
  ASSERT_GE(g.texts.size(), 1000u);
  ASSERT_EQ(g.emb.size(), g.texts.size() * g.dim);
  auto engine = LoadEngine(2);
  ASSERT_TRUE(engine);
  EXPECT_EQ(engine->max_length(), 256);
  auto emb = engine->Embed(g.texts);
  ASSERT_TRUE(emb.ok()) << emb.status().ToString();
  ASSERT_EQ(emb->dim, g.dim);
  double worst_cos = 1;
  float worst_abs = 0;
  int bad = 0;
  for (size_t i = 0; i < g.texts.size(); ++i) {
    const float* want = g.emb.data() + i * g.dim;
    const double cos = Cosine(emb->row(int(i)), want, g.dim);
    const float abs = MaxAbsDiff(emb->row(int(i)), want, g.dim);
    worst_cos = std::min(worst_cos, cos);
    worst_abs = std::max(worst_abs, abs);
    if (cos < 0.99999 || abs > 1e-4f) {
      if (++bad <= 5)
        ADD_FAILURE() << "text " << i << " cos=" << cos << " maxabs=" << abs << ": " << g.texts[i];
    }
  }
  EXPECT_EQ(bad, 0);
  std::printf("parity over %zu texts: min cosine %.8f, max abs diff %.2e\n", g.texts.size(),
              worst_cos, worst_abs);
}

TEST(EmbeddingParity, ScalarReferencePathAgreesWithVectorisedPath) {
  const Golden& g = LoadGolden();
  std::vector<std::string> texts(g.texts.begin() + 590, g.texts.begin() + 620);  // queries + STS
  texts.push_back(g.texts.back());                                               // a 256-token text
  auto scalar = LoadEngine(1, kernels::Isa::kScalar);
  auto fast = LoadEngine(1);
  ASSERT_TRUE(scalar && fast);
  auto a = scalar->Embed(texts);
  auto b = fast->Embed(texts);
  ASSERT_TRUE(a.ok() && b.ok());
  for (int i = 0; i < a->rows; ++i) {
    EXPECT_LT(MaxAbsDiff(a->row(i), b->row(i), a->dim), 1e-5f) << "text " << i;
  }
}

TEST(EmbeddingParity, PaddingFreeBatchEqualsSingleTexts) {
  const Golden& g = LoadGolden();
  std::vector<std::string> texts = {g.texts[0], g.texts[905], g.texts[1], g.texts[1021],
                                    g.texts[600]};
  auto engine = LoadEngine(2);
  ASSERT_TRUE(engine);
  auto batch = engine->Embed(texts);
  ASSERT_TRUE(batch.ok());
  for (size_t i = 0; i < texts.size(); ++i) {
    auto single = engine->Embed({texts[i]});
    ASSERT_TRUE(single.ok());
    EXPECT_LT(MaxAbsDiff(batch->row(int(i)), single->row(0), batch->dim), 1e-5f) << i;
  }
}

TEST(EmbeddingParity, DeterministicAcrossThreadCountsAndConcurrentCallers) {
  const Golden& g = LoadGolden();
  std::vector<std::string> texts(g.texts.begin(), g.texts.begin() + 48);
  auto one = LoadEngine(1);
  ASSERT_TRUE(one);
  auto ref = one->Embed(texts);
  ASSERT_TRUE(ref.ok());
  testing::NativeLoad o;
  o.model_dir = testing::ModelDir();
  o.threads = 2;
  o.replicas = 2;
  auto shared = testing::LoadNative(o);
  ASSERT_TRUE(shared.ok());
  // 6 callers, each embedding a different rotation of the texts, at the same time.
  std::vector<std::thread> callers;
  std::vector<int> failures(6, 0);
  for (int c = 0; c < 6; ++c) {
    callers.emplace_back([&, c] {
      std::vector<std::string> mine;
      for (size_t i = 0; i < texts.size(); ++i) mine.push_back(texts[(i + c * 7) % texts.size()]);
      for (int rep = 0; rep < 3; ++rep) {
        auto r = (*shared)->Embed(mine);
        if (!r.ok()) {
          ++failures[c];
          continue;
        }
        for (size_t i = 0; i < mine.size(); ++i) {
          if (MaxAbsDiff(r->row(int(i)), ref->row(int((i + c * 7) % texts.size())), r->dim) > 1e-5f)
            ++failures[c];
        }
      }
    });
  }
  for (auto& t : callers) t.join();
  for (int c = 0; c < 6; ++c) EXPECT_EQ(failures[c], 0) << "caller " << c;
}

// Intra-op threads (no batch splitting): 2, 3, 4 and 6 threads divide MiniLM's 12 heads and
// take the fused QKV + attention region (ops::QkvAttention) with 6, 4, 3 and 2 heads per
// thread; 5 threads do not and take the separate ops. All must give the 1-thread embeddings.
TEST(EmbeddingParity, IntraOpThreadCountsAgreeWithOneThread) {
  const Golden& g = LoadGolden();
  const std::vector<std::string> texts = {g.texts[3], g.texts[905], g.texts[1021], g.texts[17]};
  auto one = LoadEngine(1);
  ASSERT_TRUE(one);
  auto ref = one->Embed(texts);
  ASSERT_TRUE(ref.ok());
  for (int threads : {2, 3, 4, 5, 6}) {
    auto engine = LoadEngine(threads, {}, /*split_batches=*/false);
    ASSERT_TRUE(engine);
    auto batch = engine->Embed(texts);
    ASSERT_TRUE(batch.ok());
    for (size_t i = 0; i < texts.size(); ++i) {
      EXPECT_LT(MaxAbsDiff(batch->row(int(i)), ref->row(int(i)), batch->dim), 1e-5f)
          << threads << " threads, text " << i << " in the batch";
      auto single = engine->Embed({texts[i]});
      ASSERT_TRUE(single.ok());
      EXPECT_LT(MaxAbsDiff(single->row(0), ref->row(int(i)), single->dim), 1e-5f)
          << threads << " threads, text " << i << " alone";
    }
  }
}

TEST(EmbeddingParity, BiEncoderScoreIsCosine) {
  auto engine = LoadEngine();
  ASSERT_TRUE(engine);
  auto s = engine->Score({{"A man is playing a guitar.", "A man plays the guitar."},
                          {"A man is playing a guitar.", "The stock market fell sharply today."}});
  ASSERT_TRUE(s.ok());
  EXPECT_GT((*s)[0], 0.8f);
  EXPECT_LT((*s)[1], 0.2f);
  auto e = engine->Embed({"A man is playing a guitar.", "A man plays the guitar."});
  ASSERT_TRUE(e.ok());
  EXPECT_NEAR((*s)[0], Cosine(e->row(0), e->row(1), e->dim), 1e-5);
}

}  // namespace
}  // namespace encserve
