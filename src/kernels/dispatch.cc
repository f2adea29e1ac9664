#include "kernels/kernels.h"

namespace encserve::kernels {

const KernelTable* KernelsFor(Isa isa) {
  if (isa > BestSupportedIsa()) return nullptr;
  switch (isa) {
    case Isa::kScalar:
      return &ScalarKernels();
    case Isa::kAvx2:
      return &Avx2Kernels();
    case Isa::kAvx512:
      return &Avx512Kernels();
    case Isa::kAmx:
      return &AmxKernels();
  }
  return nullptr;
}

const KernelTable& Kernels() {
  static const KernelTable* table = KernelsFor(ActiveIsa());
  return *table;
}

}  // namespace encserve::kernels
