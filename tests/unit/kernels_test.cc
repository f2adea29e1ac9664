// Every kernel of every ISA this CPU supports against the naive reference (kernels/ref.h).
// ISAs the CPU lacks are skipped, not failed, and listed at the end (isa_coverage.h).
#include "kernels/kernels.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <random>
#include <string>
#include <vector>

#include "isa_coverage.h"
#include "kernels/ref.h"
#include "test_util.h"

namespace encserve::kernels {
namespace {

using ::encserve::testing::IsaCoverage;
using ::encserve::testing::MaxRelErr;
using ::encserve::testing::Random;

class KernelIsaTest : public ::testing::TestWithParam<Isa> {
 protected:
  void SetUp() override {
    const char* isa = IsaName(GetParam());
    table_ = KernelsFor(GetParam());
    if (table_ == nullptr) ENCSERVE_SKIP_ISA(isa, IsaCoverage::LacksReason(isa));
    IsaCoverage::Exercised(isa);
  }
  const KernelTable* table_ = nullptr;
};

TEST_P(KernelIsaTest, GemmMatchesReference) {
  for (int m : {1, 2, 5, 12, 13, 31, 64}) {
    for (int n : {1, 7, 16, 32, 48, 100, 384}) {
      for (int k : {1, 8, 33, 384}) {
        for (bool gelu : {false, true}) {
          auto x = Random(size_t(m) * k, m * 7 + k);
          auto w = Random(size_t(n) * k, n * 13 + k, 0.1f);
          auto b = Random(n, n + 1);
          std::vector<float> want(size_t(m) * n), got(size_t(m) * n + 1, 123.0f);
          ref::Linear(x.data(), w.data(), b.data(), want.data(), m, n, k, gelu);
          PackedF32 packed = PackF32(w.data(), b.data(), n, k, table_->gemm_nr);
          table_->gemm_f32(x.data(), k, m, packed, got.data(), n, 0, n,
                           gelu ? Epilogue::kBiasGelu : Epilogue::kBias);
          EXPECT_EQ(got.back(), 123.0f) << "wrote past the output";
          got.pop_back();
          ASSERT_LT(MaxRelErr(got, want), 2e-5f) << "m=" << m << " n=" << n << " k=" << k;
        }
      }
    }
  }
}

// The GELU epilogue over its whole range (y = GELU(x · 1 + 0)): the reciprocal estimate in erf
// must stay within erf's own error (1.5e-7) near 0 and keep huge and infinite inputs finite-safe.
TEST_P(KernelIsaTest, GeluEpilogueAcrossItsRange) {
  std::vector<float> x;
  for (int i = -1200; i <= 1200; ++i) x.push_back(i * 0.01f);
  for (float v : {1e4f, -1e4f, 1e20f, -1e20f, 3e38f, -3e38f, INFINITY}) x.push_back(v);
  const int m = static_cast<int>(x.size());
  const float one = 1.0f, zero = 0.0f;
  PackedF32 packed = PackF32(&one, &zero, 1, 1, table_->gemm_nr);
  std::vector<float> got(m);
  table_->gemm_f32(x.data(), 1, m, packed, got.data(), 1, 0, 1, Epilogue::kBiasGelu);
  for (int i = 0; i < m; ++i) {
    const float want = ref::Gelu(x[i]);
    if (std::isinf(want)) {
      EXPECT_EQ(got[i], want) << "x=" << x[i];
    } else {
      EXPECT_NEAR(got[i], want, 4e-7f * std::max(1.0f, std::fabs(x[i]))) << "x=" << x[i];
    }
  }
}

// Large m with k = 1536: the kernels walk the rows in L2-sized blocks (about 200 rows here), so
// this covers block boundaries and a partial last block, with a partial last panel (n = 40).
TEST_P(KernelIsaTest, GemmMatchesReferenceAcrossRowBlocks) {
  const int m = 517, n = 40, k = 1536;
  auto x = Random(size_t(m) * k, 5), w = Random(size_t(n) * k, 6, 0.05f), b = Random(n, 7);
  std::vector<float> want(size_t(m) * n), got(size_t(m) * n, 123.0f);
  ref::Linear(x.data(), w.data(), b.data(), want.data(), m, n, k, false);
  PackedF32 packed = PackF32(w.data(), b.data(), n, k, table_->gemm_nr);
  table_->gemm_f32(x.data(), k, m, packed, got.data(), n, 0, n, Epilogue::kBias);
  ASSERT_LT(MaxRelErr(got, want), 2e-5f);
}

TEST_P(KernelIsaTest, GemmColumnRangeWritesOnlyItsColumns) {
  const int m = 9, n = 96, k = 40, nr = table_->gemm_nr;
  auto x = Random(m * k, 1), w = Random(n * k, 2), b = Random(n, 3);
  PackedF32 packed = PackF32(w.data(), b.data(), n, k, nr);
  std::vector<float> full(m * n), split(m * n, 0.0f);
  table_->gemm_f32(x.data(), k, m, packed, full.data(), n, 0, n, Epilogue::kBias);
  table_->gemm_f32(x.data(), k, m, packed, split.data(), n, nr, n, Epilogue::kBias);
  for (int i = 0; i < m; ++i) {
    for (int j = 0; j < n; ++j) {
      if (j < nr)
        EXPECT_EQ(split[i * n + j], 0.0f);
      else
        EXPECT_EQ(split[i * n + j], full[i * n + j]);
    }
  }
}

TEST_P(KernelIsaTest, LayerNormMatchesReference) {
  for (int n : {8, 32, 37, 384}) {
    for (bool with_residual : {false, true}) {
      const int m = 5;
      auto x = Random(m * n, n, 3.0f), r = Random(m * n, n + 1), g = Random(n, 2), b = Random(n, 4);
      for (auto& v : x) v += 5.0f;  // non-zero mean
      std::vector<float> want(m * n), got(m * n);
      const float* res = with_residual ? r.data() : nullptr;
      ref::LayerNorm(x.data(), res, g.data(), b.data(), 1e-12f, want.data(), m, n);
      table_->layernorm_f32(x.data(), res, g.data(), b.data(), 1e-12f, got.data(), m, n);
      ASSERT_LT(MaxRelErr(got, want), 2e-5f) << "n=" << n;
      // in place
      table_->layernorm_f32(x.data(), res, g.data(), b.data(), 1e-12f, x.data(), m, n);
      ASSERT_LT(MaxRelErr(x, want), 2e-5f) << "in place, n=" << n;
    }
  }
}

TEST_P(KernelIsaTest, Hadamard64MatchesReference) {
  ASSERT_NE(table_->hadamard64, nullptr);
  for (int k : {64, 384, 1536}) {
    for (bool scaled : {false, true}) {
      const int m = 3;
      auto x = Random(m * k, k, 2.0f), s = Random(k, k + 7);
      const float* cs = scaled ? s.data() : nullptr;
      std::vector<float> want(m * k), got(m * k);
      ref::Hadamard64(x.data(), cs, want.data(), m, k);
      table_->hadamard64(x.data(), cs, got.data(), m, k);
      ASSERT_LT(MaxRelErr(got, want), 1e-5f) << "k=" << k << " scaled=" << scaled;
      // in place, and H64 · H64 = 64 I brings the (scaled) input back
      table_->hadamard64(got.data(), nullptr, got.data(), m, k);
      for (int i = 0; i < m * k; ++i) {
        const float xi = x[i] * (cs ? cs[i % k] : 1.0f);
        ASSERT_NEAR(got[i] / 64.0f, xi, 1e-5f * (1.0f + std::fabs(xi))) << "k=" << k << " i=" << i;
      }
    }
  }
}

TEST_P(KernelIsaTest, AttentionHeadMatchesReference) {
  for (int len : {1, 2, 3, 4, 5, 17, 64, 130}) {
    for (int d : {8, 13, 32, 64}) {
      const int ld = 3 * d + 5;
      auto qkv = Random(size_t(len) * ld, len * 31 + d, 2.0f);
      const float* q = qkv.data();
      const float* k = qkv.data() + d;
      const float* v = qkv.data() + 2 * d;
      const float scale = 1.0f / std::sqrt(float(d));
      std::vector<float> want(size_t(len) * d), got(size_t(len) * d);
      std::vector<float> scratch(size_t(3 * d + 10) * (len + 16));
      ref::AttentionHead(q, k, v, ld, len, d, scale, want.data(), d);
      table_->attention_head_f32(q, k, v, ld, len, d, scale, got.data(), d, scratch.data());
      ASSERT_LT(MaxRelErr(got, want), 2e-5f) << "len=" << len << " d=" << d;
    }
  }
}

TEST_P(KernelIsaTest, AttentionIsStableForLargeScores) {
  // Scores around ±500 would overflow a naive exp; the max-subtraction must keep it finite.
  const int len = 5, d = 16, ld = 3 * d;
  auto qkv = Random(len * ld, 9, 30.0f);
  std::vector<float> want(len * d), got(len * d), scratch((3 * d + 10) * (len + 16));
  ref::AttentionHead(qkv.data(), qkv.data() + d, qkv.data() + 2 * d, ld, len, d, 1.0f, want.data(),
                     d);
  table_->attention_head_f32(qkv.data(), qkv.data() + d, qkv.data() + 2 * d, ld, len, d, 1.0f,
                             got.data(), d, scratch.data());
  for (float g : got) ASSERT_TRUE(std::isfinite(g));
  ASSERT_LT(MaxRelErr(got, want), 1e-4f);
}

std::vector<float> RoundTrip(std::vector<float> v, HalfFormat f) {
  for (auto& x : v)
    x = f == HalfFormat::kF16 ? HalfToFloat(FloatToHalf(x)) : Bf16ToFloat(FloatToBf16(x));
  return v;
}

TEST_P(KernelIsaTest, HalfWeightGemmMatchesReferenceOnRoundedWeights) {
  for (HalfFormat f : {HalfFormat::kF16, HalfFormat::kBF16}) {
    for (int m : {1, 5, 13, 40}) {
      for (auto [n, k] : {std::pair{7, 33}, {48, 64}, {384, 384}}) {
        auto x = Random(size_t(m) * k, m + k);
        auto w = Random(size_t(n) * k, n * 3 + k, 0.1f);
        auto b = Random(n, n);
        std::vector<float> want(size_t(m) * n), got(size_t(m) * n);
        auto wr = RoundTrip(w, f);
        ref::Linear(x.data(), wr.data(), b.data(), want.data(), m, n, k, true);
        PackedHalf packed = PackHalf(w.data(), b.data(), n, k, table_->gemm_nr, f);
        table_->gemm_half(x.data(), k, m, packed, got.data(), n, 0, n, Epilogue::kBiasGelu);
        ASSERT_LT(MaxRelErr(got, want), 2e-5f) << "m=" << m << " n=" << n << " k=" << k;
      }
    }
  }
}

TEST_P(KernelIsaTest, Bf16DotGemmMatchesReferenceOnRoundedInputs) {
  if (table_->gemm_bf16_dot == nullptr) {
    if (table_->isa < Isa::kAvx512)
      GTEST_SKIP() << "the " << table_->name << " table has no bf16 GEMM";
    ENCSERVE_SKIP_ISA("avx512_bf16", "CPU lacks avx512_bf16");
  }
  IsaCoverage::Exercised(table_->bf16_k_align == 32 ? "amx_bf16" : "avx512_bf16");
  for (int m : {1, 5, 12, 13, 17, 40}) {
    for (auto [n, k] : {std::pair{7, 33}, {48, 64}, {33, 100}, {384, 384}, {100, 1536}}) {
      auto x = Random(size_t(m) * k, m + k);
      auto w = Random(size_t(n) * k, n * 3 + k, 0.1f);
      auto b = Random(n, n);
      std::vector<float> want(size_t(m) * n), got(size_t(m) * n);
      ref::Linear(RoundTrip(x, HalfFormat::kBF16).data(), RoundTrip(w, HalfFormat::kBF16).data(),
                  b.data(), want.data(), m, n, k, false);
      const int ldxb = Bf16Stride(*table_, k);
      // Rows past m are garbage (NaN bits): they may be read, never stored.
      std::vector<uint16_t> xb(size_t(m + table_->bf16_mr - 1) * ldxb, 0xffff);
      table_->convert_bf16(x.data(), m, k, xb.data(), ldxb);
      PackedBf16Pairs packed =
          PackBf16Pairs(w.data(), b.data(), n, k, table_->gemm_nr, table_->bf16_k_align);
      table_->gemm_bf16_dot(xb.data(), ldxb, m, packed, got.data(), n, 0, n, Epilogue::kBias);
      ASSERT_LT(MaxRelErr(got, want), 1e-4f) << "m=" << m << " n=" << n << " k=" << k;
    }
  }
}

TEST(Conversions, HalfAndBf16RoundToNearestEven) {
  std::mt19937 rng(5);
  std::uniform_real_distribution<float> mag(-20.0f, 20.0f);
  for (int i = 0; i < 200000; ++i) {
    const float x = std::ldexp(
        mag(rng) > 0 ? 1.0f + (rng() % 1000) / 1000.0f : -1.0f - (rng() % 1000) / 1000.0f,
        static_cast<int>(mag(rng)));
    const uint16_t h = FloatToHalf(x);
    const float r = HalfToFloat(h);
    // No neighbouring half is closer.
    for (int d : {-1, 1}) {
      const float nb = HalfToFloat(static_cast<uint16_t>(h + d));
      if (std::isfinite(nb) && std::isfinite(r)) {
        ASSERT_LE(std::fabs(x - r), std::fabs(x - nb)) << x;
      }
    }
    const uint16_t b = FloatToBf16(x);
    const float rb = Bf16ToFloat(b);
    for (int d : {-1, 1}) {
      const float nb = Bf16ToFloat(static_cast<uint16_t>(b + d));
      ASSERT_LE(std::fabs(x - rb), std::fabs(x - nb)) << x;
    }
  }
  EXPECT_EQ(HalfToFloat(FloatToHalf(1.0f)), 1.0f);
  EXPECT_EQ(HalfToFloat(FloatToHalf(65504.0f)), 65504.0f);
  EXPECT_TRUE(std::isinf(HalfToFloat(FloatToHalf(1e6f))));
  EXPECT_EQ(HalfToFloat(FloatToHalf(5.9604645e-8f)), 5.9604645e-8f);  // smallest subnormal
  EXPECT_EQ(HalfToFloat(FloatToHalf(0.0f)), 0.0f);
  EXPECT_EQ(Bf16ToFloat(FloatToBf16(1.0f + 1.0f / 256)), 1.0f);  // tie → even
}

INSTANTIATE_TEST_SUITE_P(AllIsas, KernelIsaTest,
                         ::testing::Values(Isa::kScalar, Isa::kAvx2, Isa::kAvx512, Isa::kAmx),
                         [](const auto& info) { return std::string(IsaName(info.param)); });

TEST(Dispatch, ActiveIsaIsSupportedAndEnvCanOnlyLowerIt) {
  EXPECT_LE(ActiveIsa(), BestSupportedIsa());
  EXPECT_NE(KernelsFor(ActiveIsa()), nullptr);
  EXPECT_EQ(Kernels().isa, ActiveIsa());
  Isa parsed;
  EXPECT_TRUE(ParseIsa("avx2", &parsed));
  EXPECT_EQ(parsed, Isa::kAvx2);
  EXPECT_FALSE(ParseIsa("sse9", &parsed));
}

}  // namespace
}  // namespace encserve::kernels
