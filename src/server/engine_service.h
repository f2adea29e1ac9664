// EngineService: the Service (service.h) on a model: validates and tokenises requests on the
// caller's thread (Pipeline::EncodeTexts, shared with the library API), runs them through the
// dynamic batcher on the backend chain (backend + fallbacks), and post-processes results with
// the library's functions (pipeline/postprocess.h: normalisation, Matryoshka dims, cosine,
// sigmoid/softmax, ranking).
#pragma once

#include <atomic>
#include <memory>
#include <optional>
#include <string>

#include "pipeline/embedding_space.h"
#include "pipeline/pipeline.h"
#include "scheduler/batcher.h"
#include "server/self_check.h"
#include "server/server_metrics.h"
#include "server/service.h"

namespace encserve::server {

struct Limits {
  int max_client_batch_size = 1024;  // texts / pairs / documents per request
  int max_text_chars = 100000;       // bytes per text
  int max_tokenize_tokens = 131072;  // tokens in one /tokenize reply (about 5 MB of JSON)
};

struct EngineServiceOptions {
  // Backend, fallbacks, model folder, precision, threads, replicas (= batcher workers), and
  // each backend's own section. Its batch limits are unused: the batcher's policy decides.
  PipelineOptions pipeline;
  scheduler::BatcherOptions batcher;
  Limits limits;
  bool warmup = true;  // one batch at the max length per replica of every backend before Ready()
  SelfCheckOptions self_check;  // after the warm-up, before Ready() (self_check.h)
  // The class of requests that name none (priority.default).
  scheduler::Priority default_priority = scheduler::Priority::kInteractive;
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
  std::string NotReadyReason() const override;
  Status AdmitAny(uint64_t client) const override;
  void RecordRequest(std::string_view route, int http_code, double seconds) override;
  std::string MetricsText() const override;
  std::string StatsJson() const override;

  // Readiness turns false (first step of a graceful shutdown); the batcher keeps running.
  void SetNotReady() { ready_.store(false); }
  // Stops admitting work, finishes queued work until `deadline`, joins the batcher.
  void Shutdown(scheduler::Clock::time_point deadline);

  const Pipeline& pipeline() const { return *pipeline_; }
  ServerMetrics& metrics() { return *metrics_; }

 private:
  EngineService() = default;
  Status Warmup();
  Status WarmupBackend(const backends::Backend& backend) const;
  // The embedding space (fingerprint) and the self-check (engine_service_quality.cc).
  void CheckQuality();
  // The fingerprint of vectors with `dims` dimensions, normalised or not ("" when unknown).
  std::string FingerprintFor(int dims, bool normalize) const;
  void FillQualityInfo(ServiceInfo* info) const;
  // Tokenises texts (or pairs) with the request limits (the pipeline's checks); the time
  // taken goes to the metrics and ctx.timing.
  // `cut`: truncate on or off, and which end it drops.
  scheduler::Priority PriorityOf(const RequestContext& ctx) const;
  struct Cut {
    bool truncate = true;
    bool left = false;
  };
  InputLimits LimitsFor(Cut cut) const;
  StatusOr<std::vector<Encoding>> EncodeTexts(const std::vector<std::string>& texts, Cut cut,
                                              const RequestContext& ctx) const;
  StatusOr<std::vector<Encoding>> EncodePairs(const std::vector<TextPair>& pairs, Cut cut,
                                              const RequestContext& ctx) const;
  // Count limits, readiness and the queue-time budget (before tokenising).
  Status CheckTexts(size_t count, const char* what, const RequestContext& ctx) const;
  // Queues encodings; `done` gets the raw rows (embeddings before normalisation or logits).
  void Run(scheduler::Task task, std::vector<Encoding> inputs, const RequestContext& ctx,
           std::function<void(StatusOr<Embeddings>)> done);
  // Embeds `texts` (normalised) and calls done with the rows.
  void EmbedNormalized(const std::vector<std::string>& texts, Cut cut, const RequestContext& ctx,
                       std::function<void(StatusOr<Embeddings>, int64_t tokens)> done);

  EngineServiceOptions options_;
  std::unique_ptr<ServerMetrics> metrics_;
  std::unique_ptr<Pipeline> pipeline_;
  std::unique_ptr<scheduler::Batcher> batcher_;
  std::atomic<bool> ready_{false};
  std::optional<EmbeddingSpace> space_;  // set once in Create (embedding models)
  std::string space_error_;              // why space_ is unset
  std::string default_fingerprint_;      // of the model's own dims and normalisation
  SelfCheckResult self_check_;           // set once in Create
};

}  // namespace encserve::server
