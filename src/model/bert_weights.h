// BERT weights read from safetensors and packed for one kernel table. Tensor names follow
// Hugging Face: "embeddings.*", "encoder.layer.N.*", "pooler.dense.*", with an optional
// "bert." (BertForSequenceClassification) or "model." prefix; "classifier.*" unprefixed.
#pragma once

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

// Reads every tensor the config needs; a missing tensor or a wrong shape is an error naming it.
// The encoder's linear layers are stored in `precision`; embeddings, LayerNorms and the
// classification head stay fp32.
StatusOr<BertWeights> LoadBertWeights(const SafeTensorsFile& file, const ModelConfig& config,
                                      const kernels::KernelTable& kernels,
                                      const PrecisionOptions& precision);

}  // namespace encserve
