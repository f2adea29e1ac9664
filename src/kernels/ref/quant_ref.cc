#include <algorithm>
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

// Asymmetric per-row activation quantisation (kernels/quant.h), written out plainly.
void QuantizeRows(const float* x, int m, int k, int8_t* xq, float* scale, float* shift,
                  const float* col_scale) {
  std::vector<float> row(k);
  for (int i = 0; i < m; ++i) {
    const float* r = x + size_t(i) * k;
    if (col_scale != nullptr) {
      for (int c = 0; c < k; ++c) row[c] = r[c] * col_scale[c];
      r = row.data();
    }
    float lo = 0.0f, hi = 0.0f;
    for (int c = 0; c < k; ++c) {
      lo = std::fmin(lo, r[c]);
      hi = std::fmax(hi, r[c]);
    }
    const float range = hi - lo;
    float inv = 255.0f / range;
    int zp = 128;
    if (!(range > 0.0f) || !std::isfinite(inv)) {
      inv = 0.0f;
      scale[i] = 1.0f;
    } else {
      scale[i] = range / 255.0f;
      zp = static_cast<int>(std::nearbyint(-lo * inv));
    }
    shift[i] = scale[i] * static_cast<float>(128 - zp);
    for (int c = 0; c < k; ++c) {
      const int u = static_cast<int>(std::nearbyint(r[c] * inv)) + zp;
      xq[size_t(i) * k + c] = static_cast<int8_t>((u < 0 ? 0 : (u > 255 ? 255 : u)) - 128);
    }
  }
}

void QuantizeWeightsS8(const float* w, int n, int k, int8_t* q, float* scale) {
  for (int j = 0; j < n; ++j)
    QuantizeBlock(w + size_t(j) * k, k, 127, q + size_t(j) * k, &scale[j]);
}

void QuantizeWeightsS4(const float* w, int n, int k, int group, int8_t* q, float* scale,
                       float* offset) {
  const int ng = k / group;
  for (int j = 0; j < n; ++j) {
    for (int g = 0; g < ng; ++g) {
      const size_t at = size_t(j) * k + size_t(g) * group;
      const float lo = *std::min_element(w + at, w + at + group);
      const float hi = *std::max_element(w + at, w + at + group);
      float s = (hi - lo) / 15.0f, inv = 15.0f / (hi - lo);
      if (!(s > 0.0f) || !std::isfinite(inv)) {  // a constant group: exact with q = -8
        s = 0.0f;
        inv = 0.0f;
      }
      scale[size_t(j) * ng + g] = s;
      offset[size_t(j) * ng + g] = s > 0.0f ? lo + 8.0f * s : lo;
      for (int c = 0; c < group; ++c) {
        const float r = std::nearbyint((w[at + c] - lo) * inv);
        q[at + c] = static_cast<int8_t>((r < 0.0f ? 0 : (r > 15.0f ? 15 : int(r))) - 8);
      }
    }
  }
}

void GemmS8(const int8_t* xq, const float* xs, const float* xc, int m, const int8_t* wq,
            const float* ws, const float* bias, float* y, int n, int k, bool gelu) {
  for (int i = 0; i < m; ++i) {
    for (int j = 0; j < n; ++j) {
      int64_t dot = 0, wsum = 0;
      for (int kk = 0; kk < k; ++kk) {
        dot += int64_t(xq[size_t(i) * k + kk]) * wq[size_t(j) * k + kk];
        wsum += wq[size_t(j) * k + kk];
      }
      const double v = double(xs[i]) * ws[j] * double(dot) + double(xc[i]) * ws[j] * double(wsum) +
                       (bias ? bias[j] : 0.0);
      y[size_t(i) * n + j] = Epilogue(v, gelu);
    }
  }
}

void GemmS4(const int8_t* xq, const float* xs, const float* xc, int m, const int8_t* wq,
            const float* ws, const float* wo, int group, const float* bias, float* y, int n, int k,
            bool gelu) {
  const int ng = k / group;
  for (int i = 0; i < m; ++i) {
    for (int j = 0; j < n; ++j) {
      double acc = 0.0;
      for (int kk = 0; kk < k; ++kk) {
        const int g = kk / group;
        const double x = double(xs[i]) * xq[size_t(i) * k + kk] + xc[i];
        const double wv = double(ws[size_t(j) * ng + g]) * wq[size_t(j) * k + kk] +
                          double(wo[size_t(j) * ng + g]);
        acc += x * wv;
      }
      y[size_t(i) * n + j] = Epilogue(acc + (bias ? bias[j] : 0.0), gelu);
    }
  }
}

}  // namespace encserve::kernels::ref
