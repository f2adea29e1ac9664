// Portable scalar quantised kernels (registry entry "scalar"): what a CPU without AVX2 runs. Same
// packed layouts and semantics as the SIMD tables, plain integer loops.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <vector>

#include "kernels/quant.h"
#include "kernels/quant_params.h"

namespace encserve::kernels {
namespace {

constexpr int kNr = 16;

float Finish(float v, Epilogue ep) {
  return ep == Epilogue::kBiasGelu ? 0.5f * v * (1.0f + std::erf(v * 0.70710678118654752f)) : v;
}

void QuantizeRowRangeScalar(const float* x, int k, const float* col_scale, int r0, int r1,
                            QuantizedRows* out) {
  const int kp = out->kp;
  std::vector<float> scaled(col_scale != nullptr ? k : 0);
  for (int i = r0; i < r1; ++i) {
    const float* r = x + static_cast<size_t>(i) * k;
    if (col_scale != nullptr) {
      for (int kk = 0; kk < k; ++kk) scaled[kk] = r[kk] * col_scale[kk];
      r = scaled.data();
    }
    uint8_t* q = out->data.data() + static_cast<size_t>(i) * kp;
    float lo = 0.0f, hi = 0.0f;
    for (int kk = 0; kk < k; ++kk) {
      lo = std::fmin(lo, r[kk]);
      hi = std::fmax(hi, r[kk]);
    }
    const RowQuant rq = RowQuantParams(lo, hi);
    out->scales[i] = rq.scale;
    out->shifts[i] = rq.shift;
    for (int kk = 0; kk < k; ++kk) q[kk] = QuantizeU8(r[kk], rq);
    for (int kk = k; kk < kp; ++kk) q[kk] = 128;
  }
}

void GemmS8Scalar(const QuantizedRows& x, const PackedS8& w, float* y, int ldy, int n0, int n1,
                  Epilogue ep) {
  int32_t acc[kNr];
  const int kb = w.kp / 4;
  for (int p = n0 / kNr; p * kNr < n1; ++p) {
    const int8_t* bp = w.panel(p);
    const int cols = std::min(kNr, n1 - p * kNr);
    const float* ws = w.scales.data() + p * kNr;
    const float* bias = w.bias.data() + p * kNr;
    const int32_t* wsum = w.wsum128.data() + p * kNr;
    const float* cs = w.colsum.data() + p * kNr;
    for (int i = 0; i < x.m; ++i) {
      const uint8_t* a = x.row(i);
      for (int c = 0; c < kNr; ++c) acc[c] = -wsum[c];
      for (int b = 0; b < kb; ++b) {
        const int8_t* wb = bp + static_cast<size_t>(b) * kNr * 4;
        for (int c = 0; c < kNr; ++c) {
          for (int t = 0; t < 4; ++t) acc[c] += a[4 * b + t] * wb[4 * c + t];
        }
      }
      float* out = y + static_cast<size_t>(i) * ldy + p * kNr;
      const float as = x.scales[i], xc = x.shifts[i];
      for (int c = 0; c < cols; ++c) {
        out[c] = Finish(std::fma(float(acc[c]), as * ws[c], std::fma(xc, cs[c], bias[c])), ep);
      }
    }
  }
}

void GemmS4Scalar(const QuantizedRows& x, const PackedS4& w, float* y, int ldy, int n0, int n1,
                  Epilogue ep) {
  constexpr int kHalf = kNr / 2;
  int32_t acc[kNr];
  float facc[kNr];
  const int g4 = w.group_size / 4, ng = w.num_groups();
  // Every row's group sums X = Σ_{k∈g} xq, which the affine offsets multiply: once per call.
  std::vector<float> xsum(static_cast<size_t>(x.m) * ng);
  GroupSumsXq(x.row(0), x.kp, x.m, w.k, w.group_size, 1.0f, xsum.data());
  for (int p = n0 / kNr; p * kNr < n1; ++p) {
    const uint8_t* bp = w.panel(p);
    const int cols = std::min(kNr, n1 - p * kNr);
    const float* bias = w.bias.data() + p * kNr;
    const float* cs = w.colsum.data() + p * kNr;
    for (int i = 0; i < x.m; ++i) {
      const uint8_t* a = x.row(i);
      std::fill(facc, facc + kNr, 0.0f);
      for (int g = 0; g < ng; ++g) {
        const size_t at = (static_cast<size_t>(p) * ng + g) * kNr;
        for (int c = 0; c < kNr; ++c) acc[c] = -w.wsum128[at + c];
        for (int b = g * g4; b < (g + 1) * g4; ++b) {
          const uint8_t* wb = bp + static_cast<size_t>(b) * kHalf * 4;
          for (int c = 0; c < kHalf; ++c) {
            for (int t = 0; t < 4; ++t) {
              const int byte = wb[4 * c + t], xa = a[4 * b + t];
              acc[c] += xa * ((byte & 0xF) ^ 8) - xa * 8;  // sign-extend the low nibble
              acc[c + kHalf] += xa * ((byte >> 4) ^ 8) - xa * 8;
            }
          }
        }
        const float xg = xsum[static_cast<size_t>(i) * ng + g];
        for (int c = 0; c < kNr; ++c) {
          facc[c] += std::fma(w.scales[at + c], float(acc[c]), w.offsets[at + c] * xg);
        }
      }
      float* out = y + static_cast<size_t>(i) * ldy + p * kNr;
      const float as = x.scales[i], xc = x.shifts[i];
      for (int c = 0; c < cols; ++c) {
        out[c] = Finish(std::fma(facc[c], as, std::fma(xc, cs[c], bias[c])), ep);
      }
    }
  }
}

}  // namespace

const QuantKernelTable& ScalarQuantKernels() {
  static const QuantKernelTable table{"scalar",     kNr,         1, QuantizeRowRangeScalar,
                                      GemmS8Scalar, GemmS4Scalar};
  return table;
}

}  // namespace encserve::kernels
