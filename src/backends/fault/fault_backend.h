// The fault backend (for tests): wraps another backend (`fault.inner`, default native) and
// injects failures: at load, every Nth batch, the first K batches, or a hang of M ms every Nth
// batch. The fallback tests run the real server on it (docs/backends.md, "Fallback").
#pragma once

#include <atomic>

#include "backends/registry.h"

namespace encserve::backends {

struct FaultOptions {
  std::string inner = "native";
  bool fail_load = false;
  int fail_every = 0;  // every Nth batch (counting from 1) fails; 0 = never
  int fail_first = 0;  // batches 1..K fail (a backend that recovers)
  int hang_every = 0;  // every Nth batch sleeps hang_ms before answering; 0 = never
  int hang_ms = 0;
  // `section` as ValidateSection accepted it; missing keys take the registry's defaults.
  static StatusOr<FaultOptions> FromSection(const Section& section);
};

BackendSpec FaultBackendSpec();

class FaultBackend final : public Backend {
 public:
  FaultBackend(std::unique_ptr<Backend> inner, FaultOptions options);
  const BackendInfo& info() const override { return info_; }
  StatusOr<Embeddings> Run(Task task, const TokenBatch& batch) const override;

 private:
  std::unique_ptr<Backend> inner_;
  FaultOptions options_;
  BackendInfo info_;
  mutable std::atomic<int64_t> count_{0};
};

}  // namespace encserve::backends
