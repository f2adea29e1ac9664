// Engine: the library's batched inference API. Owns one BertModel (weights shared, read-only)
// and `replicas` independent executors, each a workspace plus a pool of `threads` threads.
//
// Thread safety: every public method may be called from any number of threads at once.
// Tokenisation runs on the caller's thread; each batch then takes a free replica (callers
// wait when all are busy), so at most `replicas` batches compute concurrently. Results depend
// only on the inputs: deterministic for a given ISA and thread count.
#pragma once

#include <condition_variable>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "core/thread_pool.h"
#include "kernels/cpu_features.h"
#include "model/bert.h"
#include "tokenizer/tokenizer.h"

namespace encserve {

struct EngineOptions {
  std::string model_dir;
  int threads = 1;  // threads per replica (the calling thread counts as one)
  // With threads > 1, a batch of several sequences is split into `threads` runs of whole
  // sequences with about equal token counts, each run through the model on its own thread
  // (single-threaded kernels, its own workspace): no barrier per op and every thread's
  // activations stay in its own core's caches. Batches too small to split (see SplitBatch) and
  // split_batches = false use intra-op parallelism (every op split over the threads) instead.
  // Results are the same either way (every row's arithmetic is independent of the others).
  bool split_batches = true;
  int replicas = 1;                 // concurrent batches
  std::optional<kernels::Isa> isa;  // default: kernels::ActiveIsa()
  kernels::Precision precision = kernels::Precision::kF32;
  int group_size = 64;  // int4 only
  // int4 only: how the weights are quantised at load time (model/linear.h). kGptq calibrates on
  // VocabularyCalibration (engine/calibration.h) and adds a few seconds to the load.
  Int4Recipe int4_recipe = Int4Recipe::kGptq;
  int max_batch_size = 64;        // sequences per forward pass (larger inputs are chunked)
  int max_batch_tokens = 8192;    // tokens per forward pass
  std::optional<int> max_length;  // truncation length; default: the model's max_seq_length
};

// Row-major [rows, dim] embeddings.
struct Embeddings {
  int rows = 0;
  int dim = 0;
  std::vector<float> data;
  const float* row(int i) const { return data.data() + static_cast<size_t>(i) * dim; }
};

enum class ScoreActivation { kNone, kSigmoid };

using TextPair = std::pair<std::string, std::string>;

// One pair score from a cross-encoder's logits [num_labels]: with `activate`, the sigmoid of
// the logit (num_labels == 1) or the softmax probability of the last label; without, the
// (last) raw logit.
float ScoreFromLogits(const float* logits, int num_labels, bool activate);

// The distinct texts of `pairs` (first appearance order) and, per pair, the rows of its two
// texts in that list: a bi-encoder embeds each text once (a rerank repeats its query).
struct PairTexts {
  std::vector<std::string> texts;
  std::vector<std::pair<int, int>> rows;
};
PairTexts DedupePairTexts(const std::vector<TextPair>& pairs);

// Sequence-parallel split of a batch: boundaries 0 = b[0] < b[1] < … < b[p] = num_seqs of
// p ≤ max_parts contiguous runs of sequences with about equal token counts (each run at least
// min_tokens_per_part tokens). {0, num_seqs} (no split) when fewer than two runs qualify.
std::vector<int> SplitBatch(const std::vector<int>& offsets, int max_parts,
                            int min_tokens_per_part);

class Engine {
 public:
  static StatusOr<std::unique_ptr<Engine>> Load(const EngineOptions& options);
  ~Engine();

  // Sentence embeddings (bi-encoder models). `normalize` defaults to the model's setting
  // (sentence-transformers Normalize module). An empty list is an error.
  StatusOr<Embeddings> Embed(const std::vector<std::string>& texts,
                             std::optional<bool> normalize = std::nullopt) const;

  // One relevance score per (query, passage) pair. Cross-encoder: the logit (num_labels = 1,
  // optionally through a sigmoid) or the softmax probability of the last label (num_labels > 1).
  // Bi-encoder: cosine similarity of the two normalised embeddings.
  StatusOr<std::vector<float>> Score(const std::vector<TextPair>& pairs,
                                     ScoreActivation activation = ScoreActivation::kNone) const;

  // Raw classifier logits [n, num_labels] (cross-encoders only).
  StatusOr<Embeddings> Logits(const std::vector<TextPair>& pairs) const;

  // Lower level, for the server: already-tokenised input (one batch, no chunking).
  StatusOr<Embeddings> EmbedBatch(const TokenBatch& batch, bool normalize) const;
  StatusOr<Embeddings> LogitsBatch(const TokenBatch& batch) const;

  const ModelConfig& config() const { return model_->config(); }
  const Tokenizer& tokenizer() const { return *tokenizer_; }
  const kernels::KernelTable& kernels() const { return model_->kernels(); }
  const EngineOptions& options() const { return options_; }
  int max_length() const { return max_length_; }

 private:
  struct Replica;
  class ReplicaLease;
  Engine() = default;
  ReplicaLease Acquire() const;
  // Encodes batch on replica r (split or intra-op parallel) and calls
  // finish(sub_batch, hidden, first_seq, pool) for each part: hidden holds sub_batch's rows,
  // whose first sequence is batch's sequence first_seq.
  template <typename Finish>
  Status RunBatch(const TokenBatch& batch, Replica& r, Finish&& finish) const;
  // Splits encodings into batches within the limits and runs fn(batch, first_index) on each.
  template <typename Fn>
  Status ForEachBatch(const std::vector<Encoding>& encodings, Fn&& fn) const;

  EngineOptions options_;
  int max_length_ = 0;
  std::unique_ptr<Tokenizer> tokenizer_;
  std::unique_ptr<BertModel> model_;
  std::vector<std::unique_ptr<Replica>> replicas_;
  mutable std::mutex mu_;
  mutable std::condition_variable cv_;
  mutable std::vector<Replica*> free_;
};

}  // namespace encserve
