// Portable scalar kernels (Isa::kScalar): what a CPU without AVX2 runs. Same packed layout and
// semantics as the SIMD tables, plain loops; the compiler may auto-vectorise to SSE2.
#include <algorithm>
#include <cmath>

#include "kernels/hadamard_generic.h"
#include "kernels/kernels.h"

namespace encserve::kernels {
namespace {

constexpr int kNr = 16;

float GeluScalar(float x) {
  return 0.5f * x * (1.0f + std::erf(x * 0.70710678118654752f));
}

// Shared by fp32 and 16-bit weights: Load(bp, i) returns panel element i as float.
template <class P, class LoadFn>
void GemmPanelsScalar(const float* x, int ldx, int m, const P& w, float* y, int ldy, int n0, int n1,
                      Epilogue ep, LoadFn load) {
  const int k = w.k;
  float acc[kNr];
  for (int p = n0 / kNr; p * kNr < n1; ++p) {
    const auto* bp = w.panel(p);
    const int cols = std::min(kNr, n1 - p * kNr);
    for (int i = 0; i < m; ++i) {
      for (int c = 0; c < kNr; ++c) acc[c] = w.bias[p * kNr + c];
      const float* a = x + static_cast<size_t>(i) * ldx;
      for (int kk = 0; kk < k; ++kk) {
        const float av = a[kk];
        const auto* b = bp + static_cast<size_t>(kk) * kNr;
        for (int c = 0; c < kNr; ++c) acc[c] += av * load(b[c]);
      }
      float* out = y + static_cast<size_t>(i) * ldy + p * kNr;
      for (int c = 0; c < cols; ++c)
        out[c] = ep == Epilogue::kBiasGelu ? GeluScalar(acc[c]) : acc[c];
    }
  }
}

void GemmScalar(const float* x, int ldx, int m, const PackedF32& w, float* y, int ldy, int n0,
                int n1, Epilogue ep) {
  GemmPanelsScalar(x, ldx, m, w, y, ldy, n0, n1, ep, [](float v) { return v; });
}

void GemmHalfScalar(const float* x, int ldx, int m, const PackedHalf& w, float* y, int ldy, int n0,
                    int n1, Epilogue ep) {
  if (w.format == HalfFormat::kF16) {
    GemmPanelsScalar(x, ldx, m, w, y, ldy, n0, n1, ep, HalfToFloat);
  } else {
    GemmPanelsScalar(x, ldx, m, w, y, ldy, n0, n1, ep, Bf16ToFloat);
  }
}

void LayerNormScalar(const float* x, const float* residual, const float* gamma, const float* beta,
                     float eps, float* out, int m, int n) {
  for (int i = 0; i < m; ++i) {
    const float* xr = x + static_cast<size_t>(i) * n;
    const float* rr = residual ? residual + static_cast<size_t>(i) * n : nullptr;
    float* o = out + static_cast<size_t>(i) * n;
    float mean = 0;
    for (int j = 0; j < n; ++j) {
      o[j] = xr[j] + (rr ? rr[j] : 0.0f);
      mean += o[j];
    }
    mean /= n;
    float var = 0;
    for (int j = 0; j < n; ++j) var += (o[j] - mean) * (o[j] - mean);
    const float inv = 1.0f / std::sqrt(var / n + eps);
    for (int j = 0; j < n; ++j) o[j] = (o[j] - mean) * inv * gamma[j] + beta[j];
  }
}

void AttentionHeadScalar(const float* q, const float* k, const float* v, int ld, int seq_len,
                         int head_dim, float scale, float* out, int ld_out, float* scratch) {
  float* p = scratch;
  for (int i = 0; i < seq_len; ++i) {
    float mx = -INFINITY;
    for (int j = 0; j < seq_len; ++j) {
      float s = 0;
      for (int c = 0; c < head_dim; ++c) s += q[i * ld + c] * k[j * ld + c];
      p[j] = s * scale;
      mx = std::max(mx, p[j]);
    }
    float sum = 0;
    for (int j = 0; j < seq_len; ++j) {
      p[j] = std::exp(p[j] - mx);
      sum += p[j];
    }
    const float inv = 1.0f / sum;
    float* o = out + static_cast<size_t>(i) * ld_out;
    for (int c = 0; c < head_dim; ++c) o[c] = 0;
    for (int j = 0; j < seq_len; ++j) {
      const float pj = p[j] * inv;
      for (int c = 0; c < head_dim; ++c) o[c] += pj * v[j * ld + c];
    }
  }
}

}  // namespace

const KernelTable& ScalarKernels() {
  static const KernelTable table{.isa = Isa::kScalar,
                                 .name = "scalar",
                                 .gemm_nr = kNr,
                                 .gemm_mr = 1,
                                 .gemm_f32 = GemmScalar,
                                 .layernorm_f32 = LayerNormScalar,
                                 .attention_head_f32 = AttentionHeadScalar,
                                 .gemm_half = GemmHalfScalar,
                                 .hadamard64 = generic::Hadamard64Rows<float>};
  return table;
}

}  // namespace encserve::kernels
