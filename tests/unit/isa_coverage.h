// Makes the ISAs a kernel test binary could not exercise on this CPU visible: tests record each
// ISA they ran (IsaCoverage::Exercised) or had to skip (ENCSERVE_SKIP_ISA, which also calls
// GTEST_SKIP with the ISA and the reason), and a GoogleTest environment prints one line at the
// end of the run:
//   [ ISA ] exercised: scalar avx2 ...; not exercised on this CPU: amx (CPU lacks amx_int8)
#pragma once

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdio>
#include <map>
#include <string>
#include <vector>

#include "kernels/registry.h"

namespace encserve::testing {

class IsaCoverage : public ::testing::Environment {
 public:
  static void Exercised(const std::string& isa) { Seen()[isa].exercised = true; }
  static void Missing(const std::string& isa, const std::string& reason) {
    Seen()[isa].reason = reason;
  }
  // "CPU lacks <features>" for a registry entry (the first unsupported one with that name).
  static std::string LacksReason(const std::string& name) {
    const auto& f = kernels::DetectCpu();
    for (const kernels::KernelSet& s : kernels::KernelRegistry()) {
      if (name == s.name && !s.supported(f)) return std::string("CPU lacks ") + s.needs;
    }
    return "CPU lacks " + name;
  }

  void TearDown() override {
    std::string done, missing;
    for (const std::string& isa : Ordered()) {
      const Entry& e = Seen()[isa];
      if (e.exercised) {
        done += (done.empty() ? "" : " ") + isa;
      } else {
        missing += (missing.empty() ? "" : ", ") + isa + " (" + e.reason + ")";
      }
    }
    std::printf("[ ISA ] exercised: %s; not exercised on this CPU: %s\n",
                done.empty() ? "(none)" : done.c_str(),
                missing.empty() ? "(none)" : missing.c_str());
    std::fflush(stdout);
  }

 private:
  struct Entry {
    bool exercised = false;
    std::string reason;
  };
  static std::map<std::string, Entry>& Seen() {
    static std::map<std::string, Entry> seen;
    return seen;
  }
  // Registry order first, then any other names (e.g. amx_bf16) alphabetically.
  static std::vector<std::string> Ordered() {
    std::vector<std::string> out;
    for (const kernels::KernelSet& s : kernels::KernelRegistry()) {
      if (Seen().count(s.name) && std::find(out.begin(), out.end(), s.name) == out.end()) {
        out.push_back(s.name);
      }
    }
    for (const auto& [isa, e] : Seen()) {
      if (std::find(out.begin(), out.end(), isa) == out.end()) out.push_back(isa);
    }
    return out;
  }
};

inline ::testing::Environment* const kIsaCoverageEnvironment =
    ::testing::AddGlobalTestEnvironment(new IsaCoverage);

}  // namespace encserve::testing

// Records that `isa` is not exercised and skips the test with a message naming it.
#define ENCSERVE_SKIP_ISA(isa, reason)                                       \
  do {                                                                       \
    const std::string encserve_isa_ = (isa), encserve_why_ = (reason);       \
    ::encserve::testing::IsaCoverage::Missing(encserve_isa_, encserve_why_); \
    GTEST_SKIP() << encserve_isa_ << " not exercised: " << encserve_why_;    \
  } while (0)
