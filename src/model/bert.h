// The BERT encoder (fp32) over a padding-free batch, plus its heads: pooling (mean / CLS /
// max) with optional L2 normalisation for embeddings, and pooler (tanh) + classifier for
// cross-encoders.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "core/aligned_buffer.h"
#include "core/batch.h"
#include "core/thread_pool.h"
#include "core/yield_point.h"
#include "kernels/kernels.h"
#include "model/bert_weights.h"
#include "model/config.h"

namespace encserve {

// Scratch memory for one forward pass; one per engine replica (not shared between threads).
struct Workspace {
  AlignedBuffer<float> hidden, qkv, ctx, tmp, ffn;
  // Called between the forward pass's steps when set (core/yield_point.h: a batch that may be
  // paused for more urgent work); set by the backend for each pass.
  const core::YieldHook* yield = nullptr;
};

// Checks a batch against a model: consistent offsets, every sequence 1..max_positions tokens,
// ids inside the vocabulary, type ids in range. Every backend runs it before computing.
Status ValidateTokenBatch(const TokenBatch& batch, const BertConfig& config);

// 2 × the multiply-adds of one encoder pass over sequences of these lengths: per layer the four
// h × h projections and the two FFN GEMMs (2·L·(4h² + 2·h·I)) and attention (Q·Kᵀ and P·V,
// 4·L²·h). The efficiency figures of `encserve bench-engine` divide this by the time.
double EncoderFlops(const BertConfig& config, const std::vector<int>& lengths);

class BertModel {
 public:
  // Loads <dir>/config.json (+ sentence-transformers files) and <dir>/model.safetensors, packed
  // for `kernels`.
  static StatusOr<std::unique_ptr<BertModel>> Load(const std::string& dir,
                                                   const kernels::KernelTable& kernels,
                                                   const PrecisionOptions& precision = {});

  const ModelConfig& config() const { return config_; }
  const kernels::KernelTable& kernels() const { return kernels_; }
  const PrecisionOptions& precision() const { return precision_; }
  int hidden_size() const { return config_.bert.hidden_size; }

  // Validates ids (range, lengths) and runs the encoder; returns the final hidden states
  // [num_tokens, H], valid until the next call with the same workspace.
  // With an observer, shows it the input of every encoder GEMM (calibration).
  StatusOr<const float*> Encode(const TokenBatch& batch, Workspace& ws, ThreadPool& pool,
                                GemmObserver* observer = nullptr) const;

  // What Encode checks first: a non-empty batch, consistent offsets, every sequence 1 ..
  // max_position_embeddings tokens, ids and type ids in range (errors name the sequence).
  Status Validate(const TokenBatch& batch) const;

  // Sentence embeddings [num_seqs, H] from Encode()'s output (pooling + optional normalise).
  void Pool(const TokenBatch& batch, const float* hidden, bool normalize, float* out) const;

  // Cross-encoder logits [num_seqs, num_labels] from Encode()'s output.
  void Classify(const TokenBatch& batch, const float* hidden, ThreadPool& pool,
                float* logits) const;

 private:
  BertModel(ModelConfig config, BertWeights weights, const kernels::KernelTable& kernels,
            PrecisionOptions precision)
      : config_(std::move(config)),
        weights_(std::move(weights)),
        kernels_(kernels),
        precision_(precision) {}
  Status Calibrate(ActivationStats* stats) const;
  // Runs `sequences` (token ids, type 0) through the model in batches, observed.
  Status Observe(const std::vector<std::vector<int32_t>>& sequences, ThreadPool& pool,
                 GemmObserver* observer) const;

  ModelConfig config_;
  BertWeights weights_;
  const kernels::KernelTable& kernels_;
  PrecisionOptions precision_;
};

}  // namespace encserve
