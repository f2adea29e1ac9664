// AVX-VNNI quantised kernels (256-bit vpdpbusd, VEX-encoded: Alder Lake and later client CPUs,
// Sapphire Rapids). Compiled with -mavx2 -mfma -mf16c -mavxvnni; reached only through
// the kernel registry (kernels/registry.h) after the CPU check.
#include <immintrin.h>

#include <cmath>
#include <cstdint>
#include <cstring>

#include "kernels/quant.h"
#include "kernels/quant_params.h"
#include "kernels/simd/vec_avx2.h"

#ifndef __AVXVNNI__
#error "kernels/avx_vnni/ must be compiled with -mavxvnni"
#endif

namespace encserve::kernels {
namespace {
#include "kernels/simd/quant_avx2.inc"
}  // namespace

const QuantKernelTable& AvxVnniQuantKernels() {
  static const QuantKernelTable table{"avx_vnni",          kNr,        kMr,
                                      QuantizeRowRange256, GemmS8_256, GemmS4_256};
  return table;
}

}  // namespace encserve::kernels
