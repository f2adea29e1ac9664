// The kernel-set registry: every fp32 (KernelTable) and quantised (QuantKernelTable) kernel set,
// in one ordered list with the ISA level it belongs to and the CPU features it needs.
// KernelsFor(isa) and QuantKernelsFor(isa) both pick the last (best) entry at or below `isa`
// that has such a table and whose features the CPU has. Adding a kernel set is one line in
// kRegistry (kernels/registry.cc).
#pragma once

#include <span>
#include <vector>

#include "kernels/cpu_features.h"

namespace encserve::kernels {

struct KernelTable;
struct QuantKernelTable;

struct KernelSet {
  Isa isa;                                  // the ENCSERVE_ISA level that may use it
  const char* name;                         // == the name of its table(s)
  const char* needs;                        // the features `supported` checks, for reports
  bool (*supported)(const CpuFeatures& f);  // the CPU (and OS) can run it
  const KernelTable& (*fp32)();             // nullptr: no fp32 table in this set
  const QuantKernelTable& (*quant)();       // nullptr: no quantised table in this set
};

// Every entry, whatever the CPU: ascending ISA level, and within a level the preferred last.
std::span<const KernelSet> KernelRegistry();
// The entries this CPU supports, in registry order.
std::vector<const KernelSet*> AvailableKernelSets();
// The quantised table of the supported entry with this name, or nullptr (tests, benchmarks).
const QuantKernelTable* QuantKernelsNamed(const char* name);

// For reports (/info, `encserve info`): the names of the fp32 and quantised tables `isa`
// resolves to, with `isa` lowered to BestSupportedIsa() first.
struct KernelSetNames {
  const char* fp32;
  const char* quant;
};
KernelSetNames KernelSetsFor(Isa isa);

}  // namespace encserve::kernels
