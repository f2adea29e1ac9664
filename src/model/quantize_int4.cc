#include "model/quantize_int4.h"

#include <algorithm>
#include <cmath>

namespace encserve {
namespace {

// The two inner loops of the Cholesky, inverse and GPTQ updates; load-time code, cloned per ISA
// by the compiler (this library is built for baseline x86-64) and resolved once at start-up.
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
#define ENCSERVE_CLONES __attribute__((target_clones("avx512f", "avx2", "default")))
#else
#define ENCSERVE_CLONES
#endif

ENCSERVE_CLONES double Dot(const double* a, const double* b, int n) {
  double acc[32] = {};  // four independent vector chains (FMA latency)
  int i = 0;
  for (; i + 32 <= n; i += 32) {
    for (int j = 0; j < 32; ++j) acc[j] += a[i + j] * b[i + j];
  }
  double s = 0;
  for (; i < n; ++i) s += a[i] * b[i];
  for (double v : acc) s += v;
  return s;
}

// y[0, n) −= alpha · x[0, n)
ENCSERVE_CLONES void SubScaled(double* y, double alpha, const double* x, int n) {
  for (int i = 0; i < n; ++i) y[i] -= alpha * x[i];
}

// One affine grid: the value PackS4 stores for p on [lo, hi] (float arithmetic, as the packer).
struct Grid {
  float lo, scale, inv;
  explicit Grid(float l, float h) : lo(l), scale((h - l) / 15.0f), inv(15.0f / (h - l)) {
    if (!(scale > 0.0f) || !std::isfinite(inv)) scale = inv = 0.0f;  // constant: p ↦ lo
  }
  float Dequant(double p) const {
    float r = std::nearbyint((static_cast<float>(p) - lo) * inv);
    r = std::clamp(r, 0.0f, 15.0f);
    return lo + scale * r;
  }
};

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
    const Grid grid(l, h);
    double err = 0;
    for (int i = 0; i < g; ++i) {
      const double d = p[i] - grid.Dequant(p[i]);
      err += d * d;
    }
    if (err < best) {
      best = err;
      *lo = l;
      *hi = h;
    }
  }
}

StatusOr<std::vector<double>> InverseCholeskyUpper(const std::vector<double>& h, int k) {
  // With J the order reversal, L̃ = chol(J H J) (lower) gives H = R Rᵀ for R = J L̃ J (upper), so
  // H⁻¹ = (R⁻¹)ᵀ R⁻¹ and U = R⁻¹ = J L̃⁻¹ J.
  std::vector<double> l(static_cast<size_t>(k) * k, 0.0);
  auto at = [k](std::vector<double>& m, int i, int j) -> double& {
    return m[static_cast<size_t>(i) * k + j];
  };
  for (int i = 0; i < k; ++i) {
    for (int j = 0; j <= i; ++j) {
      const double hij = h[static_cast<size_t>(k - 1 - i) * k + (k - 1 - j)];
      const double s = hij - Dot(&at(l, i, 0), &at(l, j, 0), j);
      if (i == j) {
        if (!(s > 0)) {
          return FailedPrecondition("GPTQ: the calibration Hessian is not positive definite");
        }
        at(l, i, i) = std::sqrt(s);
      } else {
        at(l, i, j) = s / at(l, j, j);
      }
    }
  }
  // Column c of L̃⁻¹ by forward substitution, kept as a contiguous vector x (x[i] = 0, i < c).
  std::vector<double> u(static_cast<size_t>(k) * k, 0.0), x(k);
  for (int c = 0; c < k; ++c) {
    std::fill(x.begin(), x.end(), 0.0);
    for (int i = c; i < k; ++i) {
      const double rhs = (i == c ? 1.0 : 0.0) - Dot(&at(l, i, c), &x[c], i - c);
      x[i] = rhs / at(l, i, i);
      at(u, k - 1 - i, k - 1 - c) = x[i];  // U[a][b] = L̃⁻¹[k−1−a][k−1−b], a ≤ b
    }
  }
  return u;
}

void Hadamard64RowsF64(double* a, long rows, int k) {
  for (long r = 0; r < rows; ++r) {
    double* v = a + r * k;
    for (int b = 0; b < k; b += 64) {
      for (int h = 1; h < 64; h *= 2) {
        for (int s = b; s < b + 64; s += 2 * h) {
          for (int j = s; j < s + h; ++j) {
            const double x = v[j], y = v[j + h];
            v[j] = x + y;
            v[j + h] = x - y;
          }
        }
      }
    }
  }
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
  ASSIGN_OR_RETURN(std::vector<double> u, InverseCholeskyUpper(h, k));

  const int threads = pool.num_threads();
  pool.ParallelFor(threads, [&](int t) {
    std::vector<double> row(k);
    for (int j = n * t / threads; j < n * (t + 1) / threads; ++j) {
      const float* src = w + static_cast<size_t>(j) * k;
      for (int c = 0; c < k; ++c) row[c] = dead[c] ? 0.0 : src[c];
      float* dst = out.w.data() + static_cast<size_t>(j) * k;
      Grid grid(0.0f, 0.0f);
      for (int c = 0; c < k; ++c) {
        if (c % group == 0) {
          float* gr = &out.grid[(static_cast<size_t>(j) * ng + c / group) * 2];
          ChooseAffineGrid(&row[c], group, mse_clip, gr, gr + 1);
          grid = Grid(gr[0], gr[1]);
        }
        const float q = grid.Dequant(row[c]);
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
