// Pipeline: the library API (embed, score, rerank in-process) and the pieces the server shares
// with it: tokenizer → backend (through a FallbackChain) → post-processing (postprocess.h).
// The server (server/engine_service.h) uses the same tokenisation checks, the same backend
// chain and the same post-processing, with the dynamic batcher in between.
//
// Thread safety: every method may be called from any number of threads at once.
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "backends/fallback.h"
#include "model/config.h"
#include "pipeline/postprocess.h"
#include "tokenizer/tokenizer.h"

namespace encserve {

struct PipelineOptions {
  std::string backend = "native";     // a registry name (backends/registry.h)
  std::vector<std::string> fallback;  // tried in order when `backend` fails
  backends::FallbackPolicy fallback_policy;
  backends::CommonOptions common;  // model folder, precision, threads, replicas
  backends::Sections sections;     // per-backend options, e.g. sections["native"]["isa"]
  std::optional<int> max_length;   // truncation length; default: the model's max_seq_length
  // Library calls (Embed/Score/...) split their inputs into batches within these limits.
  int max_batch_size = 64;
  int max_batch_tokens = 8192;
};

// Input checks shared with the server.
struct InputLimits {
  // Bytes per text. Over it: OUT_OF_RANGE without truncation; with truncation the text is cut
  // near the limit before tokenising (LongTextCut), which bounds the work.
  size_t max_text_bytes = 100000;
  bool truncate = true;  // false: a text longer than max_length is an error (OUT_OF_RANGE)
  TruncationSide side = TruncationSide::kRight;  // which end truncation drops
};

// A text's own checks: non-empty, within the byte limit unless truncating (errors name index i).
Status CheckText(const std::string& text, size_t i, const InputLimits& limits);
// The part of a text over max_bytes that truncation on `side` keeps, cut at an ASCII whitespace
// (a word boundary for the BERT pre-tokenizer, so the kept words tokenise exactly as in the
// whole text): the head up to the last whitespace within max_bytes (kRight), or the tail after
// the first whitespace within the last max_bytes (kLeft). std::nullopt when the text fits or
// has no whitespace there.
std::optional<std::string_view> LongTextCut(std::string_view text, size_t max_bytes,
                                            TruncationSide side);

struct RankedDocument {
  int index = 0;  // position in the documents
  float score = 0;
};

class Pipeline {
 public:
  static StatusOr<std::unique_ptr<Pipeline>> Load(const PipelineOptions& options,
                                                  backends::FallbackObserver observer = {});

  // --- library API (synchronous; batches of max_batch_size / max_batch_tokens) ---
  // Sentence embeddings (bi-encoders). normalize defaults to the model's setting.
  StatusOr<Embeddings> Embed(const std::vector<std::string>& texts,
                             std::optional<bool> normalize = std::nullopt) const;
  // One score per pair: cross-encoder logits through PairScore(activation), or for a
  // bi-encoder the cosine of the two texts' embeddings (activation ignored).
  StatusOr<std::vector<float>> Score(const std::vector<TextPair>& pairs,
                                     ScoreActivation activation = ScoreActivation::kRaw) const;
  // Raw classifier logits [n, num_labels] (cross-encoders only).
  StatusOr<Embeddings> Logits(const std::vector<TextPair>& pairs) const;
  // Documents by descending score against the query (ties by index), the first top_n.
  StatusOr<std::vector<RankedDocument>> Rerank(
      const std::string& query, const std::vector<std::string>& documents,
      std::optional<int> top_n = std::nullopt,
      ScoreActivation activation = ScoreActivation::kRaw) const;

  // --- shared with the server ---
  // Tokenises with the checks every entry point applies: a non-empty text within the byte
  // limit, valid UTF-8, and (truncate off) within max_length. Errors name the text's index.
  StatusOr<std::vector<Encoding>> EncodeTexts(const std::vector<std::string>& texts,
                                              const InputLimits& limits) const;
  StatusOr<std::vector<Encoding>> EncodePairs(const std::vector<TextPair>& pairs,
                                              const InputLimits& limits) const;
  // Runs encodings through the backend chain in batches within the library's limits:
  // raw rows (embeddings before normalisation, or logits) in input order.
  StatusOr<Embeddings> RunBatches(backends::Task task, const std::vector<Encoding>& enc) const;

  const ModelConfig& config() const { return config_; }
  const Tokenizer& tokenizer() const { return *tokenizer_; }
  const backends::FallbackChain& backend() const { return *chain_; }
  const PipelineOptions& options() const { return options_; }
  int max_length() const { return max_length_; }

 private:
  // One text through the checks, LongTextCut and the tokenizer (EncodeTexts' body).
  StatusOr<Encoding> EncodeOne(const std::string& text, size_t i, const InputLimits& limits) const;
  Pipeline() = default;
  Status NeedKind(ModelKind kind, const char* what) const;

  PipelineOptions options_;
  ModelConfig config_;
  int max_length_ = 0;
  std::unique_ptr<Tokenizer> tokenizer_;
  std::unique_ptr<backends::FallbackChain> chain_;
};

}  // namespace encserve
