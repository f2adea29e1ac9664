// ServerMetrics: the server's Prometheus metrics (names prefixed `encserve_`, documented in
// docs/server.md), fed by the front ends (requests), the service (tokenisation) and the
// batcher (queue, batches, inference), plus process RSS and CPU.
#pragma once

#include <memory>
#include <string>
#include <string_view>

#include "backends/fallback.h"
#include "scheduler/batcher.h"

namespace encserve::server {

class ServerMetrics {
 public:
  ServerMetrics();
  ~ServerMetrics();

  void RecordRequest(std::string_view route, int http_code, double seconds);
  void ObserveTokenize(double seconds);
  // A request refused for overload (queue budget or queue bound), before its texts were
  // tokenised (the cheap path) or after (the estimate from the texts' tokens said no).
  void CountRefusal(bool after_tokenize);
  // The start-up self-check's result (server/self_check.h) for `model`.
  void SetQuality(const std::string& model, double min_cosine, bool passed);
  // Hooks for the batcher (batch size/tokens/padding ratio, queue time, inference time,
  // dropped items, items/s).
  scheduler::BatcherObserver BatcherHooks();
  // Queue depth and in-flight gauges read this batcher at scrape time (may be null).
  void AttachBatcher(const scheduler::Batcher* batcher);
  // Hooks for the backend chain: batches, failures and fallbacks by backend (and a log line
  // on stderr for each load failure, out-of-service and recovery).
  backends::FallbackObserver BackendHooks();
  // Per-backend gauges (in service; what it computes with) read this chain at scrape time.
  // The first non-null chain registers them; null detaches.
  void AttachBackends(const backends::FallbackChain* chain);

  std::string Text() const;
  std::string Json() const;  // metrics_json.h

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace encserve::server
