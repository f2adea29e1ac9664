#include "engine/engine.h"

#include <algorithm>
#include <cmath>
#include <string_view>
#include <unordered_map>

#include "engine/calibration.h"
#include "model/ops.h"

namespace encserve {

// A part of a split batch: its sequences, a workspace and a pool of one (no workers: the ops
// run on whichever thread of the replica's pool took the part).
struct BatchPart {
  ThreadPool solo{1};
  Workspace ws;
  TokenBatch batch;
};

struct Engine::Replica {
  explicit Replica(int threads) : pool(threads), parts(threads) {}
  ThreadPool pool;
  Workspace ws;
  std::vector<BatchPart> parts;
};

// The fewest tokens per part for which a split pays (measured, 2 threads: docs/benchmarks/
// engine.md). Each part streams all the weights through its own core, so the 4-byte fp32
// weights need more rows to amortise that than the 1-2 byte ones (fp32 at 64 tokens per part
// measured ~10 % slower split than intra-op; every other precision was faster split).
int MinTokensPerPart(kernels::Precision p) {
  return p == kernels::Precision::kF32 ? 128 : 64;
}

std::vector<int> SplitBatch(const std::vector<int>& offsets, int max_parts,
                            int min_tokens_per_part) {
  const int seqs = static_cast<int>(offsets.size()) - 1, tokens = offsets.back();
  int parts = std::min(max_parts, seqs);
  if (min_tokens_per_part > 0) parts = std::min(parts, tokens / min_tokens_per_part);
  if (parts < 2) return {0, seqs};
  std::vector<int> b{0};
  for (int p = 1; p < parts; ++p) {
    // The first sequence boundary at or past p/parts of the tokens, keeping ≥ 1 sequence per part.
    const long target = static_cast<long>(tokens) * p / parts;
    int s = b.back() + 1;
    while (s < seqs - (parts - p) && offsets[s] < target) ++s;
    b.push_back(s);
  }
  b.push_back(seqs);
  return b;
}

// RAII: returns the replica to the free list on destruction.
class Engine::ReplicaLease {
 public:
  ReplicaLease(const Engine* engine, Replica* r) : engine_(engine), replica_(r) {}
  ReplicaLease(ReplicaLease&& o) noexcept
      : engine_(o.engine_), replica_(std::exchange(o.replica_, nullptr)) {}
  ~ReplicaLease() {
    if (replica_ == nullptr) return;
    {
      std::lock_guard<std::mutex> lock(engine_->mu_);
      engine_->free_.push_back(replica_);
    }
    engine_->cv_.notify_one();
  }
  Replica* operator->() const { return replica_; }
  Replica& operator*() const { return *replica_; }

