// AVX-512 kernels (16-wide). Compiled with -mavx512f/bw/vl/dq only; reached only through
// KernelsFor()/Kernels() after the CPU check.
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
                  .gemm_half = GemmHalf};
    if (DetectCpu().avx512_bf16) {
      t.gemm_bf16_dot = GemmBf16DotAvx512;
      t.convert_bf16 = ConvertBf16Avx512;
      t.bf16_mr = kMr;
    }
    return t;
  }();
  return table;
}

}  // namespace encserve::kernels
