#include "model/bert.h"

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <thread>

#include "core/op_profile.h"
#include "model/linear.h"
#include "model/ops.h"

namespace encserve {

StatusOr<std::unique_ptr<BertModel>> BertModel::Load(const std::string& dir,
                                                     const kernels::KernelTable& kernels,
                                                     const PrecisionOptions& precision) {
  ASSIGN_OR_RETURN(ModelConfig config, LoadModelConfig(dir));
  const std::string path = (std::filesystem::path(dir) / "model.safetensors").string();
  if (!std::filesystem::exists(path)) {
    return NotFound("model folder " + dir + " has no model.safetensors");
  }
  ASSIGN_OR_RETURN(auto file, SafeTensorsFile::Open(path));
  const bool quantised = precision.precision == kernels::Precision::kInt8 ||
                         precision.precision == kernels::Precision::kInt4;
  ActivationStats stats;
  std::unique_ptr<ThreadPool> pool;
  std::unique_ptr<HessianStats> hessians;
  if (quantised) {
    // Calibration: the fp32 model on fixed pseudo-random token sequences measures each GEMM's
    // per-channel input range (data-free and deterministic; BERT's outlier channels are a
    // property of the weights, not of the text).
    ASSIGN_OR_RETURN(BertWeights fp32, LoadBertWeights(*file, config, kernels, PrecisionOptions{}));
    BertModel calib(config, std::move(fp32), kernels, PrecisionOptions{});
    RETURN_IF_ERROR(calib.Calibrate(&stats));
    if (precision.precision == kernels::Precision::kInt4 &&
        precision.int4_recipe == Int4Recipe::kGptq && !precision.calibration.empty()) {
      // GPTQ needs XᵀX of every GEMM's input: the fp32 model on the calibration sequences.
      pool = std::make_unique<ThreadPool>(
          static_cast<int>(std::clamp(std::thread::hardware_concurrency(), 1u, 8u)));
      hessians = std::make_unique<HessianStats>(kernels, *pool);
      RETURN_IF_ERROR(calib.Observe(precision.calibration, *pool, hessians.get()));
      hessians->Finish();
    }
  }
  ASSIGN_OR_RETURN(BertWeights weights,
                   LoadBertWeights(*file, config, kernels, precision, quantised ? &stats : nullptr,
                                   hessians.get(), pool.get()));
  return std::unique_ptr<BertModel>(
      new BertModel(std::move(config), std::move(weights), kernels, precision));
}

Status BertModel::Calibrate(ActivationStats* stats) const {
  const BertConfig& c = config_.bert;
  TokenBatch batch;
  uint32_t state = 12345;
  const int len = std::min(64, c.max_position_embeddings);
  for (int s = 0; s < 16; ++s) {
    std::vector<int32_t> ids(len), types(len, 0);
    for (int i = 0; i < len; ++i) {
      state = state * 1664525u + 1013904223u;  // LCG: same ids on every machine
      ids[i] = static_cast<int32_t>(state % static_cast<uint32_t>(c.vocab_size));
    }
    batch.Add(ids, types);
  }
  Workspace ws;
  ThreadPool pool(1);
  return Encode(batch, ws, pool, stats).status();
}

Status BertModel::Observe(const std::vector<std::vector<int32_t>>& sequences, ThreadPool& pool,
                          GemmObserver* observer) const {
  Workspace ws;
  TokenBatch batch;
  const int max_len = config_.bert.max_position_embeddings;
  for (size_t i = 0; i < sequences.size(); ++i) {
    std::vector<int32_t> ids = sequences[i];
    if (static_cast<int>(ids.size()) > max_len) ids.resize(max_len);
    if (!ids.empty()) batch.Add(ids, {});
    if ((batch.num_seqs() == 64 || i + 1 == sequences.size()) && batch.num_seqs() > 0) {
      RETURN_IF_ERROR(Encode(batch, ws, pool, observer).status());
      batch.Clear();
    }
  }
  return Status::Ok();
}

Status ValidateTokenBatch(const TokenBatch& batch, const BertConfig& c) {
  if (batch.num_seqs() <= 0) return InvalidArgument("empty batch");
  if (batch.type_ids.size() != batch.ids.size() ||
      static_cast<size_t>(batch.num_tokens()) != batch.ids.size()) {
    return InvalidArgument("token batch is inconsistent (ids, type ids and offsets disagree)");
  }
  for (int s = 0; s < batch.num_seqs(); ++s) {
    const int len = batch.offsets[s + 1] - batch.offsets[s];
    if (len <= 0 || len > c.max_position_embeddings) {
      return InvalidArgument("sequence " + std::to_string(s) + " has " + std::to_string(len) +
                             " tokens; the model accepts 1.." +
                             std::to_string(c.max_position_embeddings));
    }
  }
  for (size_t i = 0; i < batch.ids.size(); ++i) {
    if (batch.ids[i] < 0 || batch.ids[i] >= c.vocab_size) {
      return InvalidArgument("token id " + std::to_string(batch.ids[i]) +
                             " is outside the vocabulary");
    }
    if (batch.type_ids[i] < 0 || batch.type_ids[i] >= c.type_vocab_size) {
      return InvalidArgument("token type id " + std::to_string(batch.type_ids[i]) +
                             " is out of range");
    }
  }
  return Status::Ok();
}

double EncoderFlops(const BertConfig& c, const std::vector<int>& lengths) {
  const double h = c.hidden_size, inter = c.intermediate_size;
  double f = 0;
  for (int len : lengths) f += 2.0 * len * (4 * h * h + 2 * h * inter) + 4.0 * len * len * h;
  return f * c.num_layers;
}

Status BertModel::Validate(const TokenBatch& batch) const {
  return ValidateTokenBatch(batch, config_.bert);
}

namespace {

// Rows of FFN intermediate activations (1,536 floats each for MiniLM) computed before they are
// consumed: 128 rows = 0.8 MB, within a core's L2 with the two int8 weight matrices (0.6 MB
// each). The AMX GEMMs are fast enough that a call's fixed costs matter more at 128 rows than
// the L2 misses of 256 (measured, int8 seq16 b32: 5,250 unchunked vs 4,840 texts/s in chunks of
// 128), so they take larger chunks.
int FfnChunkRows(const kernels::KernelTable& kt) {
  return kt.isa == kernels::Isa::kAmx ? 384 : 128;
}

// Chunked FFN: one thread (a split batch's part, or a pool of one), int8 / int4 weights (small
// enough to stay in L2 across chunks; fp32 ones are not, and would be re-read per chunk), more
// rows than a chunk, and no observer (calibration reads the whole intermediate matrix).
bool ChunkFfn(const ThreadPool& pool, const BertLayerWeights& lw, int rows, int chunk_rows,
              const GemmObserver* observer) {
  const kernels::Precision p = lw.ffn_in.precision;
  return pool.num_threads() == 1 && observer == nullptr && rows > chunk_rows &&
         (p == kernels::Precision::kInt8 || p == kernels::Precision::kInt4);
}

}  // namespace

StatusOr<const float*> BertModel::Encode(const TokenBatch& batch, Workspace& ws, ThreadPool& pool,
                                         GemmObserver* observer) const {
  RETURN_IF_ERROR(Validate(batch));
  const BertConfig& c = config_.bert;
  const int t = batch.num_tokens(), h = c.hidden_size;
  ws.hidden.reserve_at_least(static_cast<size_t>(t) * h);
  ws.qkv.reserve_at_least(static_cast<size_t>(t) * 3 * h);
  ws.ctx.reserve_at_least(static_cast<size_t>(t) * h);
  ws.tmp.reserve_at_least(static_cast<size_t>(t) * h);
  ws.ffn.reserve_at_least(static_cast<size_t>(t) * c.intermediate_size);
  float* x = ws.hidden.data();

  // Embeddings: word + position (restarting per sequence) + token type, then LayerNorm.
  {
    const profile::Scope scope("embeddings");
    for (int s = 0; s < batch.num_seqs(); ++s) {
      for (int i = batch.offsets[s]; i < batch.offsets[s + 1]; ++i) {
        const float* we = weights_.word_emb.data() + static_cast<size_t>(batch.ids[i]) * h;
        const float* pe = weights_.pos_emb.data() + static_cast<size_t>(i - batch.offsets[s]) * h;
        const float* te = weights_.type_emb.data() + static_cast<size_t>(batch.type_ids[i]) * h;
        float* row = x + static_cast<size_t>(i) * h;
        for (int j = 0; j < h; ++j) row[j] = we[j] + pe[j] + te[j];
      }
    }
  }
  ops::LayerNorm(kernels_, pool, x, nullptr, weights_.emb_ln_gamma.data(),
                 weights_.emb_ln_beta.data(), c.layer_norm_eps, x, t, h);

  auto observe = [&](int layer, int gemm, const float* in, int k) {
    if (observer) observer->Observe(layer, gemm, in, t, k);
  };
  auto yield = [&ws] {
    if (ws.yield != nullptr) ws.yield->Yield();
  };
  for (int l = 0; l < c.num_layers; ++l) {
    const BertLayerWeights& lw = weights_.layers[l];
    yield();  // (between layers, their attention, projection and FFN, and FFN chunks)
    observe(l, 0, x, h);
    ops::QkvAttention(kernels_, pool, x, lw.qkv, ws.qkv.data(), batch.offsets.data(),
                      batch.num_seqs(), c.num_heads, c.head_dim(), ws.ctx.data());
    observe(l, 1, ws.ctx.data(), h);
    yield();
    ops::Linear(kernels_, pool, ws.ctx.data(), t, lw.attn_out, ws.tmp.data());
    ops::LayerNorm(kernels_, pool, ws.tmp.data(), x, lw.ln1_gamma.data(), lw.ln1_beta.data(),
                   c.layer_norm_eps, x, t, h);
    yield();
    observe(l, 2, x, h);
    if (const int chunk_rows = FfnChunkRows(kernels_);
        ChunkFfn(pool, lw, t, chunk_rows, observer)) {
      // FFN in (+ GELU) and FFN out chunk by chunk of rows through the same part of ws.ffn, so
      // that a chunk's intermediate activations stay in L2 between the two GEMMs. Rows are
      // computed independently: the same results as one pass.
      const int chunks = (t + chunk_rows - 1) / chunk_rows;
      for (int i = 0; i < chunks; ++i) {
        if (i > 0) yield();
        const int r0 = t * i / chunks, rows = t * (i + 1) / chunks - r0;  // even chunks
        ops::Linear(kernels_, pool, x + static_cast<size_t>(r0) * h, rows, lw.ffn_in, ws.ffn.data(),
                    kernels::Epilogue::kBiasGelu);
        ops::Linear(kernels_, pool, ws.ffn.data(), rows, lw.ffn_out,
                    ws.tmp.data() + static_cast<size_t>(r0) * h);
      }
    } else {
      ops::Linear(kernels_, pool, x, t, lw.ffn_in, ws.ffn.data(), kernels::Epilogue::kBiasGelu);
      observe(l, 3, ws.ffn.data(), c.intermediate_size);
      ops::Linear(kernels_, pool, ws.ffn.data(), t, lw.ffn_out, ws.tmp.data());
    }
    ops::LayerNorm(kernels_, pool, ws.tmp.data(), x, lw.ln2_gamma.data(), lw.ln2_beta.data(),
                   c.layer_norm_eps, x, t, h);
  }
  return static_cast<const float*>(x);
}

void BertModel::Pool(const TokenBatch& batch, const float* hidden, bool normalize,
                     float* out) const {
  const profile::Scope scope("pooling");
  const int h = hidden_size();
  for (int s = 0; s < batch.num_seqs(); ++s) {
    const int begin = batch.offsets[s], end = batch.offsets[s + 1];
    float* o = out + static_cast<size_t>(s) * h;
    switch (config_.pooling) {
      case PoolingMode::kCls:
        std::copy(hidden + static_cast<size_t>(begin) * h,
                  hidden + static_cast<size_t>(begin + 1) * h, o);
        break;
      case PoolingMode::kMean:
      case PoolingMode::kMax: {
        const bool mean = config_.pooling == PoolingMode::kMean;
        for (int j = 0; j < h; ++j) o[j] = mean ? 0.0f : -INFINITY;
        for (int i = begin; i < end; ++i) {
          const float* row = hidden + static_cast<size_t>(i) * h;
          for (int j = 0; j < h; ++j) o[j] = mean ? o[j] + row[j] : std::max(o[j], row[j]);
        }
        if (mean) {
          const float inv = 1.0f / static_cast<float>(end - begin);
          for (int j = 0; j < h; ++j) o[j] *= inv;
        }
        break;
      }
    }
    if (normalize) ops::L2Normalize(o, h);
  }
}

void BertModel::Classify(const TokenBatch& batch, const float* hidden, ThreadPool& pool,
                         float* logits) const {
  const int h = hidden_size(), n = batch.num_seqs();
  std::vector<float> cls(static_cast<size_t>(n) * h), pooled(static_cast<size_t>(n) * h);
  for (int s = 0; s < n; ++s) {
    std::copy_n(hidden + static_cast<size_t>(batch.offsets[s]) * h, h,
                cls.data() + static_cast<size_t>(s) * h);
  }
  ops::Linear(kernels_, pool, cls.data(), n, weights_.pooler, pooled.data());
  for (float& v : pooled) v = std::tanh(v);
  ops::Linear(kernels_, pool, pooled.data(), n, weights_.classifier, logits);
}

}  // namespace encserve