 private:
  const Engine* engine_;
  Replica* replica_;
};

Engine::~Engine() = default;

StatusOr<std::unique_ptr<Engine>> Engine::Load(const EngineOptions& options) {
  if (options.threads < 1 || options.threads > 256)
    return InvalidArgument("threads must be 1..256");
  if (options.replicas < 1 || options.replicas > 64)
    return InvalidArgument("replicas must be 1..64");
  if (options.max_batch_size < 1 || options.max_batch_tokens < 1) {
    return InvalidArgument("max_batch_size and max_batch_tokens must be positive");
  }
  const kernels::Isa isa = options.isa.value_or(kernels::ActiveIsa());
  const kernels::KernelTable* table = kernels::KernelsFor(isa);
  if (table == nullptr) {
    return FailedPrecondition(std::string("this CPU does not support ISA ") +
                              kernels::IsaName(isa));
  }
  std::unique_ptr<Engine> e(new Engine());
  e->options_ = options;
  if (options.group_size != 32 && options.group_size != 64 && options.group_size != 128) {
    return InvalidArgument("group_size must be 32, 64 or 128");
  }
  // The model's config first (its errors name a missing folder), then the tokenizer, which
  // int4's calibration needs before the weights are quantised.
  RETURN_IF_ERROR(LoadModelConfig(options.model_dir).status());
  ASSIGN_OR_RETURN(e->tokenizer_, Tokenizer::FromDirectory(options.model_dir));
  PrecisionOptions precision{options.precision, options.group_size, options.int4_recipe, {}};
  if (options.precision == kernels::Precision::kInt4 && options.int4_recipe == Int4Recipe::kGptq) {
    precision.calibration = VocabularyCalibration(*e->tokenizer_);
  }
  ASSIGN_OR_RETURN(e->model_, BertModel::Load(options.model_dir, *table, precision));
  const ModelConfig& c = e->model_->config();
  if (e->tokenizer_->vocab_size() > static_cast<size_t>(c.bert.vocab_size)) {
    return InvalidArgument("tokenizer has " + std::to_string(e->tokenizer_->vocab_size()) +
                           " tokens but the model only " + std::to_string(c.bert.vocab_size));
  }
  e->max_length_ = options.max_length.value_or(c.max_seq_length);
  if (e->max_length_ < 2 || e->max_length_ > c.bert.max_position_embeddings) {
    return InvalidArgument("max_length must be in 2.." +
                           std::to_string(c.bert.max_position_embeddings));
  }
  for (int r = 0; r < options.replicas; ++r) {
    e->replicas_.push_back(std::make_unique<Replica>(options.threads));
    e->free_.push_back(e->replicas_.back().get());
  }
  return e;
}

Engine::ReplicaLease Engine::Acquire() const {
  std::unique_lock<std::mutex> lock(mu_);
  cv_.wait(lock, [this] { return !free_.empty(); });
  Replica* r = free_.back();
  free_.pop_back();
  return ReplicaLease(this, r);
}

template <typename Fn>
Status Engine::ForEachBatch(const std::vector<Encoding>& encodings, Fn&& fn) const {
  TokenBatch batch;
  int first = 0;
  for (size_t i = 0; i < encodings.size(); ++i) {
    const int len = static_cast<int>(encodings[i].ids.size());
    if (batch.num_seqs() > 0 && (batch.num_seqs() >= options_.max_batch_size ||
                                 batch.num_tokens() + len > options_.max_batch_tokens)) {
      RETURN_IF_ERROR(fn(batch, first));
      batch.Clear();
      first = static_cast<int>(i);
    }
    batch.Add(encodings[i].ids, encodings[i].type_ids);
  }
  if (batch.num_seqs() > 0) RETURN_IF_ERROR(fn(batch, first));
  return Status::Ok();
}

template <typename Finish>
Status Engine::RunBatch(const TokenBatch& batch, Replica& r, Finish&& finish) const {
  const std::vector<int> b =
      options_.split_batches
          ? SplitBatch(batch.offsets, r.pool.num_threads(), MinTokensPerPart(options_.precision))
          : std::vector<int>{0, batch.num_seqs()};
  const int parts = static_cast<int>(b.size()) - 1;
  // The whole batch first, so that an error names the sequence's index in the batch, not in
  // its part.
  RETURN_IF_ERROR(model_->Validate(batch));
  if (parts == 1) {
    ASSIGN_OR_RETURN(const float* hidden, model_->Encode(batch, r.ws, r.pool));
    finish(batch, static_cast<const float*>(hidden), 0, r.pool);
    return Status::Ok();
  }
  std::vector<Status> status(parts);
  r.pool.ParallelFor(parts, [&](int p) {
    BatchPart& part = r.parts[p];
    part.batch.Clear();
    const int t0 = batch.offsets[b[p]];
    for (int s = b[p]; s < b[p + 1]; ++s) {
      const int t1 = batch.offsets[s + 1];
      part.batch.ids.insert(part.batch.ids.end(), batch.ids.begin() + batch.offsets[s],
                            batch.ids.begin() + t1);
      part.batch.type_ids.insert(part.batch.type_ids.end(),
                                 batch.type_ids.begin() + batch.offsets[s],
                                 batch.type_ids.begin() + t1);
      part.batch.offsets.push_back(t1 - t0);
    }
    StatusOr<const float*> hidden = model_->Encode(part.batch, part.ws, part.solo);
    if (!hidden.ok()) {
      status[p] = hidden.status();
      return;
    }
    finish(part.batch, *hidden, b[p], part.solo);
  });
  for (const Status& st : status) RETURN_IF_ERROR(st);
  return Status::Ok();
}

StatusOr<Embeddings> Engine::EmbedBatch(const TokenBatch& batch, bool normalize) const {
  ReplicaLease r = Acquire();
  Embeddings out;
  out.rows = batch.num_seqs();
  out.dim = model_->hidden_size();
  out.data.resize(static_cast<size_t>(out.rows) * out.dim);
  RETURN_IF_ERROR(
      RunBatch(batch, *r, [&](const TokenBatch& sub, const float* hidden, int first, ThreadPool&) {
        model_->Pool(sub, hidden, normalize,
                     out.data.data() + static_cast<size_t>(first) * out.dim);
      }));
  return out;
}

StatusOr<Embeddings> Engine::LogitsBatch(const TokenBatch& batch) const {
  if (config().kind != ModelKind::kCrossEncoder) {
    return FailedPrecondition("this model has no classification head (not a cross-encoder)");
  }
  ReplicaLease r = Acquire();
  Embeddings out;
  out.rows = batch.num_seqs();
  out.dim = config().num_labels;
  out.data.resize(static_cast<size_t>(out.rows) * out.dim);
  RETURN_IF_ERROR(RunBatch(
      batch, *r, [&](const TokenBatch& sub, const float* hidden, int first, ThreadPool& pool) {
        model_->Classify(sub, hidden, pool, out.data.data() + static_cast<size_t>(first) * out.dim);
      }));
  return out;
}

StatusOr<Embeddings> Engine::Embed(const std::vector<std::string>& texts,
                                   std::optional<bool> normalize) const {
  if (texts.empty()) return InvalidArgument("no texts to embed");
  if (config().kind != ModelKind::kEmbedding) {
    return FailedPrecondition("this model is a cross-encoder; use Score()");
  }
  std::vector<Encoding> enc(texts.size());
  for (size_t i = 0; i < texts.size(); ++i) {
    auto e = tokenizer_->Encode(texts[i], max_length_);
    if (!e.ok()) return InvalidArgument("text " + std::to_string(i) + ": " + e.status().message());
    enc[i] = std::move(e).value();
  }
  Embeddings out;
  out.rows = static_cast<int>(texts.size());
  out.dim = model_->hidden_size();
  out.data.resize(static_cast<size_t>(out.rows) * out.dim);
  const bool norm = normalize.value_or(config().normalize);
  RETURN_IF_ERROR(ForEachBatch(enc, [&](const TokenBatch& batch, int first) -> Status {
    ASSIGN_OR_RETURN(Embeddings part, EmbedBatch(batch, norm));
    std::copy(part.data.begin(), part.data.end(),
              out.data.begin() + static_cast<size_t>(first) * out.dim);
    return Status::Ok();
  }));
  return out;
}

StatusOr<Embeddings> Engine::Logits(const std::vector<TextPair>& pairs) const {
  if (pairs.empty()) return InvalidArgument("no pairs to score");
  if (config().kind != ModelKind::kCrossEncoder) {
    return FailedPrecondition("this model has no classification head (not a cross-encoder)");
  }
  std::vector<Encoding> enc(pairs.size());
  for (size_t i = 0; i < pairs.size(); ++i) {
    auto e = tokenizer_->EncodePair(pairs[i].first, pairs[i].second, max_length_);
    if (!e.ok()) return InvalidArgument("pair " + std::to_string(i) + ": " + e.status().message());
    enc[i] = std::move(e).value();
  }
  Embeddings out;
  out.rows = static_cast<int>(pairs.size());
  out.dim = config().num_labels;
  out.data.resize(static_cast<size_t>(out.rows) * out.dim);
  RETURN_IF_ERROR(ForEachBatch(enc, [&](const TokenBatch& batch, int first) -> Status {
    ASSIGN_OR_RETURN(Embeddings part, LogitsBatch(batch));
    std::copy(part.data.begin(), part.data.end(),
              out.data.begin() + static_cast<size_t>(first) * out.dim);
    return Status::Ok();
  }));
  return out;
}

float ScoreFromLogits(const float* logits, int num_labels, bool activate) {
  if (!activate) return logits[num_labels - 1];
  if (num_labels == 1) return 1.0f / (1.0f + std::exp(-logits[0]));
  const float mx = *std::max_element(logits, logits + num_labels);
  double sum = 0;
  for (int j = 0; j < num_labels; ++j) sum += std::exp(logits[j] - mx);
  return static_cast<float>(std::exp(logits[num_labels - 1] - mx) / sum);
}

PairTexts DedupePairTexts(const std::vector<TextPair>& pairs) {
  PairTexts out;
  std::unordered_map<std::string_view, int> index;
  auto row_of = [&](const std::string& text) {
    auto [it, inserted] = index.emplace(text, static_cast<int>(out.texts.size()));
    if (inserted) out.texts.push_back(text);
    return it->second;
  };
  out.rows.reserve(pairs.size());
  for (const TextPair& p : pairs) out.rows.emplace_back(row_of(p.first), row_of(p.second));
  return out;
}

StatusOr<std::vector<float>> Engine::Score(const std::vector<TextPair>& pairs,
                                           ScoreActivation activation) const {
  if (pairs.empty()) return InvalidArgument("no pairs to score");
  std::vector<float> scores(pairs.size());
  if (config().kind == ModelKind::kCrossEncoder) {
    ASSIGN_OR_RETURN(Embeddings logits, Logits(pairs));
    // Several labels: always the softmax probability of the last label.
    const bool activate = activation == ScoreActivation::kSigmoid || logits.dim > 1;
    for (int i = 0; i < logits.rows; ++i)
      scores[i] = ScoreFromLogits(logits.row(i), logits.dim, activate);
    return scores;
  }
  // Bi-encoder: embed each distinct text once (a rerank repeats its query in every pair).
  const PairTexts dedup = DedupePairTexts(pairs);
  ASSIGN_OR_RETURN(Embeddings emb, Embed(dedup.texts, /*normalize=*/true));
  for (size_t i = 0; i < pairs.size(); ++i) {
    scores[i] = ops::Dot(emb.row(dedup.rows[i].first), emb.row(dedup.rows[i].second), emb.dim);
  }
  return scores;
}

}  // namespace encserve
