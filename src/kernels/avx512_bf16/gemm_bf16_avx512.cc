// AVX512-BF16 GEMM: bf16 activations × bf16 weight pairs with vdpbf16ps, fp32 accumulation.
// Compiled with -mavx512bf16; reached only when DetectCpu().avx512_bf16.
#include "kernels/kernels.h"
#include "kernels/simd/vec_avx512.h"

namespace encserve::kernels {
namespace {
using avx512::Vec;
constexpr int kMr = 12;  // 12 rows × 2 vectors = 24 fp32 accumulators
#include "kernels/simd/kernels_impl.inc"

// c[MR, cols] = epilogue(xb[MR, 2·kp] · bp[kp, kNr, 2] + bias): one vdpbf16ps per row and vector
// consumes two k values.
template <int MR>
inline void MicroTileBf16(const uint16_t* a, int lda, const uint16_t* bp, int kp, const float* bias,
                          float* c, int ldc, int cols, Epilogue ep) {
  reg acc0[MR], acc1[MR];
  const reg bias0 = Vec::load(bias), bias1 = Vec::load(bias + kW);
#pragma GCC unroll 16
  for (int r = 0; r < MR; ++r) {
    acc0[r] = bias0;
    acc1[r] = bias1;
  }
  for (int kk = 0; kk < kp; ++kk) {
    const __m512bh w0 = (__m512bh)_mm512_loadu_si512(bp);
    const __m512bh w1 = (__m512bh)_mm512_loadu_si512(bp + 2 * kW);
    bp += 2 * kNr;
#pragma GCC unroll 16
    for (int r = 0; r < MR; ++r) {
      int32_t pair;
      __builtin_memcpy(&pair, a + static_cast<long>(r) * lda + 2 * kk, 4);
      const __m512bh av = (__m512bh)_mm512_set1_epi32(pair);
      acc0[r] = _mm512_dpbf16_ps(acc0[r], av, w0);
      acc1[r] = _mm512_dpbf16_ps(acc1[r], av, w1);
    }
  }
  StoreTile<MR>(acc0, acc1, c, ldc, cols, ep);
}

template <int MR>
inline void TailTileBf16(int rows, const uint16_t* a, int lda, const uint16_t* bp, int kp,
                         const float* bias, float* c, int ldc, int cols, Epilogue ep) {
  if constexpr (MR > 0) {
    if (rows == MR) {
      MicroTileBf16<MR>(a, lda, bp, kp, bias, c, ldc, cols, ep);
    } else {
      TailTileBf16<MR - 1>(rows, a, lda, bp, kp, bias, c, ldc, cols, ep);
    }
  }
}

}  // namespace

void GemmBf16DotAvx512(const uint16_t* xb, int ldxb, int m, const PackedBf16Pairs& w, float* y,
                       int ldy, int n0, int n1, Epilogue ep) {
  const int kp = w.k_pairs();
  for (int p = n0 / kNr; p * kNr < n1; ++p) {
    const uint16_t* bp = w.panel(p);
    const float* bias = w.bias.data() + p * kNr;
    const int cols = MinInt(kNr, n1 - p * kNr);
    float* yp = y + p * kNr;
    int i = 0;
    for (; i + kMr <= m; i += kMr) {
      MicroTileBf16<kMr>(xb + static_cast<long>(i) * ldxb, ldxb, bp, kp, bias,
                         yp + static_cast<long>(i) * ldy, ldy, cols, ep);
    }
    if (i < m) {
      TailTileBf16<kMr - 1>(m - i, xb + static_cast<long>(i) * ldxb, ldxb, bp, kp, bias,
                            yp + static_cast<long>(i) * ldy, ldy, cols, ep);
    }
  }
}

void ConvertBf16Avx512(const float* x, int m, int k, uint16_t* out, int ldo) {
  for (int i = 0; i < m; ++i) {
    const float* src = x + static_cast<long>(i) * k;
    uint16_t* dst = out + static_cast<long>(i) * ldo;
    int j = 0;
    for (; j + 32 <= k; j += 32) {
      __m512bh v = _mm512_cvtne2ps_pbh(_mm512_loadu_ps(src + j + 16), _mm512_loadu_ps(src + j));
      _mm512_storeu_si512(dst + j, (__m512i)v);
    }
    for (; j < k; ++j) dst[j] = FloatToBf16(src[j]);
    for (; j < ldo; ++j) dst[j] = 0;
  }
}

}  // namespace encserve::kernels
