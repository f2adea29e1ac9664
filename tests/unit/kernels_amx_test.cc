// AMX kernels (kernels/amx/): int8 — exact integer accumulation, bit-identical outputs to the
// AVX-512 VNNI table (same integers, same epilogue); bf16 — exact on small integers, within fp32
// rounding of the double-precision reference on bf16-rounded inputs. Shapes with row / column / k
// tails, column ranges, and calls from several threads (tile configuration is per thread).
// Skipped when the CPU (or the OS) does not offer AMX, and then listed at the end (isa_coverage.h).
// The generic table tests (kernels_test, kernels_quant_test) also run the amx tables.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <random>
#include <thread>
#include <vector>

#include "isa_coverage.h"
#include "kernels/quant.h"
#include "kernels/ref.h"
#include "kernels/ref_quant.h"
#include "kernels/registry.h"
#include "test_util.h"

namespace encserve::kernels {
namespace {

using ::encserve::testing::IsaCoverage;
using ::encserve::testing::MaxRelErr;
using ::encserve::testing::Random;

class AmxInt8Test : public ::testing::Test {
 protected:
  void SetUp() override {
    amx_ = QuantKernelsNamed("amx");
    vnni_ = QuantKernelsNamed("avx512_vnni");
    if (amx_ == nullptr || vnni_ == nullptr) {
      ENCSERVE_SKIP_ISA("amx", "CPU or OS lacks amx_int8+avx512_vnni");
    }
    IsaCoverage::Exercised("amx");
  }

  // y = table(x · Wᵀ + b) with a guard value after the output.
  static std::vector<float> Run(const QuantKernelTable& t, const std::vector<float>& x,
                                const std::vector<float>& w, const std::vector<float>& b, int m,
                                int n, int k, Epilogue ep) {
    QuantizedRows xq;
    QuantizeRows(t, x.data(), m, k, nullptr, &xq);
    auto pw = PackS8(w.data(), b.data(), n, k, t);
    EXPECT_TRUE(pw.ok());
    std::vector<float> y(size_t(m) * n + 1, 123.0f);
    t.gemm_s8(xq, *pw, y.data(), n, 0, n, ep);
    EXPECT_EQ(y.back(), 123.0f) << "wrote past the output";
    y.pop_back();
    return y;
  }

