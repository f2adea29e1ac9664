// EngineService: the Service (service.h) on a real model: validates and tokenises requests on
// the caller's thread, runs them through the dynamic batcher on the engine's replicas, and
// post-processes results (normalisation, Matryoshka dims, cosine, sigmoid/softmax, ranking).
#pragma once

#include <atomic>
#include <memory>
#include <string>

#include "engine/engine.h"
#include "scheduler/batcher.h"
#include "server/server_metrics.h"
#include "server/service.h"

namespace encserve::server {

struct Limits {
  int max_client_batch_size = 1024;  // texts / pairs / documents per request
  int max_text_chars = 100000;       // bytes per text
};

struct EngineServiceOptions {
  EngineOptions engine;  // engine.replicas also sets the number of batcher workers
  scheduler::BatcherOptions batcher;
  Limits limits;
  bool warmup = true;  // one batch at the max length per replica before Ready()
  // "encserve" (the model) or "null" (zeros of the right shape, no model work: measures the
  // server and the load generator alone).
  std::string backend = "encserve";
};

class EngineService final : public Service {
 public:
  static StatusOr<std::unique_ptr<EngineService>> Create(const EngineServiceOptions& options);
  ~EngineService() override;

  void Embed(EmbedParams params, RequestContext ctx, Done<EmbedResult> done) override;
  void Score(ScoreParams params, RequestContext ctx, Done<ScoreResult> done) override;
  void Rerank(RerankParams params, RequestContext ctx, Done<RerankResult> done) override;
  void Similarity(SimilarityParams params, RequestContext ctx,
                  Done<SimilarityResult> done) override;
  StatusOr<TokenizeResult> Tokenize(const TokenizeParams& params) const override;
  ServiceInfo Info() const override;
  bool Ready() const override;
  void RecordRequest(std::string_view route, int http_code, double seconds) override;
  std::string MetricsText() const override;

  // Readiness turns false (first step of a graceful shutdown); the batcher keeps running.
  void SetNotReady() { ready_.store(false); }
  // Stops admitting work, finishes queued work until `deadline`, joins the batcher.
  void Shutdown(scheduler::Clock::time_point deadline);

  const Engine& engine() const { return *engine_; }
  ServerMetrics& metrics() { return *metrics_; }

 private:
  EngineService() = default;
  Status Warmup();
  // Tokenises texts (or pairs when `second` is set) with the request limits.
  StatusOr<std::vector<Encoding>> EncodeTexts(const std::vector<std::string>& texts,
                                              bool truncate) const;
  StatusOr<std::vector<Encoding>> EncodePairs(
      const std::vector<std::pair<std::string, std::string>>& pairs, bool truncate) const;
  Status CheckTexts(size_t count, const char* what) const;
  // Queues encodings; `done` gets the raw rows (embeddings before normalisation or logits).
  void Run(scheduler::Task task, std::vector<Encoding> inputs, const RequestContext& ctx,
           std::function<void(StatusOr<Embeddings>)> done);
  // Embeds `texts` (normalised) and calls done with the rows.
  void EmbedNormalized(const std::vector<std::string>& texts, bool truncate,
                       const RequestContext& ctx,
                       std::function<void(StatusOr<Embeddings>, int64_t tokens)> done);
  float PairScore(const float* logits, bool raw) const;

  EngineServiceOptions options_;
  std::unique_ptr<Engine> engine_;
  std::unique_ptr<ServerMetrics> metrics_;
  std::unique_ptr<scheduler::Batcher> batcher_;
  std::atomic<bool> ready_{false};
};

}  // namespace encserve::server
