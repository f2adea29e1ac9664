// The null backend: zeros of the right shape, no model work. Measures the server and the load
// generator alone (client capacity); never for real answers. It reads only config.json.
#pragma once

#include "backends/registry.h"

namespace encserve::backends {

BackendSpec NullBackendSpec();

class NullBackend final : public Backend {
 public:
  static StatusOr<std::unique_ptr<NullBackend>> Load(const CommonOptions& common);
  const BackendInfo& info() const override { return info_; }
  StatusOr<Embeddings> Run(Task task, const TokenBatch& batch) const override;

 private:
  BackendInfo info_;
};

}  // namespace encserve::backends
