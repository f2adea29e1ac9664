// AVX-512 kernels (16-wide). Compiled with -mavx512f/bw/vl/dq only; reached only through
// KernelsFor()/Kernels() after the CPU check.
#include "kernels/kernels.h"
#include "kernels/simd/vec_avx512.h"

namespace encserve::kernels {
namespace {
using avx512::Vec;
constexpr int kMr = 12;  // 12 rows × 2 vectors = 24 accumulators of 32 registers
#include "kernels/simd/kernels_impl.inc"
}  // namespace

const KernelTable& Avx512Kernels() {
  static const KernelTable table{Isa::kAvx512, "avx512",        kNr, kMr, GemmF32,
                                 LayerNormF32, AttentionHeadF32};
  return table;
}

}  // namespace encserve::kernels
