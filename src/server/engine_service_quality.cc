// EngineService's embedding space (fingerprint) and start-up self-check: see self_check.h and
// pipeline/embedding_space.h.
#include <cstdio>

#include "server/engine_service.h"

namespace encserve::server {

void EngineService::CheckQuality() {
  const ModelConfig& c = pipeline_->config();
  const std::string& dir = options_.pipeline.common.model_dir;
  if (c.kind == ModelKind::kEmbedding) {
    auto space = DescribeEmbeddingSpace(dir, c, c.bert.hidden_size, pipeline_->max_length());
    if (space.ok()) {
      space_ = std::move(space).value();
      default_fingerprint_ = Fingerprint(*space_);
    } else {
      space_error_ = space.status().message();
    }
  } else {
    space_error_ = "a cross-encoder gives scores, not vectors";
  }
  const ServiceInfo info = Info();
  const std::string& precision = info.precision;
  const std::string& model = info.model_id;
  if (space_) {
    self_check_ = RunSelfCheck(*pipeline_, options_.self_check, space_->weights_sha256, precision);
  } else if (options_.self_check.enabled) {
    self_check_.status = "skipped";
    self_check_.reason = "no embedding space: " + space_error_;
  }
  const SelfCheckResult& r = self_check_;
  if (r.status == "passed" || r.status == "failed") {
    metrics_->SetQuality(model, r.min_cosine, r.status == "passed");
    std::fprintf(stderr,
                 "[self-check] %s: %d texts of %s on %s, min cosine %.6f, mean %.6f "
                 "(threshold %.4g) in %.2f s%s%s\n",
                 r.status.c_str(), r.texts, r.golden.c_str(), precision.c_str(), r.min_cosine,
                 r.mean_cosine, r.threshold, r.seconds, r.reason.empty() ? "" : ": ",
                 r.reason.c_str());
    if (r.status == "failed") {
      std::fprintf(stderr, "[self-check] %s\n",
                   r.refuse ? "the server will NOT become ready (self_check.action: refuse)"
                            : "serving anyway (self_check.action: warn)");
    }
    if (!r.note.empty()) std::fprintf(stderr, "[self-check] note: %s\n", r.note.c_str());
  } else if (r.status == "skipped") {
    std::fprintf(stderr, "[self-check] skipped: %s\n", r.reason.c_str());
  }
}

std::string EngineService::FingerprintFor(int dims, bool normalize) const {
  if (!space_) return "";
  if (dims == space_->dimensions && normalize == space_->normalize) return default_fingerprint_;
  return Fingerprint(WithOutput(*space_, dims, normalize));
}

void EngineService::FillQualityInfo(ServiceInfo* i) const {
  if (space_) {
    i->fingerprint = default_fingerprint_;
    i->max_tokens = space_->max_tokens;
    i->weights_sha256 = space_->weights_sha256;
    i->tokenizer_sha256 = space_->tokenizer_sha256;
    i->pooling = space_->pooling;
    i->normalize = space_->normalize;
  }
  i->space_error = space_error_;
  const SelfCheckResult& r = self_check_;
  i->self_check_status = r.status;
  i->self_check_reason = r.reason;
  i->self_check_note = r.note;
  i->self_check_golden = r.golden;
  i->self_check_texts = r.texts;
  i->self_check_min_cosine = r.min_cosine;
  i->self_check_mean_cosine = r.mean_cosine;
  i->self_check_threshold = r.threshold;
  i->self_check_seconds = r.seconds;
  i->self_check_refuse = r.refuse;
}

std::string EngineService::NotReadyReason() const {
  if (self_check_.blocks_ready()) return "self-check failed: " + self_check_.reason;
  return "starting up or shutting down";
}

}  // namespace encserve::server
