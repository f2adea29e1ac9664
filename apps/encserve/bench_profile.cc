#include "bench_profile.h"

#include <cstdio>
#include <cstring>

#include "common.h"
#include "core/op_profile.h"
#include "kernels/kernels.h"
#include "kernels/peak.h"
#include "kernels/precision.h"
#include "kernels/quant.h"
#include "kernels/registry.h"

namespace encserve::app {
namespace {

const kernels::PeakProbe* Probe(const void* p) {
  return static_cast<const kernels::PeakProbe*>(p);
}

// The fp32 table of the registry entry with this name, among those this CPU supports (the
// quantised twin is kernels::QuantKernelsNamed).
const kernels::KernelTable* Fp32KernelsNamed(const std::string& name) {
  for (const kernels::KernelSet* s : kernels::AvailableKernelSets()) {
    if (name == s->name && s->fp32 != nullptr) return &s->fp32();
  }
  return nullptr;
}

// Whether the run's bf16 weights use the dot-product kernels (the native bf16_kernel option).
bool UsesBf16Dot(const Pipeline& pipeline, const kernels::KernelTable& kt) {
  const std::string k = BackendOption(pipeline, "native", "bf16_kernel");
  const bool dot = k == "dot";
  return kernels::UseBf16Dot(kt, k == "auto" ? nullptr : &dot);
}

}  // namespace

PeakMeter::PeakMeter(const Pipeline& pipeline, int threads) : threads_(threads) {
  const backends::BackendInfo& info = pipeline.backend().info();
  if (info.name != "native") {
    why_none_ = "the " + info.name + " backend's kernels are not ours to probe";
    return;
  }
  kernels::Precision p;
  const kernels::KernelTable* kt = Fp32KernelsNamed(info.fp32_kernels);
  if (!kernels::ParsePrecision(info.precision, &p) || kt == nullptr) {
    why_none_ = "unknown kernel set " + info.kernels();
    return;
  }
  // fp32 / bf16 / fp16 runs name no quantised table: any will do, PeakProbeFor ignores it.
  const kernels::QuantKernelTable* qt = kernels::QuantKernelsNamed(info.quant_kernels.c_str());
  probe_ = kernels::PeakProbeFor(p, *kt, qt != nullptr ? *qt : kernels::ScalarQuantKernels(),
                                 UsesBf16Dot(pipeline, *kt));
  if (probe_ == nullptr) why_none_ = "no peak probe for the " + info.kernels() + " kernels";
}

void PeakMeter::Measure() {
  if (probe_ != nullptr) samples_.push_back(kernels::MeasurePeak(*Probe(probe_), threads_));
}

void PeakMeter::Report(double model_flops_per_s, nlohmann::ordered_json* j) const {
  const double achieved = model_flops_per_s * 1e-9;
  if (probe_ == nullptr || samples_.empty()) {
    std::printf("efficiency: model %.1f GFLOP/s; no peak (%s)\n", achieved, why_none_.c_str());
    (*j)["model_gflops"] = achieved;
    return;
  }
  double sum = 0;
  for (double s : samples_) sum += s;
  const double peak = sum / samples_.size();
  std::printf(
      "efficiency: model %.1f G(FL)OP/s = %.1f%% of the %s peak (%.1f G/s on %d threads; "
      "before %.1f, after %.1f)\n",
      achieved, 100.0 * achieved / peak, Probe(probe_)->instruction, peak, threads_,
      samples_.front(), samples_.back());
  (*j)["model_gflops"] = achieved;
  (*j)["peak_probe"] = Probe(probe_)->name;
  (*j)["peak_gops"] = peak;
  (*j)["efficiency"] = achieved / peak;
}

void ReportOpProfile(double wall_ms, nlohmann::ordered_json* j) {
  const std::vector<profile::OpTotal> ops = profile::Snapshot();
  double total = 0;
  for (const auto& o : ops) total += o.ns;
  std::printf("op profile (self time summed over the threads that ran each op; wall %.1f ms):\n",
              wall_ms);
  std::printf("  %-26s %8s %10s %7s %10s\n", "op", "calls", "ms", "share", "GFLOP/s");
  nlohmann::ordered_json rows = nlohmann::ordered_json::array();
  for (const auto& o : ops) {
    const std::string name = profile::Name(o.key);
    const double gflops = o.flops > 0 && o.ns > 0 ? o.flops / o.ns : 0;
    std::printf("  %-26s %8ld %10.2f %6.1f%% ", name.c_str(), o.calls, o.ns * 1e-6,
                100.0 * o.ns / total);
    if (gflops > 0) {
      std::printf("%10.1f\n", gflops);
    } else {
      std::printf("%10s\n", "-");
    }
    rows.push_back({{"op", name},
                    {"calls", o.calls},
                    {"ms", o.ns * 1e-6},
                    {"share", o.ns / total},
                    {"gflops", gflops}});
  }
  (*j)["op_profile"] = rows;
}

}  // namespace encserve::app
