// Every quantised kernel table this CPU supports against the naive reference (kernels/ref_quant.h)
// on the same integer data: the integer dot products agree exactly, so the outputs agree to float
// rounding. Tables the CPU lacks are skipped and listed at the end (isa_coverage.h). Also: the
// end-to-end accuracy of int8 / int4 vs fp32.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <map>
#include <random>
#include <string>
#include <thread>
#include <tuple>
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

// ‖a − b‖ / ‖b‖
double RelFrobenius(const std::vector<float>& a, const std::vector<float>& b) {
  double num = 0, den = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    num += (double(a[i]) - b[i]) * (double(a[i]) - b[i]);
    den += double(b[i]) * b[i];
  }
  return std::sqrt(num / den);
}

struct Problem {
  int m, n, k, group;
  std::vector<float> x, w, bias;
};

Problem MakeProblem(int m, int n, int k, int group, uint32_t seed) {
  Problem p{m,
            n,
            k,
            group,
            Random(size_t(m) * k, seed),
            Random(size_t(n) * k, seed + 1, 0.1f),
            Random(n, seed + 2)};
  return p;
}

// Reference output on the reference's own quantisation of x and w (memoised: every table is
// checked against the same problems).
std::vector<float> ComputeReference(const Problem& p, bool int4, bool gelu) {
  std::vector<int8_t> xq(size_t(p.m) * p.k), wq(size_t(p.n) * p.k);
  std::vector<float> xs(p.m), xc(p.m), ws(size_t(p.n) * (int4 ? p.k / p.group : 1));
  std::vector<float> wo(ws.size()), y(size_t(p.m) * p.n);
  ref::QuantizeRows(p.x.data(), p.m, p.k, xq.data(), xs.data(), xc.data());
  if (int4) {
    ref::QuantizeWeightsS4(p.w.data(), p.n, p.k, p.group, wq.data(), ws.data(), wo.data());
    ref::GemmS4(xq.data(), xs.data(), xc.data(), p.m, wq.data(), ws.data(), wo.data(), p.group,
                p.bias.data(), y.data(), p.n, p.k, gelu);
  } else {
    ref::QuantizeWeightsS8(p.w.data(), p.n, p.k, wq.data(), ws.data());
    ref::GemmS8(xq.data(), xs.data(), xc.data(), p.m, wq.data(), ws.data(), p.bias.data(), y.data(),
                p.n, p.k, gelu);
  }
  return y;
}

const std::vector<float>& Reference(const Problem& p, bool int4, bool gelu, uint32_t seed) {
  static std::map<std::tuple<int, int, int, int, bool, bool, uint32_t>, std::vector<float>> cache;
  auto key = std::make_tuple(p.m, p.n, p.k, int4 ? p.group : 0, int4, gelu, seed);
  auto it = cache.find(key);
  if (it == cache.end()) it = cache.emplace(key, ComputeReference(p, int4, gelu)).first;
  return it->second;
}

// The registry entries with a quantised table (kernels/registry.h), whatever the CPU.
std::vector<std::string> QuantSetNames() {
  std::vector<std::string> names;
  for (const KernelSet& s : KernelRegistry()) {
    if (s.quant != nullptr) names.push_back(s.name);
  }
  return names;
}

