#include "server/engine_service.h"

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <string_view>
#include <thread>

namespace encserve::server {
namespace {

double Seconds(scheduler::Clock::time_point since) {
  return std::chrono::duration<double>(scheduler::Clock::now() - since).count();
}

int64_t CountTokens(const std::vector<Encoding>& enc) {
  int64_t n = 0;
  for (const Encoding& e : enc) n += static_cast<int64_t>(e.ids.size());
  return n;
}

// The queue and inference times of a request whose work is done (now).
void RecordTimes(const scheduler::BatchRequest& r, RequestTiming* t) {
  const int64_t first = r.first_batch_ticks.load(std::memory_order_relaxed);
  if (first == 0) return;  // never ran (dropped or refused in the queue)
  const scheduler::Clock::time_point start{scheduler::Clock::duration(first)};
  t->queue_s = std::chrono::duration<double>(start - r.enqueued).count();
  t->infer_s = Seconds(start);
}

}  // namespace

StatusOr<std::unique_ptr<EngineService>> EngineService::Create(
    const EngineServiceOptions& options) {
  std::unique_ptr<EngineService> s(new EngineService());
  s->options_ = options;
  if (options.limits.max_client_batch_size < 1 || options.limits.max_text_chars < 1) {
    return InvalidArgument("max_client_batch_size and max_text_chars must be positive");
  }
  s->metrics_ = std::make_unique<ServerMetrics>();
  ASSIGN_OR_RETURN(s->pipeline_, Pipeline::Load(options.pipeline, s->metrics_->BackendHooks()));
  s->metrics_->AttachBackends(&s->pipeline_->backend());
  scheduler::BatcherOptions b = options.batcher;
  b.workers = options.pipeline.common.replicas;
  s->batcher_ =
      std::make_unique<scheduler::Batcher>(s->pipeline_->backend(), b, s->metrics_->BatcherHooks());
  s->metrics_->AttachBatcher(s->batcher_.get());
  if (options.warmup) RETURN_IF_ERROR(s->Warmup());
  s->CheckQuality();
  s->ready_.store(true);
  return s;
}

EngineService::~EngineService() {
  if (metrics_) {
    metrics_->AttachBatcher(nullptr);
    metrics_->AttachBackends(nullptr);
  }
  if (batcher_) batcher_->Shutdown(scheduler::Clock::now());
}

Status EngineService::WarmupBackend(const backends::Backend& backend) const {
  // One batch at the max length on every replica (allocates the workspaces, faults the weights).
  const int len = pipeline_->max_length();
  const auto& policy = options_.batcher.policy;
  const int seqs = std::max(1, std::min(policy.max_batch_size, policy.max_batch_tokens / len));
  const Tokenizer& tok = pipeline_->tokenizer();
  TokenBatch batch;
  std::vector<int32_t> ids(len, tok.unk_id()), types(len, 0);
  ids.front() = tok.cls_id();
  ids.back() = tok.sep_id();
  for (int i = 0; i < seqs; ++i) batch.Add(ids, types);
  const backends::Task task = pipeline_->config().kind == ModelKind::kCrossEncoder
                                  ? backends::Task::kLogits
                                  : backends::Task::kEmbed;
  const int replicas = backend.info().max_concurrent_batches;
  std::vector<Status> results(replicas);
  std::vector<std::thread> threads;
  for (int r = 0; r < replicas; ++r) {
    threads.emplace_back([&, r] { results[r] = backend.Run(task, batch).status(); });
  }
  for (auto& t : threads) t.join();
  for (const Status& st : results) RETURN_IF_ERROR(st);
  return Status::Ok();
}

Status EngineService::Warmup() {
  // Every loaded backend of the chain. A failure is fatal only without a fallback: with one,
  // the chain fails over at run time (and counts it).
  const bool chain = !options_.pipeline.fallback.empty();
  return pipeline_->backend().ForEachLoaded([&](const backends::Backend& b) -> Status {
    Status st = WarmupBackend(b);
    if (!st.ok() && chain) {
      std::fprintf(stderr, "[backend] warm-up of %s failed: %s\n", b.info().name.c_str(),
                   st.ToString().c_str());
      return Status::Ok();
    }
    return st;
  });
}

Status EngineService::CheckTexts(size_t count, const char* what, const RequestContext& ctx) const {
  if (count == 0) return InvalidArgument(std::string("no ") + what + " given (empty input)");
  if (count > static_cast<size_t>(options_.limits.max_client_batch_size)) {
    return OutOfRange(std::to_string(count) + " " + what + " in one request; the limit is " +
                      std::to_string(options_.limits.max_client_batch_size));
  }
  // Overload is refused here, before the texts are tokenised (cheap refusals).
  if (!Ready()) return Unavailable("the model is not ready (" + NotReadyReason() + ")");
  Status st = batcher_->Admit(ctx.client, static_cast<int>(std::min<size_t>(count, 1 << 20)),
                              PriorityOf(ctx));
  if (st.code() == StatusCode::kResourceExhausted) metrics_->CountRefusal(false);
  return st;
}

Status EngineService::AdmitAny(uint64_t client) const {
  if (!Ready()) return Status::Ok();  // (the full check answers UNAVAILABLE)
  // (As interactive: the class that counts the least work ahead, so that no request the full
  // check would admit is refused here.)
  Status st = batcher_->Admit(client, 1, scheduler::Priority::kInteractive);
  if (st.code() != StatusCode::kResourceExhausted) return Status::Ok();
  metrics_->CountRefusal(false);
  return st;
}

scheduler::Priority EngineService::PriorityOf(const RequestContext& ctx) const {
  switch (ctx.priority) {
    case RequestPriority::kInteractive:
      return scheduler::Priority::kInteractive;
    case RequestPriority::kBatch:
      return scheduler::Priority::kBatch;
    case RequestPriority::kDefault:
      break;
  }
  return options_.default_priority;
}

InputLimits EngineService::LimitsFor(Cut cut) const {
  return InputLimits{static_cast<size_t>(options_.limits.max_text_chars), cut.truncate,
                     cut.left ? TruncationSide::kLeft : TruncationSide::kRight};
}

StatusOr<std::vector<Encoding>> EngineService::EncodeTexts(const std::vector<std::string>& texts,
                                                           Cut cut,
                                                           const RequestContext& ctx) const {
  const auto t0 = scheduler::Clock::now();
  auto out = pipeline_->EncodeTexts(texts, LimitsFor(cut));
  const double seconds = Seconds(t0);
  metrics_->ObserveTokenize(seconds);
  if (ctx.timing) ctx.timing->tokenize_s += seconds;
  return out;
}

StatusOr<std::vector<Encoding>> EngineService::EncodePairs(const std::vector<TextPair>& pairs,
                                                           Cut cut,
                                                           const RequestContext& ctx) const {
  const auto t0 = scheduler::Clock::now();
  auto out = pipeline_->EncodePairs(pairs, LimitsFor(cut));
  const double seconds = Seconds(t0);
  metrics_->ObserveTokenize(seconds);
  if (ctx.timing) ctx.timing->tokenize_s += seconds;
  return out;
}

void EngineService::Run(scheduler::Task task, std::vector<Encoding> inputs,
                        const RequestContext& ctx, std::function<void(StatusOr<Embeddings>)> done) {
  if (!ready_.load()) {
    done(Unavailable("the model is not ready (starting up or shutting down)"));
    return;
  }
  auto req = std::make_shared<scheduler::BatchRequest>();
  req->task = task;
  req->inputs = std::move(inputs);
  req->deadline = ctx.deadline;
  req->cancelled = ctx.cancelled;
  req->client = ctx.client;
  req->priority = PriorityOf(ctx);
  const scheduler::Clock::time_point deadline = ctx.deadline;
  std::shared_ptr<RequestTiming> timing = ctx.timing;
  if (timing) {
    timing->items = static_cast<int64_t>(req->inputs.size());
    timing->tokens = CountTokens(req->inputs);
  }
  // (on_done may hold the request: a weak reference, no cycle.)
  std::weak_ptr<scheduler::BatchRequest> weak = req;
  req->on_done = [done, deadline, timing, weak](const Status& st, const Embeddings& out) {
    if (auto r = weak.lock(); timing && r) RecordTimes(*r, timing.get());
    if (!st.ok()) {
      done(st);
    } else if (scheduler::Clock::now() > deadline) {
      // Computed, but too late: the client has given up (gRPC answers this itself).
      done(DeadlineExceeded("the request finished after its deadline"));
    } else {
      done(out);
    }
  };
  Status st = batcher_->Submit(req);
  if (st.code() == StatusCode::kResourceExhausted) metrics_->CountRefusal(true);
  if (!st.ok()) done(st);
}

void EngineService::Embed(EmbedParams params, RequestContext ctx, Done<EmbedResult> done) {
  if (pipeline_->config().kind != ModelKind::kEmbedding) {
    return done(FailedPrecondition("this model is a cross-encoder: use Score or Rerank"));
  }
  if (Status st = CheckTexts(params.texts.size(), "texts", ctx); !st.ok()) return done(st);
  const int dim = pipeline_->backend().info().hidden_size;
  const int out_dim = params.dimensions.value_or(dim);
  if (out_dim < 1 || out_dim > dim) {
    return done(InvalidArgument("dimensions must be in 1.." + std::to_string(dim)));
  }
  auto enc = EncodeTexts(params.texts, {params.truncate, params.truncate_left}, ctx);
  if (!enc.ok()) return done(enc.status());
  const int64_t tokens = CountTokens(*enc);
  const bool normalize = params.normalize.value_or(pipeline_->config().normalize);
  std::string space = FingerprintFor(out_dim, normalize);
  Run(scheduler::Task::kEmbed, std::move(enc).value(), ctx,
      [done, out_dim, normalize, tokens, space = std::move(space)](StatusOr<Embeddings> rows) {
        if (!rows.ok()) return done(rows.status());
        Embeddings e = FinishEmbeddings(*rows, out_dim, normalize);
        done(EmbedResult{e.rows, e.dim, std::move(e.data), tokens, space});
      });
}

void EngineService::EmbedNormalized(
    const std::vector<std::string>& texts, Cut cut, const RequestContext& ctx,
    std::function<void(StatusOr<Embeddings>, int64_t tokens)> done) {
  auto enc = EncodeTexts(texts, cut, ctx);
  if (!enc.ok()) return done(enc.status(), 0);
  const int64_t tokens = CountTokens(*enc);
  Run(scheduler::Task::kEmbed, std::move(enc).value(), ctx,
      [done, tokens](StatusOr<Embeddings> rows) {
        if (rows.ok()) NormalizeRows(&*rows);
        done(std::move(rows), tokens);
      });
}

namespace {
ScoreActivation Activation(bool raw_scores) {
  return raw_scores ? ScoreActivation::kRaw : ScoreActivation::kActivate;
}
RerankResult Rank(const std::vector<float>& scores, const RerankParams& p, int64_t tokens) {
  RerankResult r;
  r.prompt_tokens = tokens;
  for (int i : RankByScore(scores, p.top_n)) {
    RankedDocument d{i, scores[i], std::nullopt};
    if (p.return_documents) d.document = p.documents[i];
    r.results.push_back(std::move(d));
  }
  return r;
}
}  // namespace

void EngineService::Score(ScoreParams params, RequestContext ctx, Done<ScoreResult> done) {
  if (Status st = CheckTexts(params.pairs.size(), "pairs", ctx); !st.ok()) return done(st);
  if (pipeline_->config().kind == ModelKind::kCrossEncoder) {
    auto enc = EncodePairs(params.pairs, {params.truncate, params.truncate_left}, ctx);
    if (!enc.ok()) return done(enc.status());
    const int64_t tokens = CountTokens(*enc);
    const ScoreActivation activation = Activation(params.raw_scores);
    Run(scheduler::Task::kLogits, std::move(enc).value(), ctx,
        [done, tokens, activation](StatusOr<Embeddings> logits) {
          if (!logits.ok()) return done(logits.status());
          done(ScoreResult{PairScores(*logits, activation), tokens});
        });
    return;
  }
  // Bi-encoder: cosine of the two embeddings; each distinct text is embedded once.
  PairTexts dedup = DedupePairTexts(params.pairs);
  auto rows = std::make_shared<std::vector<std::pair<int, int>>>(std::move(dedup.rows));
  EmbedNormalized(dedup.texts, {params.truncate, params.truncate_left}, ctx,
                  [done, rows](StatusOr<Embeddings> emb, int64_t tokens) {
                    if (!emb.ok()) return done(emb.status());
                    done(ScoreResult{CosineScores(*emb, *rows), tokens});
                  });
}

void EngineService::Rerank(RerankParams params, RequestContext ctx, Done<RerankResult> done) {
  if (Status st = CheckTexts(params.documents.size(), "documents", ctx); !st.ok()) return done(st);
  if (params.query.empty()) return done(InvalidArgument("query is empty"));
  if (params.top_n && *params.top_n < 1) return done(InvalidArgument("top_n must be positive"));
  auto p = std::make_shared<RerankParams>(std::move(params));
  if (pipeline_->config().kind == ModelKind::kCrossEncoder) {
    std::vector<TextPair> pairs;
    pairs.reserve(p->documents.size());
    for (const std::string& d : p->documents) pairs.emplace_back(p->query, d);
    auto enc = EncodePairs(pairs, {p->truncate, p->truncate_left}, ctx);
    if (!enc.ok()) return done(enc.status());
    const int64_t tokens = CountTokens(*enc);
    Run(scheduler::Task::kLogits, std::move(enc).value(), ctx,
        [done, p, tokens](StatusOr<Embeddings> logits) {
          if (!logits.ok()) return done(logits.status());
          done(Rank(PairScores(*logits, Activation(p->raw_scores)), *p, tokens));
        });
    return;
  }
  std::vector<std::string> texts{p->query};
  texts.insert(texts.end(), p->documents.begin(), p->documents.end());
  EmbedNormalized(texts, {p->truncate, p->truncate_left}, ctx,
                  [done, p](StatusOr<Embeddings> emb, int64_t tokens) {
                    if (!emb.ok()) return done(emb.status());
                    done(Rank(CosineToFirst(*emb), *p, tokens));
                  });
}

void EngineService::Similarity(SimilarityParams params, RequestContext ctx,
                               Done<SimilarityResult> done) {
  if (pipeline_->config().kind != ModelKind::kEmbedding) {
    return done(FailedPrecondition("similarity needs an embedding model; this is a cross-encoder"));
  }
  if (Status st = CheckTexts(params.sentences.size(), "sentences", ctx); !st.ok()) return done(st);
  std::vector<std::string> texts{params.source_sentence};
  texts.insert(texts.end(), params.sentences.begin(), params.sentences.end());
  EmbedNormalized(texts, {params.truncate, params.truncate_left}, ctx,
                  [done](StatusOr<Embeddings> emb, int64_t tokens) {
                    if (!emb.ok()) return done(emb.status());
                    done(SimilarityResult{CosineToFirst(*emb), tokens});
                  });
}

StatusOr<TokenizeResult> EngineService::Tokenize(const TokenizeParams& params) const {
  if (params.texts.empty()) return InvalidArgument("no texts given (empty input)");
  if (params.texts.size() > static_cast<size_t>(options_.limits.max_client_batch_size)) {
    return OutOfRange(std::to_string(params.texts.size()) + " texts in one request; the limit is " +
                      std::to_string(options_.limits.max_client_batch_size));
  }
  // The reply is about 40 bytes per token: bound it (a 4 MB body would otherwise become an
  // 80 MB reply held in memory until the client reads it).
  const size_t max_tokens = static_cast<size_t>(options_.limits.max_tokenize_tokens);
  size_t total = 0;
  const Tokenizer& tok = pipeline_->tokenizer();
  TokenizeResult r;
  // Without truncation, tokenise up to the position limit so overlong texts are reported whole.
  const size_t max_len = params.truncate ? pipeline_->max_length() : 1u << 20;
  const InputLimits limits = LimitsFor({params.truncate, params.truncate_left});
  for (size_t i = 0; i < params.texts.size(); ++i) {
    RETURN_IF_ERROR(CheckText(params.texts[i], i, limits));
    auto e = tok.Encode(params.texts[i], max_len, limits.side);
    if (!e.ok()) return InvalidArgument("text " + std::to_string(i) + ": " + e.status().message());
    std::vector<Token> tokens;
    for (size_t k = 0; k < e->ids.size(); ++k) {
      const int32_t id = e->ids[k];
      const bool special = id == tok.cls_id() || id == tok.sep_id() || id == tok.pad_id();
      if (special && !params.add_special_tokens) continue;
      tokens.push_back(Token{e->ids[k], tok.IdToToken(e->ids[k]), special});
    }
    total += tokens.size();
    if (total > max_tokens) {
      return OutOfRange("the reply would hold more than " + std::to_string(max_tokens) +
                        " tokens (limits.max_tokenize_tokens); send fewer or shorter texts, or "
                        "set truncate");
    }
    r.tokens.push_back(std::move(tokens));
  }
  return r;
}

namespace {
BackendStatus StatusOf(const backends::MemberState& m, bool primary) {
  BackendStatus b;
  b.name = m.name;
  b.role = primary ? "primary" : "fallback";
  b.loaded = m.loaded;
  b.in_service = m.in_service;
  b.load_error = m.load_error;
  b.batches = m.batches;
  b.failures = m.failures;
  if (m.info != nullptr) {
    b.precision = m.info->precision;
    b.fp32_kernels = m.info->fp32_kernels;
    b.quant_kernels = m.info->quant_kernels;
    b.device = m.info->device;
    b.library = m.info->library;
  }
  return b;
}
}  // namespace

ServiceInfo EngineService::Info() const {
  const ModelConfig& c = pipeline_->config();
  const std::string& dir = options_.pipeline.common.model_dir;
  ServiceInfo i;
  i.model_dir = dir;
  i.model_id = std::filesystem::path(dir).filename().string();
  if (i.model_id.empty()) i.model_id = std::filesystem::path(dir).parent_path().filename().string();
  i.model_kind = c.kind == ModelKind::kCrossEncoder ? "cross-encoder" : "embedding";
  const std::vector<backends::MemberState> states = pipeline_->backend().States();
  for (size_t k = 0; k < states.size(); ++k) i.backends.push_back(StatusOf(states[k], k == 0));
  // The backend serving now: the one that takes the next batch.
  const std::string name = pipeline_->backend().Serving();
  const BackendStatus* serving = nullptr;
  for (const BackendStatus& b : i.backends) {
    if (b.name == name && b.loaded) {
      serving = &b;
      break;
    }
  }
  if (serving != nullptr) {
    i.backend = serving->name;
    i.precision = serving->precision;
    i.device = serving->device;
    i.library = serving->library;
    i.isa = serving->fp32_kernels;
    i.quant_kernels = serving->quant_kernels;
  }
  i.version = ENCSERVE_VERSION;
  i.embedding_dim = c.kind == ModelKind::kEmbedding ? c.bert.hidden_size : 0;
  i.num_labels = c.num_labels;
  i.max_input_length = pipeline_->max_length();
  i.max_batch_size = options_.batcher.policy.max_batch_size;
  i.max_batch_tokens = options_.batcher.policy.max_batch_tokens;
  i.max_client_batch_size = options_.limits.max_client_batch_size;
  i.max_text_chars = options_.limits.max_text_chars;
  i.batching = options_.batcher.policy.enabled;
  FillQualityInfo(&i);
  return i;
}

bool EngineService::Ready() const {
  return ready_.load() && !self_check_.blocks_ready();
}

void EngineService::RecordRequest(std::string_view route, int http_code, double seconds) {
  metrics_->RecordRequest(route, http_code, seconds);
}

std::string EngineService::MetricsText() const {
  return metrics_->Text();
}

std::string EngineService::StatsJson() const {
  return metrics_->Json();
}

void EngineService::Shutdown(scheduler::Clock::time_point deadline) {
  ready_.store(false);
  batcher_->Shutdown(deadline);
}

}  // namespace encserve::server
