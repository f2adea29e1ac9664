#include "model/quantize_int4.h"

#include <algorithm>
#include <cmath>
#include <functional>

#include "kernels/quant.h"

namespace encserve {
namespace {

// The inner loop of the Cholesky, inverse and GPTQ updates; load-time code, cloned per ISA
// by the compiler (this library is built for baseline x86-64) and resolved once at start-up.
// Not under ThreadSanitizer: its instrumented ifunc resolver runs before the TSan runtime is up
// and crashes the process at start-up.
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__) && !defined(__SANITIZE_THREAD__)
#define ENCSERVE_CLONES __attribute__((target_clones("avx512f", "avx2", "default")))
#else
#define ENCSERVE_CLONES
#endif

// y[0, n) −= alpha · x[0, n)
ENCSERVE_CLONES void SubScaled(double* y, double alpha, const double* x, int n) {
  for (int i = 0; i < n; ++i) y[i] -= alpha * x[i];
}

}  // namespace

void ChooseAffineGrid(const double* p, int g, bool mse_clip, float* lo, float* hi) {
  double mn = p[0], mx = p[0];
  for (int i = 1; i < g; ++i) {
    mn = std::min(mn, p[i]);
    mx = std::max(mx, p[i]);
  }
  *lo = static_cast<float>(mn);
  *hi = static_cast<float>(mx);
  if (!mse_clip) return;
  double best = INFINITY;
  for (int step = 70; step <= 100; ++step) {
    const double r = step / 100.0;
    const float l = static_cast<float>(mn * r), h = static_cast<float>(mx * r);
    const kernels::AffineS4 grid = kernels::AffineS4::FromRange(l, h);
    double err = 0;
    for (int i = 0; i < g; ++i) {
      const double d = p[i] - grid.RoundToGrid(static_cast<float>(p[i]));
      err += d * d;
    }
    if (err < best) {
      best = err;
      *lo = l;
      *hi = h;
    }
  }
}

StatusOr<std::vector<double>> InverseCholeskyUpper(const std::vector<double>& h, int k,
                                                   ThreadPool* pool) {
  // With J the order reversal: Ã = J H J = R̃ᵀ R̃ (R̃ upper), so H = R Rᵀ for R = J R̃ᵀ J (upper)
  // and H⁻¹ = (R⁻¹)ᵀ R⁻¹: U = R⁻¹ = J (R̃⁻¹)ᵀ J. Both factorisations run as row updates
  // (contiguous axpys) in blocks of kBlock rows, so that a row of the 19 MB (k = 1536) matrix is
  // streamed once per block rather than once per row (the unblocked loops were memory-bound).
  constexpr int kBlock = 64;
  const int threads = pool != nullptr ? pool->num_threads() : 1;
  auto parallel = [&](int tasks, const std::function<void(int)>& fn) {
    if (pool != nullptr && tasks > 1) {
      pool->ParallelFor(std::min(tasks, threads), [&](int t) {
        const int parts = std::min(tasks, threads);
        for (int i = tasks * t / parts; i < tasks * (t + 1) / parts; ++i) fn(i);
      });
    } else {
      for (int i = 0; i < tasks; ++i) fn(i);
    }
  };
  std::vector<double> a(static_cast<size_t>(k) * k);
  auto row = [k](std::vector<double>& m, int i) { return m.data() + static_cast<size_t>(i) * k; };
  for (int i = 0; i < k; ++i) {
    for (int j = 0; j < k; ++j) row(a, i)[j] = h[static_cast<size_t>(k - 1 - i) * k + (k - 1 - j)];
  }
  // Right-looking upper Cholesky in place (row j of a becomes row j of R̃): the block's rows
  // update each other, then every later row takes the block's rank-kBlock update at once.
  for (int jb = 0; jb < k; jb += kBlock) {
    const int je = std::min(k, jb + kBlock);
    for (int j = jb; j < je; ++j) {
      double* rj = row(a, j);
      if (!(rj[j] > 0)) {
        return FailedPrecondition("GPTQ: the calibration Hessian is not positive definite");
      }
      rj[j] = std::sqrt(rj[j]);
      const double inv = 1.0 / rj[j];
      for (int t = j + 1; t < k; ++t) rj[t] *= inv;
      for (int t = j + 1; t < je; ++t) SubScaled(row(a, t) + t, rj[t], rj + t, k - t);
    }
    parallel(k - je, [&](int i) {
      const int t = je + i;
      double* at = row(a, t);
      for (int p = jb; p < je; ++p) SubScaled(at + t, row(a, p)[t], row(a, p) + t, k - t);
    });
  }
  // V = R̃⁻¹ (upper), bottom block first: V[i, ·] = (e_i − Σ_{t>i} R̃[i, t] · V[t, ·]) / R̃[i, i];
  // the rows below the block are applied to all of its rows first, then the block is solved.
  std::vector<double> v(static_cast<size_t>(k) * k, 0.0);
  for (int ie = k; ie > 0; ie -= kBlock) {
    const int ib = std::max(0, ie - kBlock);
    parallel(ie - ib, [&](int r) {
      const int i = ib + r;
      double* vi = row(v, i);
      for (int t = ie; t < k; ++t) SubScaled(vi + t, row(a, i)[t], row(v, t) + t, k - t);
    });
    for (int i = ie - 1; i >= ib; --i) {
      double* vi = row(v, i);
      for (int t = i + 1; t < ie; ++t) SubScaled(vi + t, row(a, i)[t], row(v, t) + t, k - t);
      vi[i] = 1.0;
      const double inv = 1.0 / row(a, i)[i];
      for (int t = i; t < k; ++t) vi[t] *= inv;
    }
  }
  // U[p, q] = Vᵀ[k−1−p, k−1−q] = V[k−1−q, k−1−p] (zero below the diagonal).
  std::vector<double> u(static_cast<size_t>(k) * k, 0.0);
  for (int p = 0; p < k; ++p) {
    for (int q = p; q < k; ++q) row(u, p)[q] = row(v, k - 1 - q)[k - 1 - p];
  }
  return u;
}

