// The load-time int4 recipe (model/quantize_int4.h, MakeLinear): the inverse Cholesky factor,
// the clip search, GPTQ against round to nearest on correlated inputs, packing on the chosen
// grids, and rotated linear layers against fp32 on every ISA.
#include "model/quantize_int4.h"

#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <vector>

#include "kernels/ref.h"
#include "model/linear.h"
#include "test_util.h"

namespace encserve {
namespace {

using ::encserve::testing::Random;

// Rows with correlated channels (as real activations): x = z · M with M [k, k] dense, the same
// M (one distribution) for every seed of z.
std::vector<float> CorrelatedRows(int m, int k, uint32_t seed) {
  auto z = Random(static_cast<size_t>(m) * k, seed);
  auto mix = Random(static_cast<size_t>(k) * k, 1, 1.0f / std::sqrt(float(k)));
  for (int c = 0; c < k; ++c) mix[static_cast<size_t>(c) * k + c] += 1.0f;
  std::vector<float> x(static_cast<size_t>(m) * k, 0.0f);
  for (int i = 0; i < m; ++i)
    for (int t = 0; t < k; ++t)
      for (int c = 0; c < k; ++c) x[i * k + c] += z[i * k + t] * mix[t * k + c];
  for (int i = 0; i < m; ++i) x[i * k + 5] *= 8.0f;  // an outlier channel
  return x;
}

std::vector<double> Gram(const std::vector<float>& x, int m, int k) {
  std::vector<double> h(static_cast<size_t>(k) * k, 0.0);
  for (int i = 0; i < m; ++i)
    for (int a = 0; a < k; ++a)
      for (int b = 0; b < k; ++b) h[a * k + b] += double(x[i * k + a]) * x[i * k + b];
  return h;
}

// Σ over rows and outputs of (x · (W − Ŵ)ᵀ)²: the layer-wise loss GPTQ minimises.
double OutputError(const std::vector<float>& x, int m, const std::vector<float>& w,
                   const std::vector<float>& w_hat, int n, int k) {
  double err = 0;
  for (int i = 0; i < m; ++i) {
    for (int j = 0; j < n; ++j) {
      double d = 0;
      for (int c = 0; c < k; ++c) d += double(x[i * k + c]) * (w[j * k + c] - w_hat[j * k + c]);
      err += d * d;
    }
  }
  return err;
}

// Ŵ of round to nearest on the given grids (what PackS4 stores).
std::vector<float> RoundOnGrids(const Int4Quantized& q, int n, int k, int group) {
  std::vector<float> out(q.w.size());
  for (int j = 0; j < n; ++j) {
    for (int c = 0; c < k; ++c) {
      const float* g = &q.grid[(static_cast<size_t>(j) * (k / group) + c / group) * 2];
      const float s = (g[1] - g[0]) / 15.0f;
      const float v = q.w[j * k + c];
      out[j * k + c] =
          s > 0 ? g[0] + s * std::clamp(std::nearbyint((v - g[0]) * (15.0f / (g[1] - g[0]))), 0.0f,
                                        15.0f)
                : g[0];
    }
  }
  return out;
}

TEST(InverseCholeskyUpper, FactorsTheInverse) {
  const int k = 150;  // more than two blocks of 64
  auto x = CorrelatedRows(200, k, 3);
  auto h = Gram(x, 200, k);
  auto u = InverseCholeskyUpper(h, k);
  ASSERT_TRUE(u.ok()) << u.status().ToString();
  // upper triangular, positive diagonal, and (UᵀU) · H = I
  for (int a = 0; a < k; ++a) {
    EXPECT_GT((*u)[a * k + a], 0.0);
    for (int b = 0; b < a; ++b) ASSERT_EQ((*u)[a * k + b], 0.0) << a << "," << b;
  }
  for (int a = 0; a < k; ++a) {
    for (int b = 0; b < k; ++b) {
      double v = 0;
      for (int t = 0; t < k; ++t) {
        double uu = 0;  // (UᵀU)[a, t]
        for (int r = 0; r <= std::min(a, t); ++r) uu += (*u)[r * k + a] * (*u)[r * k + t];
        v += uu * h[t * k + b];
      }
      ASSERT_NEAR(v, a == b ? 1.0 : 0.0, 1e-8) << a << "," << b;
    }
  }
  ThreadPool pool(2);  // the blocked updates split over threads: the same factor
  auto u2 = InverseCholeskyUpper(h, k, &pool);
  ASSERT_TRUE(u2.ok());
  for (size_t i = 0; i < u2->size(); ++i) ASSERT_NEAR((*u2)[i], (*u)[i], 1e-12) << i;
  std::vector<double> singular(static_cast<size_t>(k) * k, 0.0);  // rank 0
  EXPECT_FALSE(InverseCholeskyUpper(singular, k).ok());
}

TEST(ChooseAffineGrid, ClipSearchNeverIncreasesTheError) {
  std::mt19937 rng(5);
  std::student_t_distribution<double> heavy(3.0);  // heavy tails: clipping pays
  int improved = 0;
  for (int trial = 0; trial < 50; ++trial) {
    std::vector<double> p(64);
    for (double& v : p) v = heavy(rng) * 0.05;
    float lo1, hi1, lo2, hi2;
    ChooseAffineGrid(p.data(), 64, false, &lo1, &hi1);
    ChooseAffineGrid(p.data(), 64, true, &lo2, &hi2);
    EXPECT_EQ(lo1, float(*std::min_element(p.begin(), p.end())));
    EXPECT_EQ(hi1, float(*std::max_element(p.begin(), p.end())));
    auto err = [&](float lo, float hi) {
      double e = 0;
      const float s = (hi - lo) / 15.0f;
      for (double v : p) {
        const float q =
            std::clamp(std::nearbyint((float(v) - lo) * (15.0f / (hi - lo))), 0.0f, 15.0f);
        e += (v - (lo + s * q)) * (v - (lo + s * q));
      }
      return e;
    };
    EXPECT_LE(err(lo2, hi2), err(lo1, hi1) * (1 + 1e-12));
    improved += err(lo2, hi2) < 0.99 * err(lo1, hi1);
  }
  EXPECT_GT(improved, 10);  // the search does something on heavy tails
}

TEST(QuantizeInt4, GptqBeatsRoundToNearestOnTheLayerOutput) {
  const int m = 512, n = 48, k = 128, group = 64;
  auto x = CorrelatedRows(m, k, 7);
  auto w = Random(static_cast<size_t>(n) * k, 9, 0.05f);
  auto h = Gram(x, m, k);
  ThreadPool pool(2);
  auto rtn = QuantizeInt4(w.data(), n, k, group, true, nullptr, pool);
  auto gptq = QuantizeInt4(w.data(), n, k, group, true, &h, pool);
  ASSERT_TRUE(rtn.ok() && gptq.ok());
  const double e_rtn = OutputError(x, m, w, RoundOnGrids(*rtn, n, k, group), n, k);
  // GPTQ's weights already lie on their grids: packing them rounds to themselves.
  const auto packed = RoundOnGrids(*gptq, n, k, group);
  for (size_t i = 0; i < packed.size(); ++i) ASSERT_NEAR(packed[i], gptq->w[i], 1e-6f) << i;
  const double e_gptq = OutputError(x, m, w, gptq->w, n, k);
  std::printf("layer output error: rtn %.4g, gptq %.4g\n", e_rtn, e_gptq);
  EXPECT_LT(e_gptq, 0.8 * e_rtn);
}

class RotatedLinearTest : public ::testing::TestWithParam<kernels::Isa> {};

// An int4 layer made with each recipe, on the fp32 reference: the rotated recipes are exact in
// real arithmetic, so their error is quantisation error only (and, on correlated inputs with an
// outlier channel, smaller than round to nearest's). Covers the VNNI path (few rows) and the
// AMX-BF16 path (≥ 48 rows) where the CPU has it.
TEST_P(RotatedLinearTest, MatchesFp32WithinQuantisationError) {
  const kernels::KernelTable* kt = kernels::KernelsFor(GetParam());
  if (kt == nullptr) GTEST_SKIP() << "CPU lacks " << kernels::IsaName(GetParam());
  const int n = 96, k = 384;
  auto w = Random(static_cast<size_t>(n) * k, 11, 0.05f), bias = Random(n, 12);
  const int mc = 2048;  // calibration rows: well above k, or GPTQ fits a subspace
  auto calib = CorrelatedRows(mc, k, 13);
  std::vector<float> absmax(k, 0.0f);
  for (int i = 0; i < mc; ++i)
    for (int c = 0; c < k; ++c) absmax[c] = std::max(absmax[c], std::fabs(calib[i * k + c]));
  auto h = Gram(calib, mc, k);
  for (int m : {7, 64}) {
    auto x = CorrelatedRows(m, k, 17 + m);
    std::vector<float> want(static_cast<size_t>(m) * n);
    kernels::ref::Linear(x.data(), w.data(), bias.data(), want.data(), m, n, k, false);
    double rms = 0;
    for (float v : want) rms += double(v) * v;
    rms = std::sqrt(rms / want.size());
    double errs[3];
    for (Int4Recipe r : {Int4Recipe::kRtn, Int4Recipe::kRotate, Int4Recipe::kGptq}) {
      PrecisionOptions o{kernels::Precision::kInt4, 64, r, {}, std::nullopt};
      auto lw = MakeLinear(w.data(), bias.data(), n, k, o, *kt, absmax.data(), &h);
      ASSERT_TRUE(lw.ok()) << lw.status().ToString();
      EXPECT_EQ(lw->rotated, r != Int4Recipe::kRtn);
      std::vector<float> got(static_cast<size_t>(m) * n);
      ThreadPool pool(2);
      ops::Linear(*kt, pool, x.data(), m, *lw, got.data());
      double e = 0;
      for (size_t i = 0; i < got.size(); ++i) e += (double(got[i]) - want[i]) * (got[i] - want[i]);
      errs[static_cast<int>(r)] = std::sqrt(e / got.size()) / rms;
    }
    std::printf("%s m=%d relative rms error: rtn %.4f rotate %.4f gptq %.4f\n", kt->name, m,
                errs[0], errs[1], errs[2]);
    EXPECT_LT(errs[1], 0.15);
    EXPECT_LT(errs[2], errs[1]);  // GPTQ on the inputs' own statistics
  }
}

INSTANTIATE_TEST_SUITE_P(AllIsas, RotatedLinearTest,
                         ::testing::Values(kernels::Isa::kScalar, kernels::Isa::kAvx2,
                                           kernels::Isa::kAvx512, kernels::Isa::kAmx),
                         [](const auto& info) { return kernels::IsaName(info.param); });

}  // namespace
}  // namespace encserve
