// AVX2 quantised kernels without VNNI (vpmaddubsw + vpmaddwd; see kernels/simd/quant_avx2.inc for
// how the int16 saturation of vpmaddubsw is avoided). Compiled with -mavx2 -mfma -mf16c only;
// reached only through the kernel registry (kernels/registry.h) after the CPU check.
#include <immintrin.h>

#include <cmath>
#include <cstdint>
#include <cstring>

#include "kernels/quant.h"
#include "kernels/quant_params.h"
#include "kernels/simd/vec_avx2.h"

#ifdef __AVXVNNI__
#error "kernels/avx2/ must not be compiled with -mavxvnni"
#endif

namespace encserve::kernels {
namespace {
#include "kernels/simd/quant_avx2.inc"
}  // namespace

const QuantKernelTable& Avx2QuantKernels() {
  static const QuantKernelTable table{"avx2",     kNr,       kMr, QuantizeRowRange256,
                                      GemmS8_256, GemmS4_256};
  return table;
}

}  // namespace encserve::kernels
