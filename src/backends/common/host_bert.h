// Plain fp32 BERT weights in Hugging Face layout, read from model.safetensors, for backends
// that build the model in another library (torch, mlx): Linear weights [out, in] row-major as
// stored, LayerNorm gamma/beta, embeddings; the pooler and classifier of cross-encoders.
// Also the shared padding and pooling of backends that run padded batches.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "backends/backend.h"
#include "core/batch.h"
#include "core/status.h"
#include "model/config.h"

namespace encserve::backends {

struct HostLinear {
  std::vector<float> w;  // [out, in]
  std::vector<float> b;  // [out]
  int out = 0, in = 0;
};

struct HostLayer {
  HostLinear q, k, v, attn_out, ffn_in, ffn_out;
  std::vector<float> ln1_g, ln1_b, ln2_g, ln2_b;  // [H]: after attention, after the FFN
};

struct HostBert {
  ModelConfig config;
  std::vector<float> word_emb;  // [vocab, H]
  std::vector<float> pos_emb;   // [max_pos, H]
  std::vector<float> type_emb;  // [type_vocab, H]
  std::vector<float> emb_ln_g, emb_ln_b;
  std::vector<HostLayer> layers;
  HostLinear pooler, classifier;  // cross-encoders only
};

// Reads <model_dir>/config.json (+ sentence-transformers files) and model.safetensors.
// A missing tensor or a wrong shape is an error naming it.
StatusOr<HostBert> LoadHostBert(const std::string& model_dir);

// A padding-free batch padded to [batch, seq] (seq = its longest sequence), row-major.
struct PaddedBatch {
  int batch = 0, seq = 0;
  std::vector<int64_t> ids;       // pad_token_id after each sequence's end
  std::vector<int64_t> type_ids;  // 0 after the end
  std::vector<int64_t> mask;      // 1 for tokens, 0 for padding
  std::vector<int> lengths;       // [batch]
};
PaddedBatch PadBatch(const TokenBatch& batch, int pad_token_id);

// Pools padded hidden states [batch, seq, hidden] over each sequence's own tokens (mean, CLS
// or max, as the model's pooling says): the Task::kEmbed rows, not normalised.
Embeddings PoolPadded(const float* hidden, const PaddedBatch& batch, int hidden_size,
                      PoolingMode mode);

// The model-dependent fields of BackendInfo (kind, sizes, labels, max_positions).
void DescribeModel(const ModelConfig& config, BackendInfo* info);

}  // namespace encserve::backends