class QuantIsaTest : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    table_ = QuantKernelsNamed(GetParam().c_str());
    if (table_ == nullptr) ENCSERVE_SKIP_ISA(GetParam(), IsaCoverage::LacksReason(GetParam()));
    IsaCoverage::Exercised(GetParam());
  }

  // The table's output for the whole problem, with a guard value after the last element.
  std::vector<float> Run(const Problem& p, bool int4, bool gelu) {
    QuantizedRows xq;
    QuantizeRows(*table_, p.x.data(), p.m, p.k, nullptr, &xq);
    std::vector<float> y(size_t(p.m) * p.n + 1, 123.0f);
    const Epilogue ep = gelu ? Epilogue::kBiasGelu : Epilogue::kBias;
    if (int4) {
      auto w = PackS4(p.w.data(), p.bias.data(), p.n, p.k, p.group, *table_);
      EXPECT_TRUE(w.ok()) << w.status().ToString();
      table_->gemm_s4(xq, *w, y.data(), p.n, 0, p.n, ep);
    } else {
      auto w = PackS8(p.w.data(), p.bias.data(), p.n, p.k, *table_);
      EXPECT_TRUE(w.ok()) << w.status().ToString();
      table_->gemm_s8(xq, *w, y.data(), p.n, 0, p.n, ep);
    }
    EXPECT_EQ(y.back(), 123.0f) << "wrote past the output";
    y.pop_back();
    return y;
  }

  // seed: the problem's seed when it is random data only (memoisation key), 0 to not memoise.
  void ExpectMatches(const Problem& p, bool int4, bool gelu, uint32_t seed = 0) {
    const auto want = seed != 0 ? Reference(p, int4, gelu, seed) : ComputeReference(p, int4, gelu);
    const auto got = Run(p, int4, gelu);
    ASSERT_LT(MaxRelErr(got, want), 1e-5f)
        << (int4 ? "int4 g" + std::to_string(p.group) : "int8") << " m=" << p.m << " n=" << p.n
        << " k=" << p.k << " gelu=" << gelu;
  }

  const QuantKernelTable* table_ = nullptr;
};

TEST_P(QuantIsaTest, QuantizeRowsMatchesReference) {
  for (int k : {1, 3, 7, 32, 37, 64, 384, 1539}) {
    const int m = 7;
    auto x = Random(size_t(m) * k, k, 3.0f);
    std::fill(x.begin() + k, x.begin() + 2 * k, 0.0f);           // an all-zero row
    for (int j = 0; j < k; ++j) x[size_t(3) * k + j] *= 1e-39f;  // a denormal one
    for (int j = 0; j < k; ++j) {
      x[size_t(4) * k + j] = std::fabs(x[size_t(4) * k + j]) + 0.5f;  // all positive (GELU-like)
      x[size_t(5) * k + j] = -std::fabs(x[size_t(5) * k + j]);        // all negative
    }
    std::vector<int8_t> want(size_t(m) * k);
    std::vector<float> want_s(m), want_c(m);
    ref::QuantizeRows(x.data(), m, k, want.data(), want_s.data(), want_c.data());
    QuantizedRows q;
    QuantizeRows(*table_, x.data(), m, k, nullptr, &q);
    ASSERT_EQ(q.m, m);
    ASSERT_EQ(q.k, k);
    ASSERT_EQ(q.kp % 4, 0);
    for (int i = 0; i < m; ++i) {
      EXPECT_EQ(q.scales[i], want_s[i]) << "k=" << k << " row " << i;
      EXPECT_EQ(q.shifts[i], want_c[i]) << "k=" << k << " row " << i;
      for (int j = 0; j < q.kp; ++j) {
        const int expect = j < k ? want[size_t(i) * k + j] + 128 : 128;
        ASSERT_EQ(q.row(i)[j], expect) << "k=" << k << " row " << i << " col " << j;
      }
      // What the kernels compute from it: x ≈ a·(xu − 128) + c, within half a step.
      for (int j = 0; j < k; ++j) {
        const float deq = q.scales[i] * float(q.row(i)[j] - 128) + q.shifts[i];
        ASSERT_LE(std::fabs(deq - x[size_t(i) * k + j]), 0.5f * q.scales[i] * 1.0001f + 1e-30f)
            << "k=" << k << " row " << i << " col " << j;
      }
    }
    EXPECT_EQ(want_s[1], 1.0f);
    EXPECT_EQ(want_c[1], 0.0f);
  }
}

