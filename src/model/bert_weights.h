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
  LinearWeights qkv;       // [3H, H]: per head its query, key, value rows (ops::Attention)
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

// Sees the input of every encoder GEMM while BertModel::Encode runs (calibration).
class GemmObserver {
 public:
  virtual ~GemmObserver() = default;
  // x [m, k] is the input of GEMM `gemm` (0 = qkv, 1 = attn_out, 2 = ffn_in, 3 = ffn_out).
  virtual void Observe(int layer, int gemm, const float* x, int m, int k) = 0;
};

// Per-channel max |input| of each encoder GEMM, measured on calibration input with the fp32
// model; used to smooth the int8/int4 layers (see MakeLinear).
struct ActivationStats : GemmObserver {
  // [layer][gemm] → [k].
  std::vector<std::array<std::vector<float>, 4>> absmax;
  void Observe(int layer, int gemm, const float* x, int m, int k) override;
  const float* Get(int layer, int gemm) const;
};

// H = XᵀX [k, k] of each encoder GEMM's input over all calibration batches (GPTQ), computed
// with the fp32 GEMM of `kernels` on `pool` and summed in double.
class HessianStats : public GemmObserver {
 public:
  HessianStats(const kernels::KernelTable& kernels, ThreadPool& pool)
      : kernels_(kernels), pool_(pool) {}
  // Observe accumulates the lower triangles; Finish() (after the last Observe) fills the upper.
  void Observe(int layer, int gemm, const float* x, int m, int k) override;
  void Finish();
  const std::vector<double>* Get(int layer, int gemm) const;

 private:
  const kernels::KernelTable& kernels_;
  ThreadPool& pool_;
  std::vector<std::array<std::vector<double>, 4>> h_;
};

// The tensor-name prefix of a BERT checkpoint: "", "bert." (BertForSequenceClassification) or
// "model."; NotFound naming the file when it has no word embeddings under any of them.
StatusOr<std::string> FindBertPrefix(const SafeTensorsFile& file);
// A LayerNorm's [h] parameters at `name` (prefix included): "weight"/"bias", or "gamma"/"beta"
// in old checkpoints.
Status ReadLayerNorm(const SafeTensorsFile& file, const std::string& name, int h,
                     std::vector<float>* gamma, std::vector<float>* beta);

// Reads every tensor the config needs; a missing tensor or a wrong shape is an error naming it.
// The encoder's linear layers are stored in `precision`; embeddings, LayerNorms and the
// classification head stay fp32. stats / hessians / pool: see MakeLinear.
StatusOr<BertWeights> LoadBertWeights(const SafeTensorsFile& file, const ModelConfig& config,
                                      const kernels::KernelTable& kernels,
                                      const PrecisionOptions& precision,
                                      const ActivationStats* stats = nullptr,
                                      const HessianStats* hessians = nullptr,
                                      ThreadPool* pool = nullptr);

}  // namespace encserve
