// The peak probes (kernels/peak.h): loops in assembly (kernels/peak_asm.h), so that they compile
// in this ordinary translation unit and run only after the CPU check.
#include "kernels/peak.h"

#include <time.h>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <thread>
#include <vector>

#include "kernels/amx/tile_config.h"
#include "kernels/kernels.h"
#include "kernels/peak_asm.h"
#include "kernels/quant.h"

namespace encserve::kernels {
namespace {

#define ENCSERVE_FMA_Z(i) "vfmadd231ps %%zmm30, %%zmm31, %%zmm" #i "\n\t"
#define ENCSERVE_FMA_Y(i) "vfmadd231ps %%ymm14, %%ymm15, %%ymm" #i "\n\t"
#define ENCSERVE_BF16_Z(i) "vdpbf16ps %%zmm30, %%zmm31, %%zmm" #i "\n\t"
#define ENCSERVE_VNNI_Z(i) "vpdpbusd %%zmm30, %%zmm31, %%zmm" #i "\n\t"
#define ENCSERVE_VNNI_Y(i) "%{vex%} vpdpbusd %%ymm14, %%ymm15, %%ymm" #i "\n\t"
#define ENCSERVE_MADDUBS_Y(i) "vpmaddubsw %%ymm14, %%ymm15, %%ymm" #i "\n\t"
// Zero operands (and all-ones bytes for the integer probes): no denormal or NaN slow paths.
#define ENCSERVE_ZERO_ZMM "vpxord %%zmm31, %%zmm31, %%zmm31\n\tvpxord %%zmm30, %%zmm30, %%zmm30\n\t"
#define ENCSERVE_ZERO_YMM "vpxor %%ymm15, %%ymm15, %%ymm15\n\tvpxor %%ymm14, %%ymm14, %%ymm14\n\t"
ENCSERVE_PEAK_LOOP_ZMM(Fma512, "avx512f", ENCSERVE_ZERO_ZMM, ENCSERVE_FMA_Z)
ENCSERVE_PEAK_LOOP_YMM(Fma256, "avx2,fma", ENCSERVE_ZERO_YMM, ENCSERVE_FMA_Y)
ENCSERVE_PEAK_LOOP_ZMM(Bf16Dot512, "avx512f,avx512bf16", ENCSERVE_ZERO_ZMM, ENCSERVE_BF16_Z)
ENCSERVE_PEAK_LOOP_ZMM(Vnni512, "avx512f,avx512vnni",
                       "vpternlogd $0xff, %%zmm31, %%zmm31, %%zmm31\n\t"
                       "vpxord %%zmm30, %%zmm30, %%zmm30\n\t",
                       ENCSERVE_VNNI_Z)
ENCSERVE_PEAK_LOOP_YMM(Vnni256, "avx2,avxvnni",
                       "vpcmpeqd %%ymm15, %%ymm15, %%ymm15\n\tvpxor %%ymm14, %%ymm14, %%ymm14\n\t",
                       ENCSERVE_VNNI_Y)
ENCSERVE_PEAK_LOOP_YMM(Maddubs256, "avx2",
                       "vpcmpeqd %%ymm15, %%ymm15, %%ymm15\n\tvpxor %%ymm14, %%ymm14, %%ymm14\n\t",
                       ENCSERVE_MADDUBS_Y)

// AMX: 4 tile multiplies per trip into independent C tiles tmm0-3 from A tiles tmm4-5 and B
// tiles tmm6-7 (all 16 rows × 64 bytes, zero), the shapes of the amx kernels.
const amx::TileConfig& KernelShapes() {
  static const amx::TileConfig cfg = amx::KernelTileConfig();
  return cfg;
}
#define ENCSERVE_AMX_LOOP(name, insn)                                                       \
  void name(long iters) {                                                                   \
    amx::TileConfig saved;                                                                  \
    __asm__ volatile("sttilecfg %0" : "=m"(saved));                                         \
    __asm__ volatile("ldtilecfg %0" : : "m"(KernelShapes()));                               \
    __asm__ volatile(                                                                       \
        "tilezero %%tmm4\n\ttilezero %%tmm5\n\ttilezero %%tmm6\n\ttilezero %%tmm7\n\t"      \
        "1:\n\t" insn " %%tmm6, %%tmm4, %%tmm0\n\t" insn " %%tmm7, %%tmm4, %%tmm1\n\t" insn \
        " %%tmm6, %%tmm5, %%tmm2\n\t" insn                                                  \
        " %%tmm7, %%tmm5, %%tmm3\n\t"                                                       \
        "dec %0\n\tjnz 1b\n\t"                                                              \
        : "+r"(iters)                                                                       \
        :                                                                                   \
        : "cc");                                                                            \
    /* the amx kernels re-check the configuration (amx_tiles.h); restore what was there */  \
    if (saved.palette_id != 0) __asm__ volatile("ldtilecfg %0" : : "m"(saved));             \
  }
ENCSERVE_AMX_LOOP(AmxInt8, "tdpbusd")
ENCSERVE_AMX_LOOP(AmxBf16, "tdpbf16ps")

bool HasAvx2(const CpuFeatures& f) {
  return f.avx2;
}
bool HasAvx512(const CpuFeatures& f) {
  return f.avx512;
}
bool HasBf16(const CpuFeatures& f) {
  return f.avx512_bf16;
}
bool HasVnni512(const CpuFeatures& f) {
  return f.avx512_vnni;
}
bool HasAvxVnni(const CpuFeatures& f) {
  return f.avx2 && f.avx_vnni;
}
bool HasAmx(const CpuFeatures& f) {
  return f.amx;
}
bool HasAmxBf16(const CpuFeatures& f) {
  return f.amx_bf16;
}

// ops per trip: 2 × products per instruction × instructions per trip (24 zmm, 12 ymm, 4 tiles)
constexpr PeakProbe kProbes[] = {
    {"fma512", "vfmadd231ps zmm", HasAvx512, 2.0 * 16 * 24, Fma512},
    {"fma256", "vfmadd231ps ymm", HasAvx2, 2.0 * 8 * 12, Fma256},
    {"bf16dot512", "vdpbf16ps zmm", HasBf16, 2.0 * 32 * 24, Bf16Dot512},
    {"vnni512", "vpdpbusd zmm", HasVnni512, 2.0 * 64 * 24, Vnni512},
    {"vnni256", "vpdpbusd ymm (AVX-VNNI)", HasAvxVnni, 2.0 * 32 * 12, Vnni256},
    {"maddubs256", "vpmaddubsw ymm", HasAvx2, 2.0 * 32 * 12, Maddubs256},
    {"amx_int8", "tdpbusd (AMX)", HasAmx, 2.0 * 16 * 16 * 64 * 4, AmxInt8},
    {"amx_bf16", "tdpbf16ps (AMX)", HasAmxBf16, 2.0 * 16 * 16 * 32 * 4, AmxBf16},
};

// About 0.3 ms a run whatever the instruction (the AMX trips are ~16× longer).
long ItersFor(const PeakProbe& p) {
  return std::strncmp(p.name, "amx", 3) == 0 ? 5000 : 50000;
}

}  // namespace

double ThreadCpuSeconds() {
  timespec ts;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return ts.tv_sec + ts.tv_nsec * 1e-9;
}

std::span<const PeakProbe> PeakProbes() {
  return kProbes;
}

const PeakProbe* PeakProbeNamed(const char* name) {
  for (const PeakProbe& p : kProbes) {
    if (std::strcmp(p.name, name) == 0) return p.supported(DetectCpu()) ? &p : nullptr;
  }
  return nullptr;
}

double RunPeakProbe(const PeakProbe& p, long iters) {
  const double t0 = ThreadCpuSeconds();
  p.loop(iters);
  return p.ops_per_iter * iters / (ThreadCpuSeconds() - t0) * 1e-9;
}

double MeasurePeak(const PeakProbe& p, int threads, int reps) {
  std::vector<double> best(std::max(threads, 1), 0.0);
  auto body = [&](int t) {
    for (int r = 0; r < reps; ++r) best[t] = std::max(best[t], RunPeakProbe(p, ItersFor(p)));
  };
  std::vector<std::thread> others;
  for (int t = 1; t < threads; ++t) others.emplace_back(body, t);
  body(0);
  for (auto& th : others) th.join();
  double sum = 0;
  for (double b : best) sum += b;
  return sum;
}

const PeakProbe* PeakProbeFor(Precision p, const KernelTable& kt, const QuantKernelTable& qt,
                              bool bf16_dot) {
  const bool zmm = kt.isa >= Isa::kAvx512;
  const char* fma = kt.isa == Isa::kScalar ? nullptr : zmm ? "fma512" : "fma256";
  const char* name = fma;
  if (p == Precision::kBF16 && bf16_dot) {
    name = kt.isa == Isa::kAmx && DetectCpu().amx_bf16 ? "amx_bf16" : "bf16dot512";
  } else if (p == Precision::kInt8 || p == Precision::kInt4) {
    static constexpr const char* kByTable[][2] = {{"amx", "amx_int8"},
                                                  {"avx512_vnni", "vnni512"},
                                                  {"avx_vnni", "vnni256"},
                                                  {"avx2", "maddubs256"}};
    name = nullptr;
    for (const auto& [table, probe] : kByTable) {
      if (std::strcmp(qt.name, table) == 0) name = probe;
    }
  }
  return name == nullptr ? nullptr : PeakProbeNamed(name);
}

}  // namespace encserve::kernels
