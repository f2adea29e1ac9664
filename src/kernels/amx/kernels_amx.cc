// The fp32 kernel table under Isa::kAmx: the avx512 table (AMX has no fp32 tiles) renamed, so
// that Kernels().isa reports the level whose quantised / bf16 GEMMs use the tiles.
#include "kernels/kernels.h"

namespace encserve::kernels {

const KernelTable& AmxKernels() {
  static const KernelTable table = [] {
    KernelTable t = Avx512Kernels();
    t.isa = Isa::kAmx;
    t.name = "amx";
    return t;
  }();
  return table;
}

}  // namespace encserve::kernels
