// CPU feature detection (cpuid + XGETBV: the OS must save the registers) and the ISA the
// kernels run with. ENCSERVE_ISA=scalar|avx2|avx512|amx forces a lower ISA than the CPU offers
// (avx512, avx512_vnni and avx512_bf16 all mean "AVX-512 without AMX").
#pragma once

#include <string>

namespace encserve::kernels {

// Ordered: a higher value implies the lower ones.
// kAmx: AVX-512 plus AMX tiles (the int8 / bf16 GEMMs use them; everything else is avx512).
enum class Isa { kScalar = 0, kAvx2 = 1, kAvx512 = 2, kAmx = 3 };

struct CpuFeatures {
  bool avx2 = false;    // with FMA and F16C
  bool avx512 = false;  // F, BW, VL, DQ
  bool avx512_vnni = false;
  bool avx512_bf16 = false;
  bool avx_vnni = false;
  bool amx = false;       // AMX-TILE + AMX-INT8, OS state enabled and tile data permitted
  bool amx_bf16 = false;  // amx and AMX-BF16
  bool amd = false;       // vendor AuthenticAMD (instruction costs differ, see kernels.h)
  std::string brand;      // e.g. "Intel(R) Xeon(R) Processor"
};

const CpuFeatures& DetectCpu();
// Best ISA the CPU and OS support.
Isa BestSupportedIsa();
// Kernel ISA used by default: BestSupportedIsa() lowered by ENCSERVE_ISA if set. An unknown or
// unsupported value is reported on stderr once and ignored (a higher ISA is never forced).
Isa ActiveIsa();
const char* IsaName(Isa isa);
// Parses "scalar", "avx2", "avx512" (also "avx512_vnni", "avx512_bf16" as avx512), "amx".
bool ParseIsa(const std::string& name, Isa* out);
// "avx2 fma f16c avx512f ... " for reports.
std::string CpuFlagsString();

}  // namespace encserve::kernels
