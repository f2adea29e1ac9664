// AMX kernels (kernels/amx/): exact integer accumulation, bit-identical outputs to the AVX-512
// VNNI table (same integers, same epilogue) over shapes with row / column / k tails, and calls
// from several threads (tile configuration is per thread). Skipped when the CPU (or the OS) does
// not offer AMX. The generic table tests (kernels_quant_test) also run the amx table.
#include <gtest/gtest.h>

#include <cstdint>
#include <random>
#include <thread>
#include <vector>

#include "kernels/quant.h"
#include "test_util.h"

namespace encserve::kernels {
namespace {

using ::encserve::testing::Random;

class AmxInt8Test : public ::testing::Test {
 protected:
  void SetUp() override {
    amx_ = QuantKernelsExact(QuantIsa::kAmx);
    vnni_ = QuantKernelsExact(QuantIsa::kAvx512Vnni);
    if (amx_ == nullptr || vnni_ == nullptr) GTEST_SKIP() << "CPU or OS lacks AMX-INT8";
  }

  // y = table(x · Wᵀ + b) with a guard value after the output.
  static std::vector<float> Run(const QuantKernelTable& t, const std::vector<float>& x,
                                const std::vector<float>& w, const std::vector<float>& b, int m,
                                int n, int k, Epilogue ep) {
    QuantizedRows xq;
    t.quantize_rows(x.data(), m, k, &xq);
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

// Integer data with max |value| = 127 in every row makes every scale exactly 1, so y is the
// integer dot product itself (exact in float below 2^24).
TEST_F(AmxInt8Test, IntegerDotProductsAreExact) {
  std::mt19937 rng(7);
  std::uniform_int_distribution<int> d(-127, 127);
  for (int m : {1, 16, 17, 45}) {
    for (int k : {64, 100, 384, 1536}) {
      const int n = 48;
      std::vector<float> x(size_t(m) * k), w(size_t(n) * k), b(n, 0.0f);
      for (auto& v : x) v = float(d(rng));
      for (auto& v : w) v = float(d(rng));
      for (int i = 0; i < m; ++i) x[size_t(i) * k + i % k] = (i % 2) ? 127.0f : -127.0f;
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
  amx_->quantize_rows(x.data(), m, k, &xq);
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

}  // namespace
}  // namespace encserve::kernels
