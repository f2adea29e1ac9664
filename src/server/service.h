// Service: the protocol-neutral API of the server. The gRPC and HTTP front ends translate
// their requests into these calls and the results (or Status) back into their wire formats;
// they hold no model logic. EngineService (engine_service.h) implements it on a real model
// through the dynamic batcher; tests can implement it with fakes.
//
// Threading: every method may be called from any thread. The asynchronous calls validate and
// tokenise on the caller's thread, queue the work and return at once; `done` runs exactly
// once, on a batcher worker thread (or on the caller's thread when the request fails
// validation or is rejected), and must not block.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "core/status.h"
#include "server/request_trace.h"

namespace encserve::server {

using Clock = std::chrono::steady_clock;

// A request's class for the batcher (batching_policy.h): interactive requests go before batch
// (bulk) ones. kDefault: the server's default (priority.default; interactive unless set).
enum class RequestPriority { kDefault, kInteractive, kBatch };
// "interactive" / "batch" (any case) as a class; nullopt for anything else.
std::optional<RequestPriority> ParseRequestPriority(std::string_view text);

// Per-request context shared by all front ends.
struct RequestContext {
  // Work still queued when the deadline passes is dropped and fails with kDeadlineExceeded.
  Clock::time_point deadline = Clock::time_point::max();
  // Set by the front end when the client goes away; queued work is then dropped (kCancelled).
  std::shared_ptr<std::atomic<bool>> cancelled = std::make_shared<std::atomic<bool>>(false);
  // The client (connection) the request came from: the batcher takes turns across clients so
  // that none holds the queue (batching_policy.h). 0: unknown.
  uint64_t client = 0;
  RequestPriority priority = RequestPriority::kDefault;  // HTTP field / header, gRPC field
  // Where the request's time went (request_trace.h): filled by the Service, when set, before
  // `done` runs.
  std::shared_ptr<RequestTiming> timing;
};

struct EmbedParams {
  std::vector<std::string> texts;
  std::optional<bool> normalize;  // default: the model's setting
  bool truncate = true;           // false: a text longer than max_input_length is an error
  bool truncate_left = false;     // truncation keeps the text's end (truncation_direction left)
  std::optional<int> dimensions;  // keep the first N dims (Matryoshka), re-normalised if normalize
};
struct EmbedResult {
  int rows = 0;
  int dim = 0;
  std::vector<float> data;  // row-major [rows, dim], rows in request order
  int64_t prompt_tokens = 0;
  std::string embedding_space;  // fingerprint of these vectors' space ("" unknown)
};

// Pair scores: cross-encoder logits (sigmoid unless raw_scores, for num_labels == 1; softmax
// probability of the last label for num_labels > 1) or, for a bi-encoder, the cosine
// similarity of the two texts' embeddings (raw_scores ignored).
struct ScoreParams {
  std::vector<std::pair<std::string, std::string>> pairs;
  bool raw_scores = false;
  bool truncate = true;
  bool truncate_left = false;
};
struct ScoreResult {
  std::vector<float> scores;  // in request order
  int64_t prompt_tokens = 0;
};

struct RerankParams {
  std::string query;
  std::vector<std::string> documents;
  std::optional<int> top_n;  // default: all documents
  bool return_documents = false;
  bool raw_scores = false;
  bool truncate = true;
  bool truncate_left = false;
};
struct RankedDocument {
  int index = 0;  // position in RerankParams::documents
  float score = 0;
  std::optional<std::string> document;  // set when return_documents
};
struct RerankResult {
  std::vector<RankedDocument> results;  // sorted by score, descending; ties by index
  int64_t prompt_tokens = 0;
};

// Cosine similarity of source_sentence to each sentence (TEI /similarity; bi-encoders only).
struct SimilarityParams {
  std::string source_sentence;
  std::vector<std::string> sentences;
  bool truncate = true;
  bool truncate_left = false;
};
struct SimilarityResult {
  std::vector<float> scores;
  int64_t prompt_tokens = 0;
};

struct TokenizeParams {
  std::vector<std::string> texts;
  bool add_special_tokens = true;
  bool truncate = false;  // true: cut to max_input_length
  bool truncate_left = false;
};
struct Token {
  int32_t id = 0;
  std::string text;  // vocabulary entry, e.g. "##ing"
  bool special = false;
};
struct TokenizeResult {
  std::vector<std::vector<Token>> tokens;  // one list per text
};

// One backend of the serving chain (backend + fallbacks), as /info reports it.
struct BackendStatus {
  std::string name;
  std::string role;  // "primary" | "fallback"
  bool loaded = false;
  bool in_service = false;  // loaded and not taken out after consecutive failures
  std::string load_error;
  std::string precision, fp32_kernels, quant_kernels, device, library;
  int64_t batches = 0, failures = 0;
};

struct ServiceInfo {
  std::string model_id;  // folder name, e.g. "all-MiniLM-L6-v2"
  std::string model_dir;
  std::string model_kind;  // "embedding" | "cross-encoder"
  // The backend serving now (the first in service of the chain) and what it computes with.
  std::string precision;      // "fp32" | "bf16" | "fp16" | "int8" | "int4"; "none" (null)
  std::string backend;        // registry name: "native", "null", ...
  std::string device;         // "cpu"
  std::string library;        // the serving backend's library and version
  std::string isa;            // kernel table for fp32/bf16/fp16 GEMMs and element-wise ops
  std::string quant_kernels;  // kernel table for int8/int4 GEMMs; "" when none is used
  std::vector<BackendStatus> backends;  // the chain, in order
  std::string version;                  // encserve version
  int embedding_dim = 0;                // hidden size (0 for cross-encoders)
  int num_labels = 0;                   // cross-encoders only
  int max_input_length = 0;             // tokens per text / pair, specials included
  int max_batch_size = 0;               // items per engine batch
  int max_batch_tokens = 0;             // tokens per engine batch
  int max_client_batch_size = 0;        // texts / pairs / documents per request
  int max_text_chars = 0;               // characters (bytes) per text
  bool batching = true;                 // dynamic batching on
  // The embedding space (pipeline/embedding_space.h): fingerprint "" when unknown (then
  // space_error says why); the fields hashed; precision and backend above, beside it.
  std::string fingerprint, space_error;
  std::string weights_sha256, tokenizer_sha256, pooling;
  bool normalize = false;
  int max_tokens = 0;
  // The start-up self-check (self_check.h): status passed | failed | skipped | off.
  std::string self_check_status = "off", self_check_reason, self_check_note, self_check_golden;
  int self_check_texts = 0;
  double self_check_min_cosine = 0, self_check_mean_cosine = 0, self_check_threshold = 0;
  double self_check_seconds = 0;
  bool self_check_refuse = true;
};

template <typename T>
using Done = std::function<void(StatusOr<T>)>;

class Service {
 public:
  virtual ~Service() = default;