// Smoothing fused into QuantizeRows: the same bytes and scales as the reference on x · s, and
// as quantising the pre-multiplied rows.
TEST_P(QuantIsaTest, QuantizeRowsWithColumnScaleMatchesPremultiplied) {
  for (int k : {1, 7, 15, 16, 17, 37, 384, 1539}) {
    const int m = 4;
    const auto x = Random(size_t(m) * k, k + 5, 3.0f);
    auto s = Random(k, k + 6, 4.0f);
    for (float& v : s) v = std::fabs(v) + 0.01f;
    std::vector<float> xs(x);
    for (int i = 0; i < m; ++i) {
      for (int c = 0; c < k; ++c) xs[size_t(i) * k + c] *= s[c];
    }
    std::vector<int8_t> want(size_t(m) * k);
    std::vector<float> want_s(m), want_c(m);
    ref::QuantizeRows(x.data(), m, k, want.data(), want_s.data(), want_c.data(), s.data());
    QuantizedRows fused, pre;
    QuantizeRows(*table_, x.data(), m, k, s.data(), &fused);
    QuantizeRows(*table_, xs.data(), m, k, nullptr, &pre);
    for (int i = 0; i < m; ++i) {
      ASSERT_EQ(fused.scales[i], want_s[i]) << "k=" << k << " row " << i;
      ASSERT_EQ(fused.scales[i], pre.scales[i]) << "k=" << k << " row " << i;
      ASSERT_EQ(fused.shifts[i], want_c[i]) << "k=" << k << " row " << i;
      for (int j = 0; j < fused.kp; ++j) {
        const int expect = j < k ? want[size_t(i) * k + j] + 128 : 128;
        ASSERT_EQ(fused.row(i)[j], expect) << "k=" << k << " row " << i << " col " << j;
        ASSERT_EQ(fused.row(i)[j], pre.row(i)[j]) << "k=" << k << " row " << i << " col " << j;
      }
    }
  }
}

// Disjoint row ranges quantised on two threads at once (as ops::Linear does) give the bytes,
// scales and shifts of one QuantizeRows call, padding rows included; smoothing uses per-thread
// scratch, so this also checks the two threads do not share it.
TEST_P(QuantIsaTest, RowRangesOnTwoThreadsEqualOneCall) {
  for (int k : {17, 384, 1536}) {
    const int m = 45;
    const auto x = Random(size_t(m) * k, k + 11, 3.0f);
    auto s = Random(k, k + 12, 4.0f);
    for (float& v : s) v = std::fabs(v) + 0.01f;
    QuantizedRows whole, parts;
    QuantizeRows(*table_, x.data(), m, k, s.data(), &whole);
    PrepareQuantizedRows(*table_, m, k, &parts);
    std::thread other([&] { table_->quantize_row_range(x.data(), k, s.data(), 19, m, &parts); });
    table_->quantize_row_range(x.data(), k, s.data(), 0, 19, &parts);
    other.join();
    const int m_pad = (m + table_->row_align - 1) / table_->row_align * table_->row_align;
    ASSERT_EQ(parts.kp, whole.kp);
    for (int i = 0; i < m_pad; ++i) {
      if (i < m) {
        ASSERT_EQ(parts.scales[i], whole.scales[i]) << "k=" << k << " row " << i;
        ASSERT_EQ(parts.shifts[i], whole.shifts[i]) << "k=" << k << " row " << i;
      }
      for (int j = 0; j < whole.kp; ++j) {
        ASSERT_EQ(parts.row(i)[j], whole.row(i)[j]) << "k=" << k << " row " << i << " col " << j;
        if (i >= m) {
          ASSERT_EQ(parts.row(i)[j], 128) << "padding row " << i;
        }
      }
    }
  }
}

TEST_P(QuantIsaTest, GemmS8MatchesReference) {
  for (int m : {1, 3, 12, 13, 33, 130}) {
    for (int k : {32, 64, 384, 1536}) {
      for (int n : {1, 16, 32, 100, 384, 1152}) {
        const uint32_t seed = m * 131 + n * 7 + k;
        ExpectMatches(MakeProblem(m, n, k, 0, seed), false, false, seed);
      }
    }
  }
}

