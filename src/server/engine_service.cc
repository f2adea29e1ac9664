#include "server/engine_service.h"

#include <algorithm>
#include <filesystem>
#include <numeric>
#include <string_view>
#include <thread>

#include "kernels/cpu_features.h"
#include "kernels/precision.h"
#include "model/ops.h"

namespace encserve::server {
namespace {

using ops::Dot;
using ops::L2Normalize;

double Seconds(scheduler::Clock::time_point since) {
  return std::chrono::duration<double>(scheduler::Clock::now() - since).count();
}

int64_t CountTokens(const std::vector<Encoding>& enc) {
  int64_t n = 0;
  for (const Encoding& e : enc) n += static_cast<int64_t>(e.ids.size());
  return n;
}

}  // namespace

StatusOr<std::unique_ptr<EngineService>> EngineService::Create(
    const EngineServiceOptions& options) {
  std::unique_ptr<EngineService> s(new EngineService());
  s->options_ = options;
  if (options.limits.max_client_batch_size < 1 || options.limits.max_text_chars < 1) {
    return InvalidArgument("max_client_batch_size and max_text_chars must be positive");
  }
  ASSIGN_OR_RETURN(s->engine_, Engine::Load(options.engine));
  // The engine chunks by its own limits; the batcher's limits are the ones that matter, so
  // keep the engine's at least as large.
  s->metrics_ = std::make_unique<ServerMetrics>();
  scheduler::BatcherOptions b = options.batcher;
  b.workers = options.engine.replicas;
  if (options.backend != "encserve" && options.backend != "null") {
    return InvalidArgument("backend must be encserve or null, not '" + options.backend + "'");
  }
  b.null_backend = options.backend == "null";
  s->batcher_ = std::make_unique<scheduler::Batcher>(*s->engine_, b, s->metrics_->BatcherHooks());
  s->metrics_->AttachBatcher(s->batcher_.get());
  if (options.warmup && !b.null_backend) RETURN_IF_ERROR(s->Warmup());
  s->ready_.store(true);
  return s;
}

EngineService::~EngineService() {
  if (metrics_) metrics_->AttachBatcher(nullptr);
  if (batcher_) batcher_->Shutdown(scheduler::Clock::now());
}

Status EngineService::Warmup() {
  // One batch at the max length on every replica (allocates the workspaces, faults the weights).
  const int len = engine_->max_length();
  const auto& policy = options_.batcher.policy;
  const int seqs = std::max(1, std::min(policy.max_batch_size, policy.max_batch_tokens / len));
  TokenBatch batch;
  std::vector<int32_t> ids(len, engine_->tokenizer().unk_id()), types(len, 0);
  ids.front() = engine_->tokenizer().cls_id();
  ids.back() = engine_->tokenizer().sep_id();
  for (int s = 0; s < seqs; ++s) batch.Add(ids, types);
  const bool cross = engine_->config().kind == ModelKind::kCrossEncoder;
  std::vector<Status> results(options_.engine.replicas);
  std::vector<std::thread> threads;
  for (int r = 0; r < options_.engine.replicas; ++r) {
    threads.emplace_back([&, r] {
      auto out = cross ? engine_->LogitsBatch(batch) : engine_->EmbedBatch(batch, false);
      results[r] = out.status();
    });
  }
  for (auto& t : threads) t.join();
  for (const Status& st : results) RETURN_IF_ERROR(st);
  return Status::Ok();
}

Status EngineService::CheckTexts(size_t count, const char* what) const {
  if (count == 0) return InvalidArgument(std::string("no ") + what + " given (empty input)");
  if (count > static_cast<size_t>(options_.limits.max_client_batch_size)) {
    return OutOfRange(std::to_string(count) + " " + what + " in one request; the limit is " +
                      std::to_string(options_.limits.max_client_batch_size));
  }
  return Status::Ok();
}

namespace {
Status CheckText(std::string_view text, size_t i, int max_chars) {
  if (text.empty()) return InvalidArgument("text " + std::to_string(i) + " is empty");
  if (text.size() > static_cast<size_t>(max_chars)) {
    return OutOfRange("text " + std::to_string(i) + " has " + std::to_string(text.size()) +
                      " bytes; the limit is " + std::to_string(max_chars));
  }
  return Status::Ok();
}
Status TooLong(size_t i, int max_len) {
  return OutOfRange("text " + std::to_string(i) + " is longer than the model's " +
                    std::to_string(max_len) + " tokens and truncate is false");
}
}  // namespace

StatusOr<std::vector<Encoding>> EngineService::EncodeTexts(const std::vector<std::string>& texts,
                                                           bool truncate) const {
  const auto t0 = scheduler::Clock::now();
  std::vector<Encoding> out(texts.size());
  for (size_t i = 0; i < texts.size(); ++i) {
    RETURN_IF_ERROR(CheckText(texts[i], i, options_.limits.max_text_chars));
    auto e = engine_->tokenizer().Encode(texts[i], engine_->max_length());
    if (!e.ok()) return InvalidArgument("text " + std::to_string(i) + ": " + e.status().message());
    if (e->truncated && !truncate) return TooLong(i, engine_->max_length());
    out[i] = std::move(e).value();
  }
  metrics_->ObserveTokenize(Seconds(t0));
  return out;
}

StatusOr<std::vector<Encoding>> EngineService::EncodePairs(
    const std::vector<std::pair<std::string, std::string>>& pairs, bool truncate) const {
  const auto t0 = scheduler::Clock::now();
  std::vector<Encoding> out(pairs.size());
  for (size_t i = 0; i < pairs.size(); ++i) {
    RETURN_IF_ERROR(CheckText(pairs[i].first, i, options_.limits.max_text_chars));
    RETURN_IF_ERROR(CheckText(pairs[i].second, i, options_.limits.max_text_chars));
    auto e =
        engine_->tokenizer().EncodePair(pairs[i].first, pairs[i].second, engine_->max_length());
    if (!e.ok()) return InvalidArgument("pair " + std::to_string(i) + ": " + e.status().message());
    if (e->truncated && !truncate) return TooLong(i, engine_->max_length());
    out[i] = std::move(e).value();
  }
  metrics_->ObserveTokenize(Seconds(t0));
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
  const scheduler::Clock::time_point deadline = ctx.deadline;
  req->on_done = [done, deadline](const Status& st, const Embeddings& out) {
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
  if (!st.ok()) done(st);
}

void EngineService::Embed(EmbedParams params, RequestContext ctx, Done<EmbedResult> done) {
  if (engine_->config().kind != ModelKind::kEmbedding) {
    return done(FailedPrecondition("this model is a cross-encoder: use Score or Rerank"));
  }
  if (Status st = CheckTexts(params.texts.size(), "texts"); !st.ok()) return done(st);
  const int dim = engine_->config().bert.hidden_size;
  const int out_dim = params.dimensions.value_or(dim);
  if (out_dim < 1 || out_dim > dim) {
    return done(InvalidArgument("dimensions must be in 1.." + std::to_string(dim)));
  }
  auto enc = EncodeTexts(params.texts, params.truncate);
  if (!enc.ok()) return done(enc.status());
  const int64_t tokens = CountTokens(*enc);
  const bool normalize = params.normalize.value_or(engine_->config().normalize);
  Run(scheduler::Task::kEmbed, std::move(enc).value(), ctx,
      [done, out_dim, normalize, tokens](StatusOr<Embeddings> rows) {
        if (!rows.ok()) return done(rows.status());
        EmbedResult r;
        r.rows = rows->rows;
        r.dim = out_dim;
        r.prompt_tokens = tokens;
        r.data.resize(static_cast<size_t>(r.rows) * out_dim);
        for (int i = 0; i < r.rows; ++i) {
          float* dst = r.data.data() + static_cast<size_t>(i) * out_dim;
          std::copy(rows->row(i), rows->row(i) + out_dim, dst);
          if (normalize) L2Normalize(dst, out_dim);
        }
        done(std::move(r));
      });
}

void EngineService::EmbedNormalized(
    const std::vector<std::string>& texts, bool truncate, const RequestContext& ctx,
    std::function<void(StatusOr<Embeddings>, int64_t tokens)> done) {
  auto enc = EncodeTexts(texts, truncate);
  if (!enc.ok()) return done(enc.status(), 0);
  const int64_t tokens = CountTokens(*enc);
  Run(scheduler::Task::kEmbed, std::move(enc).value(), ctx,
      [done, tokens](StatusOr<Embeddings> rows) {
        if (rows.ok()) {
          for (int i = 0; i < rows->rows; ++i)
            L2Normalize(rows->data.data() + i * rows->dim, rows->dim);
        }
        done(std::move(rows), tokens);
      });
}

float EngineService::PairScore(const float* logits, bool raw) const {
  return ScoreFromLogits(logits, engine_->config().num_labels, !raw);
}

void EngineService::Score(ScoreParams params, RequestContext ctx, Done<ScoreResult> done) {
  if (Status st = CheckTexts(params.pairs.size(), "pairs"); !st.ok()) return done(st);
  if (engine_->config().kind == ModelKind::kCrossEncoder) {
    auto enc = EncodePairs(params.pairs, params.truncate);
    if (!enc.ok()) return done(enc.status());
    const int64_t tokens = CountTokens(*enc);
    const bool raw = params.raw_scores;
    Run(scheduler::Task::kLogits, std::move(enc).value(), ctx,
        [this, done, tokens, raw](StatusOr<Embeddings> logits) {
          if (!logits.ok()) return done(logits.status());
          ScoreResult r;
          r.prompt_tokens = tokens;
          for (int i = 0; i < logits->rows; ++i) r.scores.push_back(PairScore(logits->row(i), raw));
          done(std::move(r));
        });
    return;
  }
  // Bi-encoder: cosine of the two embeddings; each distinct text is embedded once.
  PairTexts dedup = DedupePairTexts(params.pairs);
  auto rows = std::make_shared<std::vector<std::pair<int, int>>>(std::move(dedup.rows));
  EmbedNormalized(dedup.texts, params.truncate, ctx,
                  [done, rows](StatusOr<Embeddings> emb, int64_t tokens) {
                    if (!emb.ok()) return done(emb.status());
                    ScoreResult r;
                    r.prompt_tokens = tokens;
                    for (auto [a, b] : *rows)
                      r.scores.push_back(Dot(emb->row(a), emb->row(b), emb->dim));
                    done(std::move(r));
                  });
}

namespace {
RerankResult Rank(const std::vector<float>& scores, const RerankParams& p, int64_t tokens) {
  std::vector<int> order(scores.size());
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(), [&](int a, int b) { return scores[a] > scores[b]; });
  const size_t n =
      std::min(order.size(), static_cast<size_t>(p.top_n.value_or(static_cast<int>(order.size()))));
  RerankResult r;
  r.prompt_tokens = tokens;
  for (size_t k = 0; k < n; ++k) {
    RankedDocument d{order[k], scores[order[k]], std::nullopt};
    if (p.return_documents) d.document = p.documents[order[k]];
    r.results.push_back(std::move(d));
  }
  return r;
}
}  // namespace

void EngineService::Rerank(RerankParams params, RequestContext ctx, Done<RerankResult> done) {
  if (Status st = CheckTexts(params.documents.size(), "documents"); !st.ok()) return done(st);
  if (params.query.empty()) return done(InvalidArgument("query is empty"));
  if (params.top_n && *params.top_n < 1) return done(InvalidArgument("top_n must be positive"));
  auto p = std::make_shared<RerankParams>(std::move(params));
  if (engine_->config().kind == ModelKind::kCrossEncoder) {
    std::vector<std::pair<std::string, std::string>> pairs;
    pairs.reserve(p->documents.size());
    for (const std::string& d : p->documents) pairs.emplace_back(p->query, d);
    auto enc = EncodePairs(pairs, p->truncate);
    if (!enc.ok()) return done(enc.status());
    const int64_t tokens = CountTokens(*enc);
    Run(scheduler::Task::kLogits, std::move(enc).value(), ctx,
        [this, done, p, tokens](StatusOr<Embeddings> logits) {
          if (!logits.ok()) return done(logits.status());
          std::vector<float> scores;
          for (int i = 0; i < logits->rows; ++i)
            scores.push_back(PairScore(logits->row(i), p->raw_scores));
          done(Rank(scores, *p, tokens));
        });
    return;
  }
  std::vector<std::string> texts{p->query};
  texts.insert(texts.end(), p->documents.begin(), p->documents.end());
  EmbedNormalized(texts, p->truncate, ctx, [done, p](StatusOr<Embeddings> emb, int64_t tokens) {
    if (!emb.ok()) return done(emb.status());
    std::vector<float> scores;
    for (int i = 1; i < emb->rows; ++i) scores.push_back(Dot(emb->row(0), emb->row(i), emb->dim));
    done(Rank(scores, *p, tokens));
  });
}

void EngineService::Similarity(SimilarityParams params, RequestContext ctx,
                               Done<SimilarityResult> done) {
  if (engine_->config().kind != ModelKind::kEmbedding) {
    return done(FailedPrecondition("similarity needs an embedding model; this is a cross-encoder"));
  }
  if (Status st = CheckTexts(params.sentences.size(), "sentences"); !st.ok()) return done(st);
  std::vector<std::string> texts{params.source_sentence};
  texts.insert(texts.end(), params.sentences.begin(), params.sentences.end());
  EmbedNormalized(texts, params.truncate, ctx, [done](StatusOr<Embeddings> emb, int64_t tokens) {
    if (!emb.ok()) return done(emb.status());
    SimilarityResult r;
    r.prompt_tokens = tokens;
    for (int i = 1; i < emb->rows; ++i) r.scores.push_back(Dot(emb->row(0), emb->row(i), emb->dim));
    done(std::move(r));
  });
}

StatusOr<TokenizeResult> EngineService::Tokenize(const TokenizeParams& params) const {
  RETURN_IF_ERROR(CheckTexts(params.texts.size(), "texts"));
  const Tokenizer& tok = engine_->tokenizer();
  TokenizeResult r;
  // Without truncation, tokenise up to the position limit so overlong texts are reported whole.
  const size_t max_len = params.truncate ? engine_->max_length() : 1u << 20;
  for (size_t i = 0; i < params.texts.size(); ++i) {
    RETURN_IF_ERROR(CheckText(params.texts[i], i, options_.limits.max_text_chars));
    auto e = tok.Encode(params.texts[i], max_len);
    if (!e.ok()) return InvalidArgument("text " + std::to_string(i) + ": " + e.status().message());
    std::vector<Token> tokens;
    for (size_t k = 0; k < e->ids.size(); ++k) {
      const int32_t id = e->ids[k];
      const bool special = id == tok.cls_id() || id == tok.sep_id() || id == tok.pad_id();
      if (special && !params.add_special_tokens) continue;
      tokens.push_back(Token{e->ids[k], tok.IdToToken(e->ids[k]), special});
    }
    r.tokens.push_back(std::move(tokens));
  }
  return r;
}

ServiceInfo EngineService::Info() const {
  const ModelConfig& c = engine_->config();
  ServiceInfo i;
  i.model_dir = options_.engine.model_dir;
  i.model_id = std::filesystem::path(options_.engine.model_dir).filename().string();
  if (i.model_id.empty()) {
    i.model_id = std::filesystem::path(options_.engine.model_dir).parent_path().filename().string();
  }
  i.model_kind = c.kind == ModelKind::kCrossEncoder ? "cross-encoder" : "embedding";
  i.precision = kernels::PrecisionName(options_.engine.precision);
  i.backend = options_.backend == "null" ? "null" : "encserve-cpu";
  i.isa = engine_->kernels().name;
  i.version = ENCSERVE_VERSION;
  i.embedding_dim = c.kind == ModelKind::kEmbedding ? c.bert.hidden_size : 0;
  i.num_labels = c.num_labels;
  i.max_input_length = engine_->max_length();
  i.max_batch_size = options_.batcher.policy.max_batch_size;
  i.max_batch_tokens = options_.batcher.policy.max_batch_tokens;
  i.max_client_batch_size = options_.limits.max_client_batch_size;
  i.max_text_chars = options_.limits.max_text_chars;
  i.batching = options_.batcher.policy.enabled;
  return i;
}

bool EngineService::Ready() const {
  return ready_.load();
}

void EngineService::RecordRequest(std::string_view route, int http_code, double seconds) {
  metrics_->RecordRequest(route, http_code, seconds);
}

std::string EngineService::MetricsText() const {
  return metrics_->Text();
}

void EngineService::Shutdown(scheduler::Clock::time_point deadline) {
  ready_.store(false);
  batcher_->Shutdown(deadline);
}

}  // namespace encserve::server
