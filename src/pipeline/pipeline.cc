#include "pipeline/pipeline.h"

#include <algorithm>

#include "core/op_profile.h"
#include "tokenizer/unicode.h"

namespace encserve {

StatusOr<std::unique_ptr<Pipeline>> Pipeline::Load(const PipelineOptions& options,
                                                   backends::FallbackObserver observer) {
  if (options.max_batch_size < 1 || options.max_batch_tokens < 1) {
    return InvalidArgument("max_batch_size and max_batch_tokens must be positive");
  }
  std::unique_ptr<Pipeline> p(new Pipeline());
  p->options_ = options;
  // The model's config first (its errors name a missing folder), then the tokenizer.
  ASSIGN_OR_RETURN(p->config_, LoadModelConfig(options.common.model_dir));
  ASSIGN_OR_RETURN(p->tokenizer_, Tokenizer::FromDirectory(options.common.model_dir));
  const ModelConfig& c = p->config_;
  if (p->tokenizer_->vocab_size() > static_cast<size_t>(c.bert.vocab_size)) {
    return InvalidArgument("tokenizer has " + std::to_string(p->tokenizer_->vocab_size()) +
                           " tokens but the model only " + std::to_string(c.bert.vocab_size));
  }
  p->max_length_ = options.max_length.value_or(c.max_seq_length);
  if (p->max_length_ < 2 || p->max_length_ > c.bert.max_position_embeddings) {
    return InvalidArgument("max_length must be in 2.." +
                           std::to_string(c.bert.max_position_embeddings));
  }
  std::vector<std::string> names{options.backend};
  names.insert(names.end(), options.fallback.begin(), options.fallback.end());
  ASSIGN_OR_RETURN(p->chain_,
                   backends::FallbackChain::Load(names, options.common, options.sections,
                                                 options.fallback_policy, std::move(observer)));
  const backends::BackendInfo& info = p->chain_->info();
  if (info.kind != c.kind || info.max_positions < p->max_length_) {
    return Internal("backend " + info.name + " disagrees with the model's config.json");
  }
  return p;
}

Status Pipeline::NeedKind(ModelKind kind, const char* what) const {
  if (config_.kind == kind) return Status::Ok();
  return FailedPrecondition(kind == ModelKind::kCrossEncoder
                                ? std::string(what) +
                                      " needs a cross-encoder (this model has no "
                                      "classification head)"
                                : std::string(what) +
                                      " needs an embedding model; this is a "
                                      "cross-encoder: use Score or Rerank");
}

Status CheckText(const std::string& text, size_t i, const InputLimits& limits) {
  if (text.empty()) return InvalidArgument("text " + std::to_string(i) + " is empty");
  if (text.size() > limits.max_text_bytes && !limits.truncate) {
    return OutOfRange("text " + std::to_string(i) + " has " + std::to_string(text.size()) +
                      " bytes; the limit is " + std::to_string(limits.max_text_bytes));
  }
  return Status::Ok();
}

std::optional<std::string_view> LongTextCut(std::string_view text, size_t max_bytes,
                                            TruncationSide side) {
  if (text.size() <= max_bytes || max_bytes == 0) return std::nullopt;
  const auto space = [](char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; };
  if (side == TruncationSide::kRight) {
    for (size_t p = max_bytes; p > 0; --p) {
      if (space(text[p])) return text.substr(0, p);
    }
    return std::nullopt;
  }
  for (size_t p = text.size() - max_bytes - 1; p + 1 < text.size(); ++p) {
    if (space(text[p])) return text.substr(p + 1);
  }
  return std::nullopt;
}

namespace {
StatusOr<Encoding> Checked(StatusOr<Encoding> e, const char* what, size_t i, int max_len,
                           bool truncate) {
  if (!e.ok()) {
    return InvalidArgument(std::string(what) + " " + std::to_string(i) + ": " +
                           e.status().message());
  }
  if (e->truncated && !truncate) {
    return OutOfRange(std::string(what) + " " + std::to_string(i) + " is longer than the model's " +
                      std::to_string(max_len) + " tokens and truncate is false");
  }
  return e;
}
}  // namespace

StatusOr<Encoding> Pipeline::EncodeOne(const std::string& text, size_t i,
                                       const InputLimits& limits) const {
  if (limits.truncate) {
    if (auto cut = LongTextCut(text, limits.max_text_bytes, limits.side)) {
      // The dropped part is still checked: invalid UTF-8 anywhere is an error.
      if (const size_t bad = unicode::FindInvalidUtf8(text); bad != unicode::kValidUtf8) {
        return InvalidArgument("text " + std::to_string(i) + ": invalid UTF-8 at byte " +
                               std::to_string(bad));
      }
      auto enc = tokenizer_->Encode(*cut, max_length_, limits.side);
      // Fewer tokens than the model takes (mostly whitespace): the whole text decides.
      if (enc.ok() && enc->truncated) return enc;
    }
  }
  return Checked(tokenizer_->Encode(text, max_length_, limits.side), "text", i, max_length_,
                 limits.truncate);
}

StatusOr<std::vector<Encoding>> Pipeline::EncodeTexts(const std::vector<std::string>& texts,
                                                      const InputLimits& limits) const {
  const profile::Scope scope("tokenize");
  std::vector<Encoding> out(texts.size());
  for (size_t i = 0; i < texts.size(); ++i) {
    RETURN_IF_ERROR(CheckText(texts[i], i, limits));
    ASSIGN_OR_RETURN(out[i], EncodeOne(texts[i], i, limits));
  }
  return out;
}

StatusOr<std::vector<Encoding>> Pipeline::EncodePairs(const std::vector<TextPair>& pairs,
                                                      const InputLimits& limits) const {
  const profile::Scope scope("tokenize");
  std::vector<Encoding> out(pairs.size());
  for (size_t i = 0; i < pairs.size(); ++i) {
    RETURN_IF_ERROR(CheckText(pairs[i].first, i, limits));
    RETURN_IF_ERROR(CheckText(pairs[i].second, i, limits));
    ASSIGN_OR_RETURN(out[i], Checked(tokenizer_->EncodePair(pairs[i].first, pairs[i].second,
                                                            max_length_, limits.side),
                                     "pair", i, max_length_, limits.truncate));
  }
  return out;
}

StatusOr<Embeddings> Pipeline::RunBatches(backends::Task task,
                                          const std::vector<Encoding>& enc) const {
  if (enc.empty()) return InvalidArgument("empty input");
  const backends::BackendInfo& info = chain_->info();
  const int dim = task == backends::Task::kEmbed ? info.hidden_size : info.num_labels;
  Embeddings out = Embeddings::Zeros(static_cast<int>(enc.size()), dim);
  TokenBatch batch;
  size_t first = 0;
  auto flush = [&]() -> Status {
    ASSIGN_OR_RETURN(Embeddings part, chain_->Run(task, batch));
    std::copy(part.data.begin(), part.data.end(), out.row(static_cast<int>(first)));
    batch.Clear();
    return Status::Ok();
  };
  for (size_t i = 0; i < enc.size(); ++i) {
    const int len = static_cast<int>(enc[i].ids.size());
    if (batch.num_seqs() > 0 && (batch.num_seqs() >= options_.max_batch_size ||
                                 batch.num_tokens() + len > options_.max_batch_tokens)) {
      RETURN_IF_ERROR(flush());
      first = i;
    }
    batch.Add(enc[i].ids, enc[i].type_ids);
  }
  RETURN_IF_ERROR(flush());
  return out;
}

StatusOr<Embeddings> Pipeline::Embed(const std::vector<std::string>& texts,
                                     std::optional<bool> normalize) const {
  if (texts.empty()) return InvalidArgument("no texts to embed");
  RETURN_IF_ERROR(NeedKind(ModelKind::kEmbedding, "Embed"));
  ASSIGN_OR_RETURN(std::vector<Encoding> enc, EncodeTexts(texts, InputLimits{SIZE_MAX, true}));
  ASSIGN_OR_RETURN(Embeddings rows, RunBatches(backends::Task::kEmbed, enc));
  if (normalize.value_or(config_.normalize)) NormalizeRows(&rows);
  return rows;
}

StatusOr<Embeddings> Pipeline::Logits(const std::vector<TextPair>& pairs) const {
  if (pairs.empty()) return InvalidArgument("no pairs to score");
  RETURN_IF_ERROR(NeedKind(ModelKind::kCrossEncoder, "Logits"));
  ASSIGN_OR_RETURN(std::vector<Encoding> enc, EncodePairs(pairs, InputLimits{SIZE_MAX, true}));
  return RunBatches(backends::Task::kLogits, enc);
}

StatusOr<std::vector<float>> Pipeline::Score(const std::vector<TextPair>& pairs,
                                             ScoreActivation activation) const {
  if (pairs.empty()) return InvalidArgument("no pairs to score");
  if (config_.kind == ModelKind::kCrossEncoder) {
    ASSIGN_OR_RETURN(Embeddings logits, Logits(pairs));
    return PairScores(logits, activation);
  }
  // Bi-encoder: embed each distinct text once (a rerank repeats its query in every pair).
  const PairTexts dedup = DedupePairTexts(pairs);
  ASSIGN_OR_RETURN(Embeddings emb, Embed(dedup.texts, /*normalize=*/true));
  return CosineScores(emb, dedup.rows);
}

StatusOr<std::vector<RankedDocument>> Pipeline::Rerank(const std::string& query,
                                                       const std::vector<std::string>& documents,
                                                       std::optional<int> top_n,
                                                       ScoreActivation activation) const {
  if (documents.empty()) return InvalidArgument("no documents to rerank");
  if (top_n && *top_n < 1) return InvalidArgument("top_n must be positive");
  std::vector<TextPair> pairs;
  for (const std::string& d : documents) pairs.emplace_back(query, d);
  ASSIGN_OR_RETURN(std::vector<float> scores, Score(pairs, activation));
  std::vector<RankedDocument> out;
  for (int i : RankByScore(scores, top_n)) out.push_back({i, scores[i]});
  return out;
}

}  // namespace encserve
