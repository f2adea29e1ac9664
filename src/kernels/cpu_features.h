// CPU feature detection (cpuid + XGETBV: the OS must save the registers) and the ISA the
// kernels run with. ENCSERVE_ISA=scalar|avx2|avx512 forces a lower ISA than the CPU offers.
#pragma once

#include <string>

namespace encserve::kernels {

// Ordered: a higher value implies the lower ones.
enum class Isa { kScalar = 0, kAvx2 = 1, kAvx512 = 2 };

struct CpuFeatures {
  bool avx2 = false;    // with FMA and F16C
  bool avx512 = false;  // F, BW, VL, DQ
  bool avx512_vnni = false;
  bool avx512_bf16 = false;
  bool avx_vnni = false;
  bool amx = false;
  std::string brand;  // e.g. "Intel(R) Xeon(R) Processor"
};

const CpuFeatures& DetectCpu();
// Best ISA the CPU and OS support.
Isa BestSupportedIsa();
// Kernel ISA used by default: BestSupportedIsa() lowered by ENCSERVE_ISA if set. An unknown or
// unsupported value is reported on stderr once and ignored (a higher ISA is never forced).
Isa ActiveIsa();
const char* IsaName(Isa isa);
// Parses "scalar", "avx2", "avx512" (also "avx512_vnni", "avx512_bf16" as avx512 for fp32).
bool ParseIsa(const std::string& name, Isa* out);
// "avx2 fma f16c avx512f ... " for reports.
std::string CpuFlagsString();

}  // namespace encserve::kernels
