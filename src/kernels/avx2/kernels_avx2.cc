// AVX2 + FMA kernels (8-wide). Compiled with -mavx2 -mfma -mf16c only; reached only through
// KernelsFor()/Kernels() after the CPU check.
#include "kernels/hadamard_generic.h"
#include "kernels/kernels.h"
#include "kernels/simd/vec_avx2.h"

namespace encserve::kernels {
namespace {
using avx2::Vec;
constexpr int kMr = 6;  // 6 rows × 2 vectors = 12 accumulators of 16 registers
#include "kernels/simd/kernels_impl.inc"
}  // namespace

const KernelTable& Avx2Kernels() {
  static const KernelTable table{.isa = Isa::kAvx2,
                                 .name = "avx2",
                                 .gemm_nr = kNr,
                                 .gemm_mr = kMr,
                                 .gemm_f32 = GemmF32,
                                 .layernorm_f32 = LayerNormF32,
                                 .attention_head_f32 = AttentionHeadF32,
                                 .gemm_half = GemmHalf,
                                 .hadamard64 = generic::Hadamard64Rows<float>};
  return table;
}

}  // namespace encserve::kernels
