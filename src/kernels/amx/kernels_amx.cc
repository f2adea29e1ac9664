// The fp32 kernel table under Isa::kAmx: the avx512 table (AMX has no fp32 tiles) renamed, so
// that Kernels().isa reports the level whose quantised / bf16 GEMMs use the tiles, with the AMX
// bf16 GEMM (tdpbf16ps) when the CPU has AMX-BF16.
#include "kernels/kernels.h"

namespace encserve::kernels {

// kernels/amx/gemm_bf16_amx.cc
void GemmBf16Amx(const uint16_t* xb, int ldxb, int m, const PackedBf16Pairs& w, float* y, int ldy,
                 int n0, int n1, Epilogue ep);

const KernelTable& AmxKernels() {
  static const KernelTable table = [] {
    KernelTable t = Avx512Kernels();
    t.isa = Isa::kAmx;
    t.name = "amx";
    if (DetectCpu().amx_bf16 && t.convert_bf16 != nullptr && t.gemm_nr == 32) {
      t.gemm_bf16_dot = GemmBf16Amx;
      t.bf16_k_align = 32;  // one A tile row: 32 bf16
      t.bf16_mr = 32;       // two 16-row A tiles
      t.bf16_dot_preferred = true;
    }
    return t;
  }();
  return table;
}

}  // namespace encserve::kernels
