// Peak probes: the measured ceiling of the instruction each kernel set's GEMMs are built on
// (vfmadd231ps, vdpbf16ps, vpdpbusd, vpmaddubsw, AMX tdpbusd / tdpbf16ps), so that a GEMM or a
// whole model run can be reported as a share of what this CPU, at its current clock, can do.
// Each probe runs independent chains of one instruction on registers (kernels/peak_asm.h),
// well above its latency × issue width. Used by `encserve bench-engine` and the kernel benches.
#pragma once

#include <span>

#include "kernels/cpu_features.h"
#include "kernels/precision.h"

namespace encserve::kernels {

struct KernelTable;
struct QuantKernelTable;

struct PeakProbe {
  const char* name;         // "fma512", "fma256", "bf16dot512", "vnni512", "vnni256", ...
  const char* instruction;  // what the probe issues, for reports
  bool (*supported)(const CpuFeatures& f);
  double ops_per_iter;       // multiply-adds × 2 per loop trip (GFLOP/s or GOP/s)
  void (*loop)(long iters);  // runs `iters` trips on the calling thread
};

// Every probe, whatever the CPU.
std::span<const PeakProbe> PeakProbes();
// The probe with this name, or nullptr (also when the CPU lacks its instruction).
const PeakProbe* PeakProbeNamed(const char* name);

// CPU time of the calling thread, in seconds (what the probes are timed with).
double ThreadCpuSeconds();

// G ops/s of one short run (`iters` trips) on the calling thread, by its CPU time.
double RunPeakProbe(const PeakProbe& p, long iters);
// G ops/s of `threads` threads running the probe at the same time (all cores loaded, as in a
// model run): the sum over threads of each one's best of `reps` short runs.
double MeasurePeak(const PeakProbe& p, int threads, int reps = 30);

// The probe that bounds a model run's GEMMs: fp32 and fp16 (widened) → the fp32 table's FMA
// (zmm for avx512/amx tables, ymm for avx2); bf16 → vdpbf16ps or AMX-BF16 when the weights use
// the bf16 dot-product kernels, else FMA; int8 / int4 → the quantised table's instruction
// (amx → tdpbusd, avx512_vnni → vpdpbusd zmm, avx_vnni → vpdpbusd ymm, avx2 → vpmaddubsw).
// nullptr for the scalar tables.
const PeakProbe* PeakProbeFor(Precision p, const KernelTable& kt, const QuantKernelTable& qt,
                              bool bf16_dot);

}  // namespace encserve::kernels