StatusOr<Int4Quantized> QuantizeInt4(const float* w, int n, int k, int group, bool mse_clip,
                                     const std::vector<double>* hessian, ThreadPool& pool) {
  if (n <= 0 || k <= 0 || group <= 0 || k % group != 0) {
    return InvalidArgument("int4 quantisation: bad shape or group size");
  }
  const int ng = k / group;
  Int4Quantized out;
  out.w.assign(w, w + static_cast<size_t>(n) * k);
  out.grid.resize(static_cast<size_t>(n) * ng * 2);
  if (hessian == nullptr) {
    std::vector<double> p(group);
    for (int j = 0; j < n; ++j) {
      for (int g = 0; g < ng; ++g) {
        const float* src = w + static_cast<size_t>(j) * k + g * group;
        std::copy(src, src + group, p.begin());
        float* gr = &out.grid[(static_cast<size_t>(j) * ng + g) * 2];
        ChooseAffineGrid(p.data(), group, mse_clip, gr, gr + 1);
      }
    }
    return out;
  }
  if (hessian->size() != static_cast<size_t>(k) * k) {
    return InvalidArgument("GPTQ: Hessian has the wrong size");
  }
  // Damped Hessian; input channels never seen (diag 0) get H = 1 and zero weight, as GPTQ.
  std::vector<double> h = *hessian;
  std::vector<bool> dead(k);
  double mean_diag = 0;
  for (int c = 0; c < k; ++c) {
    double& d = h[static_cast<size_t>(c) * k + c];
    dead[c] = !(d > 0);
    if (dead[c]) d = 1.0;
    mean_diag += d;
  }
  mean_diag /= k;
  for (int c = 0; c < k; ++c) h[static_cast<size_t>(c) * k + c] += 0.01 * mean_diag;
  ASSIGN_OR_RETURN(std::vector<double> u, InverseCholeskyUpper(h, k, &pool));

  const int threads = pool.num_threads();
  pool.ParallelFor(threads, [&](int t) {
    std::vector<double> row(k);
    for (int j = n * t / threads; j < n * (t + 1) / threads; ++j) {
      const float* src = w + static_cast<size_t>(j) * k;
      for (int c = 0; c < k; ++c) row[c] = dead[c] ? 0.0 : src[c];
      float* dst = out.w.data() + static_cast<size_t>(j) * k;
      kernels::AffineS4 grid{};
      for (int c = 0; c < k; ++c) {
        if (c % group == 0) {
          float* gr = &out.grid[(static_cast<size_t>(j) * ng + c / group) * 2];
          ChooseAffineGrid(&row[c], group, mse_clip, gr, gr + 1);
          grid = kernels::AffineS4::FromRange(gr[0], gr[1]);
        }
        const float q = grid.RoundToGrid(static_cast<float>(row[c]));
        dst[c] = q;
        const double* uc = &u[static_cast<size_t>(c) * k];
        const double err = (row[c] - q) / uc[c];
        SubScaled(&row[c + 1], err, uc + c + 1, k - c - 1);
      }
    }
  });
  return out;
}

}  // namespace encserve
