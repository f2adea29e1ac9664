// AVX-512 kernels (16-wide). Compiled with -mavx512f/bw/vl/dq only; reached only through
// KernelsFor()/Kernels() after the CPU check.
#include <immintrin.h>

#include "kernels/kernels.h"
#include "kernels/simd/vec_avx512.h"

namespace encserve::kernels {
// Defined in kernels/avx512_bf16/ (compiled with -mavx512bf16); used only when the CPU has it.
void GemmBf16DotAvx512(const uint16_t* xb, int ldxb, int m, const PackedBf16Pairs& w, float* y,
                       int ldy, int n0, int n1, Epilogue ep);
void ConvertBf16Avx512(const float* x, int m, int k, uint16_t* out, int ldo);
}  // namespace encserve::kernels

namespace encserve::kernels {
namespace {
using avx512::Vec;
constexpr int kMr = 12;  // 12 rows × 2 vectors = 24 accumulators of 32 registers
#include "kernels/simd/kernels_impl.inc"

// One butterfly stage of stride h < 16 inside a vector: lane i pairs with lane i ^ h; the lower
// lane of a pair gets a + b, the upper one a − b (a = lower, b = upper value).
inline __m512 HadamardStage(__m512 v, __m512i partner, __mmask16 upper) {
  const __m512 p = _mm512_permutexvar_ps(partner, v);
  return _mm512_mask_sub_ps(_mm512_add_ps(v, p), upper, p, v);
}

// x[m, k] · diag(col_scale) → blockdiag(H64): four vectors per block, strides 1..8 by lane
// permutes, 16 and 32 across vectors.
void Hadamard64Avx512(const float* x, const float* col_scale, float* out, int m, int k) {
  const __m512i lanes = _mm512_set_epi32(15, 14, 13, 12, 11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1, 0);
  const __m512i p1 = _mm512_xor_si512(lanes, _mm512_set1_epi32(1));
  const __m512i p2 = _mm512_xor_si512(lanes, _mm512_set1_epi32(2));
  const __m512i p4 = _mm512_xor_si512(lanes, _mm512_set1_epi32(4));
  const __m512i p8 = _mm512_xor_si512(lanes, _mm512_set1_epi32(8));
  for (long i = 0; i < m; ++i) {
    const float* src = x + i * k;
    float* dst = out + i * k;
    for (int b = 0; b < k; b += 64) {
      __m512 v[4];
      for (int r = 0; r < 4; ++r) {
        v[r] = _mm512_loadu_ps(src + b + 16 * r);
        if (col_scale != nullptr)
          v[r] = _mm512_mul_ps(v[r], _mm512_loadu_ps(col_scale + b + 16 * r));
        v[r] = HadamardStage(v[r], p1, 0xAAAA);
        v[r] = HadamardStage(v[r], p2, 0xCCCC);
        v[r] = HadamardStage(v[r], p4, 0xF0F0);
        v[r] = HadamardStage(v[r], p8, 0xFF00);
      }
      const __m512 a0 = _mm512_add_ps(v[0], v[1]), a1 = _mm512_sub_ps(v[0], v[1]);
      const __m512 a2 = _mm512_add_ps(v[2], v[3]), a3 = _mm512_sub_ps(v[2], v[3]);
      _mm512_storeu_ps(dst + b, _mm512_add_ps(a0, a2));
      _mm512_storeu_ps(dst + b + 16, _mm512_add_ps(a1, a3));
      _mm512_storeu_ps(dst + b + 32, _mm512_sub_ps(a0, a2));
      _mm512_storeu_ps(dst + b + 48, _mm512_sub_ps(a1, a3));
    }
  }
}
}  // namespace

const KernelTable& Avx512Kernels() {
  static const KernelTable table = [] {
    KernelTable t{.isa = Isa::kAvx512,
                  .name = "avx512",
                  .gemm_nr = kNr,
                  .gemm_mr = kMr,
                  .gemm_f32 = GemmF32,
                  .layernorm_f32 = LayerNormF32,
                  .attention_head_f32 = AttentionHeadF32,
                  .gemm_half = GemmHalf,
                  .hadamard64 = Hadamard64Avx512};
    if (DetectCpu().avx512_bf16) {
      t.gemm_bf16_dot = GemmBf16DotAvx512;
      t.convert_bf16 = ConvertBf16Avx512;
      t.bf16_mr = kMr;
      t.bf16_dot_preferred = DetectCpu().amd;
    }
    return t;
  }();
  return table;
}

}  // namespace encserve::kernels
