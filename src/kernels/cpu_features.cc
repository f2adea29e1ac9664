#include "kernels/cpu_features.h"

#include <cpuid.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>

namespace encserve::kernels {
namespace {

uint64_t ReadXcr0() {
  uint32_t eax, edx;
  __asm__ volatile("xgetbv" : "=a"(eax), "=d"(edx) : "c"(0));
  return (static_cast<uint64_t>(edx) << 32) | eax;
}

// Linux hands out the 8 KiB AMX tile-data state only on request (per process, all threads):
// arch_prctl(ARCH_REQ_XCOMP_PERM, XFEATURE_XTILEDATA). Without it the first tile instruction
// faults, so a refusal means no AMX.
bool RequestAmxTileData() {
  constexpr long kArchReqXcompPerm = 0x1023, kXfeatureXtiledata = 18;
  return syscall(SYS_arch_prctl, kArchReqXcompPerm, kXfeatureXtiledata) == 0;
}

CpuFeatures Detect() {
  CpuFeatures f;
  unsigned a, b, c, d;
  if (__get_cpuid(0, &a, &b, &c, &d)) {
    char vendor[13] = {0};
    std::memcpy(vendor, &b, 4);
    std::memcpy(vendor + 4, &d, 4);
    std::memcpy(vendor + 8, &c, 4);
    f.amd = std::strcmp(vendor, "AuthenticAMD") == 0;
  }
  if (!__get_cpuid(1, &a, &b, &c, &d)) return f;
  const bool osxsave = c & (1u << 27);
  const bool fma = c & (1u << 12), f16c = c & (1u << 29), avx = c & (1u << 28);
  uint64_t xcr0 = osxsave ? ReadXcr0() : 0;
  const bool os_avx = (xcr0 & 0x6) == 0x6;                 // XMM + YMM state
  const bool os_avx512 = os_avx && (xcr0 & 0xe0) == 0xe0;  // opmask + ZMM state
  const bool os_amx = (xcr0 & 0x60000) == 0x60000;
  unsigned max_leaf = __get_cpuid_max(0, nullptr);
  if (max_leaf >= 7) {
    __cpuid_count(7, 0, a, b, c, d);
    const bool avx2 = b & (1u << 5);
    f.avx2 = os_avx && avx && avx2 && fma && f16c;
    const bool f512 = b & (1u << 16), dq = b & (1u << 17), bw = b & (1u << 30), vl = b & (1u << 31);
    f.avx512 = os_avx512 && f.avx2 && f512 && dq && bw && vl;
    f.avx512_vnni = f.avx512 && (c & (1u << 11));
    f.amx = f.avx512 && os_amx && (d & (1u << 24)) && (d & (1u << 25)) && RequestAmxTileData();
    f.amx_bf16 = f.amx && (d & (1u << 22));
    unsigned a1, b1, c1, d1;
    __cpuid_count(7, 1, a1, b1, c1, d1);
    f.avx512_bf16 = f.avx512 && (a1 & (1u << 5));
    f.avx_vnni = f.avx2 && (a1 & (1u << 4));
  }
  char brand[49] = {0};
  // (GCC declares __get_cpuid_max unsigned, clang int: compare as unsigned for both.)
  if (static_cast<unsigned>(__get_cpuid_max(0x80000000, nullptr)) >= 0x80000004u) {
    for (unsigned i = 0; i < 3; ++i) {
      __cpuid(0x80000002 + i, a, b, c, d);
      std::memcpy(brand + 16 * i, &a, 4);
      std::memcpy(brand + 16 * i + 4, &b, 4);
      std::memcpy(brand + 16 * i + 8, &c, 4);
      std::memcpy(brand + 16 * i + 12, &d, 4);
    }
  }
  f.brand = brand;
  while (!f.brand.empty() && f.brand.back() == ' ') f.brand.pop_back();
  return f;
}

Isa ComputeActiveIsa() {
  Isa best = BestSupportedIsa();
  const char* env = std::getenv("ENCSERVE_ISA");
  if (env == nullptr || *env == '\0') return best;
  Isa forced;
  if (!ParseIsa(env, &forced)) {
    std::fprintf(stderr,
                 "encserve: ignoring unknown ENCSERVE_ISA=%s (use scalar|avx2|avx512|amx)\n", env);
    return best;
  }
  if (forced > best) {
    std::fprintf(stderr, "encserve: ENCSERVE_ISA=%s is not supported by this CPU; using %s\n", env,
                 IsaName(best));
    return best;
  }
  return forced;
}

}  // namespace

const CpuFeatures& DetectCpu() {
  static const CpuFeatures features = Detect();
  return features;
}

Isa BestSupportedIsa() {
  const CpuFeatures& f = DetectCpu();
  if (f.amx) return Isa::kAmx;
  if (f.avx512) return Isa::kAvx512;
  if (f.avx2) return Isa::kAvx2;
  return Isa::kScalar;
}

Isa ActiveIsa() {
  static const Isa isa = ComputeActiveIsa();
  return isa;
}

const char* IsaName(Isa isa) {
  switch (isa) {
    case Isa::kScalar:
      return "scalar";
    case Isa::kAvx2:
      return "avx2";
    case Isa::kAvx512:
      return "avx512";
    case Isa::kAmx:
      return "amx";
  }
  return "?";
}

bool ParseIsa(const std::string& name, Isa* out) {
  if (name == "scalar")
    *out = Isa::kScalar;
  else if (name == "avx2")
    *out = Isa::kAvx2;
  else if (name == "avx512" || name == "avx512_vnni" || name == "avx512_bf16")
    *out = Isa::kAvx512;
  else if (name == "amx")
    *out = Isa::kAmx;
  else
    return false;
  return true;
}

std::string CpuFlagsString() {
  const CpuFeatures& f = DetectCpu();
  std::string s;
  auto add = [&](bool on, const char* n) {
    if (!on) return;
    if (!s.empty()) s += ' ';
    s += n;
  };
  add(f.avx2, "avx2+fma+f16c");
  add(f.avx512, "avx512f+bw+vl+dq");
  add(f.avx512_vnni, "avx512_vnni");
  add(f.avx512_bf16, "avx512_bf16");
  add(f.avx_vnni, "avx_vnni");
  add(f.amx, "amx_int8");
  add(f.amx_bf16, "amx_bf16");
  return s.empty() ? "none" : s;
}

}  // namespace encserve::kernels
