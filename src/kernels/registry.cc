// The kernel-set registry and the lookups built on it (KernelsFor, QuantKernelsFor).
#include "kernels/registry.h"

#include <cstring>

#include "kernels/kernels.h"
#include "kernels/quant.h"

namespace encserve::kernels {
namespace {

bool Always(const CpuFeatures&) {
  return true;
}
bool HasAvx2(const CpuFeatures& f) {
  return f.avx2;
}
bool HasAvxVnni(const CpuFeatures& f) {
  return f.avx2 && f.avx_vnni;
}
bool HasAvx512(const CpuFeatures& f) {
  return f.avx512;
}
bool HasAvx512Vnni(const CpuFeatures& f) {
  return f.avx512 && f.avx512_vnni;
}
bool HasAmx(const CpuFeatures& f) {
  return f.amx;
}
// The amx quantised set also runs the avx512_vnni int4 kernel and row quantiser.
bool HasAmxAndVnni(const CpuFeatures& f) {
  return f.avx512 && f.avx512_vnni && f.amx;
}

// Ascending ISA level; within a level, the preferred entry last. The fp32 and the quantised AMX
// sets need different features (the fp32 one is the avx512 table plus AMX-BF16 where present),
// hence two "amx" entries.
constexpr KernelSet kRegistry[] = {
    {Isa::kScalar, "scalar", "nothing", Always, ScalarKernels, ScalarQuantKernels},
    {Isa::kAvx2, "avx2", "avx2+fma+f16c", HasAvx2, Avx2Kernels, Avx2QuantKernels},
    {Isa::kAvx2, "avx_vnni", "avx_vnni", HasAvxVnni, nullptr, AvxVnniQuantKernels},
    {Isa::kAvx512, "avx512", "avx512f+bw+vl+dq", HasAvx512, Avx512Kernels, nullptr},
    {Isa::kAvx512, "avx512_vnni", "avx512_vnni", HasAvx512Vnni, nullptr, Avx512VnniQuantKernels},
    {Isa::kAmx, "amx", "amx_int8", HasAmx, AmxKernels, nullptr},
    {Isa::kAmx, "amx", "amx_int8+avx512_vnni", HasAmxAndVnni, nullptr, AmxQuantKernels},
};

// The best supported entry at or below `isa` for which has(entry) holds.
template <typename Has>
const KernelSet* Best(Isa isa, Has has) {
  const CpuFeatures& f = DetectCpu();
  for (auto it = std::rbegin(kRegistry); it != std::rend(kRegistry); ++it) {
    if (it->isa <= isa && has(*it) && it->supported(f)) return &*it;
  }
  return nullptr;
}

}  // namespace

std::span<const KernelSet> KernelRegistry() {
  return kRegistry;
}

std::vector<const KernelSet*> AvailableKernelSets() {
  std::vector<const KernelSet*> out;
  for (const KernelSet& s : kRegistry) {
    if (s.supported(DetectCpu())) out.push_back(&s);
  }
  return out;
}

const QuantKernelTable* QuantKernelsNamed(const char* name) {
  for (const KernelSet* s : AvailableKernelSets()) {
    if (s->quant != nullptr && std::strcmp(s->name, name) == 0) return &s->quant();
  }
  return nullptr;
}

const KernelTable* KernelsFor(Isa isa) {
  if (isa > BestSupportedIsa()) return nullptr;
  const KernelSet* s = Best(isa, [](const KernelSet& e) { return e.fp32 != nullptr; });
  return s != nullptr ? &s->fp32() : nullptr;
}

const KernelTable& Kernels() {
  static const KernelTable* table = KernelsFor(ActiveIsa());
  return *table;
}

const QuantKernelTable& QuantKernelsFor(Isa isa) {
  if (isa > BestSupportedIsa()) isa = BestSupportedIsa();
  const KernelSet* s = Best(isa, [](const KernelSet& e) { return e.quant != nullptr; });
  return s != nullptr ? s->quant() : ScalarQuantKernels();
}

const QuantKernelTable& QuantKernels() {
  static const QuantKernelTable& table = QuantKernelsFor(ActiveIsa());
  return table;
}

KernelSetNames KernelSetsFor(Isa isa) {
  if (isa > BestSupportedIsa()) isa = BestSupportedIsa();
  return {KernelsFor(isa)->name, QuantKernelsFor(isa).name};
}

}  // namespace encserve::kernels