  const QuantKernelTable* amx_ = nullptr;
  const QuantKernelTable* vnni_ = nullptr;
};

// Activation rows spanning exactly [-128, 127] (step 1, zero point 128) and weight rows with
// max |value| = 127 make every scale exactly 1, so y is the integer dot product itself (exact in
// float below 2^24).
TEST_F(AmxInt8Test, IntegerDotProductsAreExact) {
  std::mt19937 rng(7);
  std::uniform_int_distribution<int> d(-127, 127);
  for (int m : {1, 16, 17, 45}) {
    for (int k : {64, 100, 384, 1536}) {
      const int n = 48;
      std::vector<float> x(size_t(m) * k), w(size_t(n) * k), b(n, 0.0f);
      for (auto& v : x) v = float(d(rng));
      for (auto& v : w) v = float(d(rng));
      for (int i = 0; i < m; ++i) {
        x[size_t(i) * k + i % k] = -128.0f;
        x[size_t(i) * k + (i + 1) % k] = 127.0f;
      }
      for (int j = 0; j < n; ++j) w[size_t(j) * k + j % k] = 127.0f;
      const auto y = Run(*amx_, x, w, b, m, n, k, Epilogue::kBias);
      for (int i = 0; i < m; ++i) {
        for (int j = 0; j < n; ++j) {
          int64_t dot = 0;
          for (int c = 0; c < k; ++c) dot += int64_t(x[size_t(i) * k + c]) * w[size_t(j) * k + c];
          ASSERT_EQ(y[size_t(i) * n + j], float(dot))
              << "m=" << m << " k=" << k << " " << i << "," << j;
        }
      }
    }
  }
}

TEST_F(AmxInt8Test, BitIdenticalToVnniWithTails) {
  for (int m : {1, 9, 15, 16, 17, 31, 32, 33, 48, 64, 100, 288}) {
    for (int k : {1, 37, 64, 65, 127, 384, 448, 1536}) {
      for (int n : {1, 15, 16, 17, 33, 64, 100, 384}) {
        if (m * n * k > 40'000'000) continue;
        const uint32_t seed = m * 7919 + k * 31 + n;
        const auto x = Random(size_t(m) * k, seed), w = Random(size_t(n) * k, seed + 1, 0.1f);
        const auto b = Random(n, seed + 2);
        for (Epilogue ep : {Epilogue::kBias, Epilogue::kBiasGelu}) {
          if (ep == Epilogue::kBiasGelu && n != 100) continue;
          const auto got = Run(*amx_, x, w, b, m, n, k, ep);
          const auto want = Run(*vnni_, x, w, b, m, n, k, ep);
          ASSERT_EQ(got, want) << "m=" << m << " n=" << n << " k=" << k;
        }
      }
    }
  }
}

// The engine's ThreadPool workers call the kernel: each thread configures its own tiles.
TEST_F(AmxInt8Test, ManyThreads) {
  const int m = 40, n = 384, k = 384;
  const auto x = Random(size_t(m) * k, 1), w = Random(size_t(n) * k, 2, 0.1f), b = Random(n, 3);
  const auto want = Run(*vnni_, x, w, b, m, n, k, Epilogue::kBias);
  QuantizedRows xq;
  QuantizeRows(*amx_, x.data(), m, k, nullptr, &xq);
  auto pw = PackS8(w.data(), b.data(), n, k, *amx_);
  ASSERT_TRUE(pw.ok());
  std::vector<float> y(size_t(m) * n, -1.0f);
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {  // 4 column ranges of 96 = 3 panels
      for (int rep = 0; rep < 3; ++rep)
        amx_->gemm_s8(xq, *pw, y.data(), n, t * 96, (t + 1) * 96, Epilogue::kBias);
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(y, want);
}

class AmxBf16Test : public ::testing::Test {
 protected:
  void SetUp() override {
    t_ = KernelsFor(Isa::kAmx);
    if (t_ == nullptr || !DetectCpu().amx_bf16)
      ENCSERVE_SKIP_ISA("amx_bf16", "CPU or OS lacks amx_bf16");
    IsaCoverage::Exercised("amx_bf16");
    ASSERT_EQ(t_->bf16_k_align, 32);
  }
  // y[m, n0:n1] from the amx bf16 GEMM; every other element keeps the guard value 123, and the
  // rows of xb past m are NaN bits (the kernel may read them, never store their results).
  std::vector<float> Run(const std::vector<float>& x, const std::vector<float>& w,
                         const std::vector<float>& b, int m, int n, int k, int n0, int n1,
                         Epilogue ep) const {
    const int ldxb = Bf16Stride(*t_, k);
    std::vector<uint16_t> xb(size_t(m + t_->bf16_mr - 1) * ldxb, 0xffff);
    t_->convert_bf16(x.data(), m, k, xb.data(), ldxb);
    const PackedBf16Pairs pw = PackBf16Pairs(w.data(), b.data(), n, k, t_->gemm_nr, 32);
    std::vector<float> y(size_t(m) * n, 123.0f);
    t_->gemm_bf16_dot(xb.data(), ldxb, m, pw, y.data(), n, n0, n1, ep);
    return y;
  }
  const KernelTable* t_ = nullptr;
};

std::vector<float> Bf16Rounded(std::vector<float> v) {
  for (float& f : v) f = Bf16ToFloat(FloatToBf16(f));
  return v;
}

// Small integers are exact in bf16 and their sums (< 2^24) exact in fp32.
TEST_F(AmxBf16Test, IntegerDotProductsAreExact) {
  std::mt19937 rng(11);
  std::uniform_int_distribution<int> d(-8, 8);
  for (int m : {1, 16, 17, 45}) {
    for (int k : {1, 33, 384, 1536}) {
      const int n = 40;
      std::vector<float> x(size_t(m) * k), w(size_t(n) * k), b(n);
      for (auto& v : x) v = float(d(rng));
      for (auto& v : w) v = float(d(rng));
      for (auto& v : b) v = float(d(rng));
      const auto y = Run(x, w, b, m, n, k, 0, n, Epilogue::kBias);
      for (int i = 0; i < m; ++i) {
        for (int j = 0; j < n; ++j) {
          double dot = b[j];
          for (int c = 0; c < k; ++c) dot += double(x[size_t(i) * k + c]) * w[size_t(j) * k + c];
          ASSERT_EQ(y[size_t(i) * n + j], float(dot))
              << "m=" << m << " k=" << k << " " << i << "," << j;
        }
      }
    }
  }
}

TEST_F(AmxBf16Test, MatchesReferenceWithTailsAndColumnRanges) {
  for (int m : {1, 9, 15, 16, 17, 31, 32, 33, 100}) {
    for (int k : {1, 31, 32, 33, 100, 384, 1536}) {
      for (int n : {1, 16, 17, 33, 100, 384}) {
        const uint32_t seed = m * 7919 + k * 31 + n;
        const auto x = Random(size_t(m) * k, seed), w = Random(size_t(n) * k, seed + 1, 0.1f);
        const auto b = Random(n, seed + 2);
        for (Epilogue ep : {Epilogue::kBias, Epilogue::kBiasGelu}) {
          if (ep == Epilogue::kBiasGelu && n != 100) continue;
          std::vector<float> want(size_t(m) * n);
          ref::Linear(Bf16Rounded(x).data(), Bf16Rounded(w).data(), b.data(), want.data(), m, n, k,
                      ep == Epilogue::kBiasGelu);
          const auto got = Run(x, w, b, m, n, k, 0, n, ep);
          ASSERT_LT(MaxRelErr(got, want), 1e-4f) << "m=" << m << " n=" << n << " k=" << k;
          if (n > 32) {  // columns 32..n only: the others keep the guard
            const auto part = Run(x, w, b, m, n, k, 32, n, ep);
            for (int i = 0; i < m; ++i) {
              for (int j = 0; j < n; ++j) {
                const float v = part[size_t(i) * n + j];
                if (j < 32) {
                  ASSERT_EQ(v, 123.0f) << i << "," << j;
                } else {
                  ASSERT_EQ(v, got[size_t(i) * n + j]) << i << "," << j;
                }
              }
            }
          }
        }
      }
    }
  }
}

TEST_F(AmxBf16Test, ManyThreads) {
  const int m = 40, n = 384, k = 384;
  const auto x = Random(size_t(m) * k, 1), w = Random(size_t(n) * k, 2, 0.1f), b = Random(n, 3);
  const auto want = Run(x, w, b, m, n, k, 0, n, Epilogue::kBias);
  const int ldxb = Bf16Stride(*t_, k);
  std::vector<uint16_t> xb(size_t(m + t_->bf16_mr - 1) * ldxb);
  t_->convert_bf16(x.data(), m, k, xb.data(), ldxb);
  const PackedBf16Pairs pw = PackBf16Pairs(w.data(), b.data(), n, k, t_->gemm_nr, 32);
  std::vector<float> y(size_t(m) * n, -1.0f);
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {  // 4 column ranges of 96 = 3 panels
      for (int rep = 0; rep < 3; ++rep)
        t_->gemm_bf16_dot(xb.data(), ldxb, m, pw, y.data(), n, t * 96, (t + 1) * 96,
                          Epilogue::kBias);
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(y, want);
}

// int4 weights on the AMX-BF16 tiles (gemm_s4_bf16): the same as an fp32 GEMM of bf16-rounded
// x and of Ŵ = bf16(s·q + o) from the reference affine int4 quantiser, with row and column
// tails, every group size and a column range.
TEST_F(AmxBf16Test, Int4DecodedToBf16MatchesReference) {
  const QuantKernelTable* qt = QuantKernelsNamed("amx");
  ASSERT_NE(qt, nullptr);
  ASSERT_NE(qt->gemm_s4_bf16, nullptr) << "AMX-BF16 CPU without the int4 bf16 path";
  struct Shape {
    int n, k, group;
  };
  for (int m : {1, 17, 48, 100}) {
    for (Shape sh : {Shape{100, 384, 64}, Shape{40, 1536, 128}, Shape{33, 64, 32}}) {
      const int n = sh.n, k = sh.k, g = sh.group, ng = k / g;
      const uint32_t seed = m * 131 + n * 7 + k;
      const auto x = Random(size_t(m) * k, seed), w = Random(size_t(n) * k, seed + 1, 0.1f);
      const auto b = Random(n, seed + 2);
      std::vector<int8_t> q(size_t(n) * k);
      std::vector<float> sc(size_t(n) * ng), of(size_t(n) * ng), wd(size_t(n) * k);
      ref::QuantizeWeightsS4(w.data(), n, k, g, q.data(), sc.data(), of.data());
      for (size_t i = 0; i < wd.size(); ++i) {
        const size_t sg = i / k * ng + i % k / g;
        wd[i] = Bf16ToFloat(FloatToBf16(std::fma(sc[sg], float(q[i]), of[sg])));
      }
      for (Epilogue ep : {Epilogue::kBias, Epilogue::kBiasGelu}) {
        std::vector<float> want(size_t(m) * n);
        ref::Linear(Bf16Rounded(x).data(), wd.data(), b.data(), want.data(), m, n, k,
                    ep == Epilogue::kBiasGelu);
        auto packed = PackS4(w.data(), b.data(), n, k, g, *qt);
        ASSERT_TRUE(packed.ok()) << packed.status().ToString();
        std::vector<uint16_t> xb(size_t(m + 31) * k, 0xffff);  // NaN rows past m
        t_->convert_bf16(x.data(), m, k, xb.data(), k);
        for (int n0 : {0, 32}) {
          if (n0 >= n) continue;
          std::vector<float> y(size_t(m) * n, 123.0f);
          qt->gemm_s4_bf16(xb.data(), k, m, *packed, y.data(), n, n0, n, ep);
          for (int i = 0; i < m; ++i) {
            for (int j = 0; j < n0; ++j) ASSERT_EQ(y[size_t(i) * n + j], 123.0f);
          }
          std::vector<float> got, ref_part;
          for (int i = 0; i < m; ++i) {
            for (int j = n0; j < n; ++j) {
              got.push_back(y[size_t(i) * n + j]);
              ref_part.push_back(want[size_t(i) * n + j]);
            }
          }
          ASSERT_LT(MaxRelErr(got, ref_part), 1e-4f) << "m=" << m << " n=" << n << " k=" << k;
        }
      }
    }
  }
}

// Other code in the process (oneDNN releases its tiles after every call) may leave the thread's
// tiles unconfigured between two of our GEMMs: the kernels must reconfigure, not fault.
TEST_F(AmxInt8Test, SurvivesTileReleaseBetweenCalls) {
  const int m = 33, n = 64, k = 384;
  const auto x = Random(size_t(m) * k, 4), w = Random(size_t(n) * k, 5, 0.1f), b = Random(n, 6);
  const auto first = Run(*amx_, x, w, b, m, n, k, Epilogue::kBias);
  __asm__ volatile("tilerelease" ::: "memory");
  EXPECT_EQ(Run(*amx_, x, w, b, m, n, k, Epilogue::kBias), first);
  if (const KernelTable* t = KernelsFor(Isa::kAmx); t != nullptr && DetectCpu().amx_bf16) {
    const int ldxb = Bf16Stride(*t, k);
    std::vector<uint16_t> xb(size_t(m + t->bf16_mr - 1) * ldxb);
    t->convert_bf16(x.data(), m, k, xb.data(), ldxb);
    const PackedBf16Pairs pw = PackBf16Pairs(w.data(), b.data(), n, k, t->gemm_nr, 32);
    std::vector<float> y1(size_t(m) * n), y2(size_t(m) * n);
    t->gemm_bf16_dot(xb.data(), ldxb, m, pw, y1.data(), n, 0, n, Epilogue::kBias);
    __asm__ volatile("tilerelease" ::: "memory");
    t->gemm_bf16_dot(xb.data(), ldxb, m, pw, y2.data(), n, 0, n, Epilogue::kBias);
    EXPECT_EQ(y1, y2);
  }
}

TEST(AmxDispatch, EnvironmentLevelsBelowAmxNeverUseIt) {
  EXPECT_STRNE(QuantKernelsFor(Isa::kAvx512).name, "amx");
  EXPECT_STRNE(QuantKernelsFor(Isa::kAvx2).name, "amx");
  Isa isa;
  ASSERT_TRUE(ParseIsa("avx512_vnni", &isa));
  EXPECT_EQ(isa, Isa::kAvx512);
  ASSERT_TRUE(ParseIsa("amx", &isa));
  EXPECT_EQ(isa, Isa::kAmx);
  EXPECT_STREQ(QuantKernelsFor(Isa::kAmx).name,
               DetectCpu().amx ? "amx" : QuantKernelsFor(Isa::kAvx512).name);
}

TEST(AmxDispatch, Bf16GemmUsesTilesOnlyAtTheAmxLevel) {
  const KernelTable* avx512 = KernelsFor(Isa::kAvx512);
  if (avx512 != nullptr) {
    EXPECT_EQ(avx512->bf16_k_align, 2);  // vdpbf16ps (or none)
  }
  const KernelTable* amx = KernelsFor(Isa::kAmx);
  if (amx != nullptr) {
    EXPECT_EQ(amx->bf16_k_align, DetectCpu().amx_bf16 ? 32 : 2);
  }
}

}  // namespace
}  // namespace encserve::kernels