TEST_P(QuantIsaTest, GemmS8OddKAndGelu) {
  for (int k : {1, 5, 37, 384}) {
    for (int n : {1, 33, 100}) {
      for (int m : {1, 13}) {
        const uint32_t seed = 100000 + k * 1000 + n * 10 + m;
        ExpectMatches(MakeProblem(m, n, k, 0, seed), false, true, seed);
      }
    }
  }
}

TEST_P(QuantIsaTest, GemmS4MatchesReference) {
  int shape = 0;
  for (int m : {1, 3, 12, 13, 33, 130}) {
    for (int k : {32, 64, 384, 1536}) {
      for (int n : {1, 16, 32, 100, 384, 1152}) {
        ++shape;
        for (int g : {32, 64, 128}) {
          // every group size that divides k for the short k, one per shape (rotating) otherwise
          if (k % g != 0 || (k > 64 && g != 32 << (shape % 3))) continue;
          const uint32_t seed = m * 17 + n * 3 + k + g;
          ExpectMatches(MakeProblem(m, n, k, g, seed), true, false, seed);
        }
      }
    }
  }
}

TEST_P(QuantIsaTest, GemmS4Gelu) {
  for (int g : {32, 64, 128}) {
    for (int n : {1, 33, 100}) {
      for (int m : {1, 13}) {
        const uint32_t seed = 200000 + g * 1000 + n * 10 + m;
        ExpectMatches(MakeProblem(m, n, 384, g, seed), true, true, seed);
      }
    }
  }
}

TEST_P(QuantIsaTest, ZeroRowsGiveTheBias) {
  for (bool int4 : {false, true}) {
    Problem p = MakeProblem(7, 40, 128, 64, 5);
    std::fill(p.x.begin(), p.x.begin() + 3 * p.k, 0.0f);                 // rows 0..2 of x
    std::fill(p.w.begin() + 5 * p.k, p.w.begin() + 7 * p.k, 0.0f);       // weight rows 5, 6
    std::fill(p.w.begin() + 9 * p.k, p.w.begin() + 9 * p.k + 64, 0.0f);  // one int4 group
    const auto got = Run(p, int4, false);
    for (int i = 0; i < p.m; ++i) {
      for (int j = 0; j < p.n; ++j) {
        if (i < 3 || j == 5 || j == 6) {
          EXPECT_EQ(got[i * p.n + j], p.bias[j]) << i << "," << j;
        }
      }
    }
    ExpectMatches(p, int4, false);
    ExpectMatches(p, int4, true);
  }
}

TEST_P(QuantIsaTest, ColumnRangesWriteOnlyTheirColumns) {
  const int nr = table_->nr;
  for (bool int4 : {false, true}) {
    for (int n : {nr + 3, 5 * nr, 7 * nr - 5}) {
      Problem p = MakeProblem(13, n, 192, 64, n);
      const int ldy = n + 3;  // gaps between rows must stay untouched
      QuantizedRows xq;
      QuantizeRows(*table_, p.x.data(), p.m, p.k, nullptr, &xq);
      auto w8 = PackS8(p.w.data(), p.bias.data(), n, p.k, *table_);
      auto w4 = PackS4(p.w.data(), p.bias.data(), n, p.k, 64, *table_);
      ASSERT_TRUE(w8.ok() && w4.ok());
      auto gemm = [&](float* y, int n0, int n1) {
        if (int4) {
          table_->gemm_s4(xq, *w4, y, ldy, n0, n1, Epilogue::kBiasGelu);
        } else {
          table_->gemm_s8(xq, *w8, y, ldy, n0, n1, Epilogue::kBiasGelu);
        }
      };
      std::vector<float> full(size_t(p.m) * ldy, -7.0f);
      gemm(full.data(), 0, n);
      const int cuts[] = {0, nr, n / nr / 2 * nr + nr, n};
      std::vector<float> split(size_t(p.m) * ldy, -7.0f);
      for (int c = 0; c + 1 < 4; ++c) {
        if (cuts[c] >= cuts[c + 1]) continue;
        std::vector<float> part(size_t(p.m) * ldy, -7.0f);
        gemm(part.data(), cuts[c], cuts[c + 1]);
        for (int i = 0; i < p.m; ++i) {
          for (int j = 0; j < ldy; ++j) {
            const float v = part[i * ldy + j];
            if (j >= cuts[c] && j < cuts[c + 1]) {
              split[i * ldy + j] = v;
            } else {
              ASSERT_EQ(v, -7.0f) << "range [" << cuts[c] << ", " << cuts[c + 1] << ") wrote col "
                                  << j;
            }
          }
        }
      }
      EXPECT_EQ(split, full) << "int4=" << int4 << " n=" << n;
    }
  }
}

