#include <cmath>
#include <cstdint>
#include <vector>

#include "kernels/ref_quant.h"

namespace encserve::kernels::ref {
namespace {

// Symmetric quantisation of one block to ±qmax (see kernels/quant.h): scale = max / qmax,
// q = rint(v · (qmax / max)) in float, clamped; an all-zero block has scale 1 and zeros.
void QuantizeBlock(const float* v, int n, int qmax, int8_t* q, float* scale) {
  float mx = 0.0f;
  for (int i = 0; i < n; ++i) mx = std::fmax(mx, std::fabs(v[i]));
  const float inv = static_cast<float>(qmax) / mx;
  const bool zero = !(mx > 0.0f) || !std::isfinite(inv);
  *scale = zero ? 1.0f : mx / static_cast<float>(qmax);
  for (int i = 0; i < n; ++i) {
    const float r = zero ? 0.0f : std::nearbyint(v[i] * inv);
    q[i] = static_cast<int8_t>(std::fmax(-qmax, std::fmin(qmax, r)));
  }
}

float Epilogue(double v, bool gelu) {
  if (gelu) v = 0.5 * v * (1.0 + std::erf(v / std::sqrt(2.0)));
  return static_cast<float>(v);
}

}  // namespace

void QuantizeRows(const float* x, int m, int k, int8_t* xq, float* scale, const float* col_scale) {
  std::vector<float> row(k);
  for (int i = 0; i < m; ++i) {
    const float* r = x + size_t(i) * k;
    if (col_scale != nullptr) {
      for (int c = 0; c < k; ++c) row[c] = r[c] * col_scale[c];
      r = row.data();
    }
    QuantizeBlock(r, k, 127, xq + size_t(i) * k, &scale[i]);
  }
}

void QuantizeWeightsS8(const float* w, int n, int k, int8_t* q, float* scale) {
  QuantizeRows(w, n, k, q, scale);
}

void QuantizeWeightsS4(const float* w, int n, int k, int group, int8_t* q, float* scale) {
  const int ng = k / group;
  for (int j = 0; j < n; ++j) {
    for (int g = 0; g < ng; ++g) {
      const size_t at = size_t(j) * k + size_t(g) * group;
      QuantizeBlock(w + at, group, 7, q + at, &scale[size_t(j) * ng + g]);
    }
  }
}

void GemmS8(const int8_t* xq, const float* xs, int m, const int8_t* wq, const float* ws,
            const float* bias, float* y, int n, int k, bool gelu) {
  for (int i = 0; i < m; ++i) {
    for (int j = 0; j < n; ++j) {
      int64_t dot = 0;
      for (int kk = 0; kk < k; ++kk)
        dot += int64_t(xq[size_t(i) * k + kk]) * wq[size_t(j) * k + kk];
      const double v = double(xs[i]) * ws[j] * double(dot) + (bias ? bias[j] : 0.0);
      y[size_t(i) * n + j] = Epilogue(v, gelu);
    }
  }
}

void GemmS4(const int8_t* xq, const float* xs, int m, const int8_t* wq, const float* ws, int group,
            const float* bias, float* y, int n, int k, bool gelu) {
  const int ng = k / group;
  for (int i = 0; i < m; ++i) {
    for (int j = 0; j < n; ++j) {
      double acc = 0.0;
      for (int g = 0; g < ng; ++g) {
        int64_t dot = 0;
        for (int kk = g * group; kk < (g + 1) * group; ++kk)
          dot += int64_t(xq[size_t(i) * k + kk]) * wq[size_t(j) * k + kk];
        acc += double(ws[size_t(j) * ng + g]) * double(dot);
      }
      const double v = double(xs[i]) * acc + (bias ? bias[j] : 0.0);
      y[size_t(i) * n + j] = Epilogue(v, gelu);
    }
  }
}

}  // namespace encserve::kernels::ref
