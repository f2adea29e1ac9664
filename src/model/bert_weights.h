// BERT weights read from safetensors and packed for one kernel table. Tensor names follow
// Hugging Face: "embeddings.*", "encoder.layer.N.*", "pooler.dense.*", with an optional
// "bert." (BertForSequenceClassification) or "model." prefix; "classifier.*" unprefixed.
#pragma once

#include <array>
#include <vector>

#include "kernels/kernels.h"
#include "model/config.h"
#include "model/linear.h"
#include "model/safetensors.h"

namespace encserve {

struct BertLayerWeights {
  LinearWeights qkv;       // [3H, H]: query, key, value rows stacked
  LinearWeights attn_out;  // [H, H]
  LinearWeights ffn_in;    // [I, H], GELU after
  LinearWeights ffn_out;   // [H, I]
  std::vector<float> ln1_gamma, ln1_beta, ln2_gamma, ln2_beta;  // [H]
};

struct BertWeights {
  std::vector<float> word_emb;  // [vocab, H]
  std::vector<float> pos_emb;   // [max_pos, H]
  std::vector<float> type_emb;  // [type_vocab, H]
  std::vector<float> emb_ln_gamma, emb_ln_beta;
  std::vector<BertLayerWeights> layers;
  LinearWeights pooler;      // [H, H], tanh after (cross-encoder only; always fp32)
  LinearWeights classifier;  // [num_labels, H] (cross-encoder only; always fp32)
};

// Per-channel max |input| of each encoder GEMM, measured on calibration input with the fp32
// model; used to smooth the int8/int4 layers (see MakeLinear).
struct ActivationStats {
  // [layer][gemm] → [k] with gemm 0 = qkv, 1 = attn_out, 2 = ffn_in, 3 = ffn_out.
  std::vector<std::array<std::vector<float>, 4>> absmax;
  void Observe(int layer, int gemm, const float* x, int m, int k);
  const float* Get(int layer, int gemm) const;
};

// Reads every tensor the config needs; a missing tensor or a wrong shape is an error naming it.
// The encoder's linear layers are stored in `precision`; embeddings, LayerNorms and the
// classification head stay fp32.
StatusOr<BertWeights> LoadBertWeights(const SafeTensorsFile& file, const ModelConfig& config,
                                      const kernels::KernelTable& kernels,
                                      const PrecisionOptions& precision,
                                      const ActivationStats* stats = nullptr);

}  // namespace encserve