TEST_P(QuantIsaTest, PackRejectsBadShapes) {
  std::vector<float> w(64 * 96, 0.5f);
  EXPECT_FALSE(PackS8(w.data(), nullptr, 0, 96, *table_).ok());
  EXPECT_FALSE(PackS8(w.data(), nullptr, 4, 0, *table_).ok());
  EXPECT_FALSE(PackS8(w.data(), nullptr, 1, 65540, *table_).ok());  // int32 accumulators
  EXPECT_FALSE(PackS4(w.data(), nullptr, 4, 96, 48, *table_).ok());
  EXPECT_FALSE(PackS4(w.data(), nullptr, 4, 96, 64, *table_).ok());  // 96 % 64 != 0
  EXPECT_FALSE(PackS4(w.data(), nullptr, 4, 96, 16, *table_).ok());
  EXPECT_TRUE(PackS4(w.data(), nullptr, 4, 96, 32, *table_).ok());
  EXPECT_TRUE(PackS8(w.data(), nullptr, 3, 7, *table_).ok());
}

// Quantised GEMM vs the fp32 GEMM (double reference), ‖y_q − y‖ / ‖y‖, on data shaped like a
// BERT layer: x ~ N(0, 1) (optionally with three outlier channels ×6, as LayerNorm outputs have),
// W ~ N(0, 0.04²), bias ~ N(0, 0.02²). Bounds: the measured errors (printed) plus ~20%.
TEST_P(QuantIsaTest, AccuracyVsFp32) {
  const int m = 64, k = 384, n = 1536;
  struct Case {
    bool outliers;
    double int8_bound, int4_g64_bound;
  };
  for (const Case c : {Case{false, 0.012, 0.105}, Case{true, 0.024, 0.105}}) {
    auto x = Random(size_t(m) * k, 11), w = Random(size_t(n) * k, 12, 0.04f);
    auto b = Random(n, 13, 0.02f);
    if (c.outliers) {
      for (int i = 0; i < m; ++i) {
        for (int ch : {7, 100, 300}) x[size_t(i) * k + ch] *= 6.0f;
      }
    }
    std::vector<float> want(size_t(m) * n);
    ref::Linear(x.data(), w.data(), b.data(), want.data(), m, n, k, false);
    Problem p{m, n, k, 0, x, w, b};
    const double e8 = RelFrobenius(Run(p, false, false), want);
    std::printf("  [%s%s] int8 %.4f", table_->name, c.outliers ? ", outliers" : "", e8);
    EXPECT_LT(e8, c.int8_bound);
    for (int g : {32, 64, 128}) {
      p.group = g;
      const double e4 = RelFrobenius(Run(p, true, false), want);
      std::printf("  int4 g%d %.4f", g, e4);
      if (g == 64) {
        EXPECT_LT(e4, c.int4_g64_bound);
      }
    }
    std::printf("\n");
  }
}

INSTANTIATE_TEST_SUITE_P(AllTables, QuantIsaTest, ::testing::ValuesIn(QuantSetNames()),
                         [](const auto& info) { return info.param; });

}  // namespace
}  // namespace encserve::kernels