  virtual void Embed(EmbedParams params, RequestContext ctx, Done<EmbedResult> done) = 0;
  virtual void Score(ScoreParams params, RequestContext ctx, Done<ScoreResult> done) = 0;
  virtual void Rerank(RerankParams params, RequestContext ctx, Done<RerankResult> done) = 0;
  virtual void Similarity(SimilarityParams params, RequestContext ctx,
                          Done<SimilarityResult> done) = 0;
  // Tokenisation only; synchronous (cheap, no model work).
  virtual StatusOr<TokenizeResult> Tokenize(const TokenizeParams& params) const = 0;

  virtual ServiceInfo Info() const = 0;
  // Model loaded, warmed up and past its self-check, and not shutting down.
  virtual bool Ready() const = 0;
  // Why Ready() is false, for /ready's reply and the gRPC UNAVAILABLE message.
  virtual std::string NotReadyReason() const { return "starting up or shutting down"; }
  // Overload check before a request's body is parsed: RESOURCE_EXHAUSTED when even a one-text
  // request of `client` would be refused by the queue now (then any request of it would be:
  // the estimate grows with the request), else OK; the refusal is counted like the others.
  // Front ends may skip it; the full check follows anyway.
  virtual Status AdmitAny(uint64_t client) const {
    (void)client;
    return Status::Ok();
  }

  // Front ends report every finished request here (route e.g. "http:/embed", "grpc:Embed";
  // code: the HTTP status, or for gRPC the matching HTTP status of the gRPC code).
  virtual void RecordRequest(std::string_view route, int http_code, double seconds) = 0;
  // Prometheus text exposition (format 0.0.4) of all metrics.
  virtual std::string MetricsText() const = 0;
  // The same metrics as JSON (metrics_json.h), for /stats and the dashboard.
  virtual std::string StatsJson() const = 0;
};

// HTTP status for a Status code from the service: 422 InvalidArgument (request parsed but
// invalid: empty input, empty text, invalid UTF-8), 401 Unauthenticated, 404 NotFound,
// 413 OutOfRange (too many texts, text too long with truncate=false), 422 FailedPrecondition
// (operation the model cannot do, e.g. /embed on a cross-encoder), 429 ResourceExhausted,
// 499 Cancelled, 503 Unavailable, 504 DeadlineExceeded, 500 otherwise. (Malformed JSON and
// wrong field types are the front end's own 400s.)
int HttpStatusFor(StatusCode code);

}  // namespace encserve::server
