// The kernel-set registry (kernels/registry.h): its order, that each entry's tables are what it
// says, and that KernelsFor / QuantKernelsFor only ever return supported entries at or below the
// ISA asked for, reaching every supported entry that no later one at its level supersedes.
#include <gtest/gtest.h>

#include <cstring>
#include <string>

#include "kernels/kernels.h"
#include "kernels/quant.h"
#include "kernels/registry.h"

namespace encserve::kernels {
namespace {

constexpr Isa kAllIsas[] = {Isa::kScalar, Isa::kAvx2, Isa::kAvx512, Isa::kAmx};

TEST(KernelRegistry, EntriesAreOrderedAndNamedLikeTheirTables) {
  const auto reg = KernelRegistry();
  ASSERT_FALSE(reg.empty());
  EXPECT_EQ(reg.front().isa, Isa::kScalar);
  EXPECT_NE(reg.front().fp32, nullptr);
  EXPECT_NE(reg.front().quant, nullptr);
  for (size_t i = 0; i < reg.size(); ++i) {
    const KernelSet& s = reg[i];
    if (i > 0) {
      EXPECT_LE(reg[i - 1].isa, s.isa) << s.name;
    }
    EXPECT_TRUE(s.fp32 != nullptr || s.quant != nullptr) << s.name;
    if (!s.supported(DetectCpu())) continue;  // its tables may not even be constructible here
    if (s.fp32 != nullptr) {
      EXPECT_STREQ(s.fp32().name, s.name);
      EXPECT_EQ(s.fp32().isa, s.isa) << s.name;
    }
    if (s.quant != nullptr) {
      EXPECT_STREQ(s.quant().name, s.name);
    }
  }
}

// The entry `name` with a table of the kind `quant` selects, or nullptr.
const KernelSet* Entry(const char* name, bool quant, bool supported) {
  for (const KernelSet& s : KernelRegistry()) {
    if (std::strcmp(s.name, name) == 0 && (quant ? s.quant != nullptr : s.fp32 != nullptr) &&
        s.supported(DetectCpu()) == supported) {
      return &s;
    }
  }
  return nullptr;
}

TEST(KernelRegistry, LookupsReturnOnlySupportedEntriesAtOrBelowTheIsa) {
  for (Isa isa : kAllIsas) {
    const Isa capped = isa > BestSupportedIsa() ? BestSupportedIsa() : isa;
    const KernelTable* t = KernelsFor(isa);
    EXPECT_EQ(t == nullptr, isa > BestSupportedIsa()) << IsaName(isa);
    if (t != nullptr) {
      const KernelSet* s = Entry(t->name, false, true);
      ASSERT_NE(s, nullptr) << t->name;
      EXPECT_LE(s->isa, isa);
      EXPECT_EQ(t->isa, isa);  // every level up to the best has its own fp32 table
    }
    const KernelSet* q = Entry(QuantKernelsFor(isa).name, true, true);
    ASSERT_NE(q, nullptr) << QuantKernelsFor(isa).name;
    EXPECT_LE(q->isa, capped);
    const KernelSetNames names = KernelSetsFor(isa);
    EXPECT_STREQ(names.fp32, KernelsFor(capped)->name);
    EXPECT_STREQ(names.quant, QuantKernelsFor(isa).name);
  }
}

TEST(KernelRegistry, EverySupportedEntryNotSupersededAtItsLevelIsReachable) {
  const auto avail = AvailableKernelSets();
  ASSERT_FALSE(avail.empty());
  for (size_t i = 0; i < avail.size(); ++i) {
    const KernelSet& s = *avail[i];
    bool fp32_top = s.fp32 != nullptr, quant_top = s.quant != nullptr;
    for (size_t j = i + 1; j < avail.size(); ++j) {
      if (avail[j]->isa != s.isa) continue;
      fp32_top = fp32_top && avail[j]->fp32 == nullptr;
      quant_top = quant_top && avail[j]->quant == nullptr;
    }
    if (fp32_top) {
      EXPECT_EQ(KernelsFor(s.isa), &s.fp32()) << s.name;
    }
    if (quant_top) {
      EXPECT_EQ(&QuantKernelsFor(s.isa), &s.quant()) << s.name;
    }
    if (s.quant != nullptr) {
      EXPECT_EQ(QuantKernelsNamed(s.name), &s.quant()) << s.name;
    }
  }
  for (const KernelSet& s : KernelRegistry()) {
    if (!s.supported(DetectCpu()) && Entry(s.name, s.quant != nullptr, true) == nullptr) {
      EXPECT_EQ(QuantKernelsNamed(s.name), nullptr) << s.name << " is not supported here";
    }
  }
}

TEST(KernelRegistry, MatchesTheCpuFeatures) {
  const CpuFeatures& f = DetectCpu();
  EXPECT_EQ(KernelSetsFor(Isa::kScalar).fp32, std::string("scalar"));
  EXPECT_EQ(KernelSetsFor(Isa::kScalar).quant, std::string("scalar"));
  if (f.avx512) {
    EXPECT_STREQ(KernelSetsFor(Isa::kAvx512).fp32, "avx512");
  }
  if (!f.amx) {
    EXPECT_EQ(KernelsFor(Isa::kAmx), nullptr);
    EXPECT_EQ(QuantKernelsNamed("amx"), nullptr);
  }
  if (!f.avx512) {
    EXPECT_EQ(KernelsFor(Isa::kAvx512), nullptr);
  }
  if (!f.avx_vnni) {
    EXPECT_EQ(QuantKernelsNamed("avx_vnni"), nullptr);
  }
  if (!f.avx512_vnni) {
    EXPECT_EQ(QuantKernelsNamed("avx512_vnni"), nullptr);
  }
}

TEST(QuantDispatch, PicksTheBestTableAtOrBelowTheIsa) {
  const CpuFeatures& f = DetectCpu();
  EXPECT_STREQ(QuantKernelsFor(Isa::kScalar).name, "scalar");
  const char* want2 = f.avx_vnni ? "avx_vnni" : (f.avx2 ? "avx2" : "scalar");
  EXPECT_STREQ(QuantKernelsFor(Isa::kAvx2).name, want2);
  const char* want512 = f.avx512 && f.avx512_vnni ? "avx512_vnni" : want2;
  EXPECT_STREQ(QuantKernelsFor(Isa::kAvx512).name, want512);  // never amx (ENCSERVE_ISA=avx512)
  EXPECT_STREQ(QuantKernelsFor(Isa::kAmx).name, f.amx ? "amx" : want512);
  EXPECT_NE(QuantKernelsNamed("scalar"), nullptr);
}

// bf16 models use the dot-product kernels where they are the faster choice: always on AMX-BF16,
// on AVX512-BF16 without tiles only on AMD (Intel's vdpbf16ps peaks at half the FMA rate); a
// forced choice wins, and no table without gemm_bf16_dot is ever asked to use it.
TEST(Bf16Kernel, DotProductsWhereTheyAreFaster) {
  const CpuFeatures& f = DetectCpu();
  const bool yes = true, no = false;
  for (Isa isa : {Isa::kScalar, Isa::kAvx2, Isa::kAvx512, Isa::kAmx}) {
    const KernelTable* t = KernelsFor(isa);
    if (t == nullptr) continue;
    if (t->gemm_bf16_dot == nullptr) {
      EXPECT_FALSE(UseBf16Dot(*t)) << t->name;
      EXPECT_FALSE(UseBf16Dot(*t, &yes)) << t->name;
      continue;
    }
    const bool amx_tiles = t->isa == Isa::kAmx && f.amx_bf16;
    EXPECT_EQ(UseBf16Dot(*t), amx_tiles || f.amd) << t->name;
    EXPECT_TRUE(UseBf16Dot(*t, &yes)) << t->name;
    EXPECT_FALSE(UseBf16Dot(*t, &no)) << t->name;
  }
}

}  // namespace
}  // namespace encserve::kernels
