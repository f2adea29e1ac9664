#include "model/bert_weights.h"

#include <algorithm>
#include <cmath>
#include <string>

namespace encserve {
namespace {

class Reader {
 public:
  Reader(const SafeTensorsFile& file, std::string prefix, const kernels::KernelTable& kt)
      : file_(file), prefix_(std::move(prefix)), kt_(kt) {}

  StatusOr<std::vector<float>> Vec(const std::string& name, std::vector<int64_t> shape,
                                   bool prefixed = true) const {
    return file_.ReadF32(prefixed ? prefix_ + name : name, shape);
  }
  Status LayerNorm(const std::string& base, int h, std::vector<float>* g,
                   std::vector<float>* b) const {
    return ReadLayerNorm(file_, prefix_ + base, h, g, b);
  }
  // A Linear layer [n, k] with bias [n].
  StatusOr<LinearWeights> Linear(const std::string& base, int n, int k,
                                 const PrecisionOptions& precision, bool prefixed = true,
                                 const float* act_absmax = nullptr,
                                 const std::vector<double>* hessian = nullptr,
                                 ThreadPool* pool = nullptr) const {
    ASSIGN_OR_RETURN(auto w, Vec(base + ".weight", {n, k}, prefixed));
    ASSIGN_OR_RETURN(auto b, Vec(base + ".bias", {n}, prefixed));
    return MakeLinear(w.data(), b.data(), n, k, precision, kt_, act_absmax, hessian, pool);
  }

 private:
  const SafeTensorsFile& file_;
  std::string prefix_;
  const kernels::KernelTable& kt_;
};

}  // namespace

void ActivationStats::Observe(int layer, int gemm, const float* x, int m, int k) {
  if (static_cast<int>(absmax.size()) <= layer) absmax.resize(layer + 1);
  std::vector<float>& mx = absmax[layer][gemm];
  if (mx.empty()) mx.assign(k, 0.0f);
  for (int i = 0; i < m; ++i) {
    for (int c = 0; c < k; ++c)
      mx[c] = std::max(mx[c], std::fabs(x[static_cast<size_t>(i) * k + c]));
  }
}

const float* ActivationStats::Get(int layer, int gemm) const {
  if (layer >= static_cast<int>(absmax.size()) || absmax[layer][gemm].empty()) return nullptr;
  return absmax[layer][gemm].data();
}

void HessianStats::Observe(int layer, int gemm, const float* x, int m, int k) {
  if (static_cast<int>(h_.size()) <= layer) h_.resize(layer + 1);
  std::vector<double>& h = h_[layer][gemm];
  if (h.empty()) h.assign(static_cast<size_t>(k) * k, 0.0);
  // XᵀX = A · Aᵀ with A = Xᵀ [k, m]: the fp32 GEMM with A as both input and packed weights,
  // only the blocks on and below the diagonal (it is symmetric), row blocks spread over the pool.
  std::vector<float> xt(static_cast<size_t>(k) * m), prod(static_cast<size_t>(k) * k);
  constexpr int kTile = 32;  // transpose in tiles: both sides stay in cache lines
  for (int i0 = 0; i0 < m; i0 += kTile) {
    for (int c0 = 0; c0 < k; c0 += kTile) {
      for (int i = i0; i < std::min(m, i0 + kTile); ++i) {
        for (int c = c0; c < std::min(k, c0 + kTile); ++c)
          xt[static_cast<size_t>(c) * m + i] = x[static_cast<size_t>(i) * k + c];
      }
    }
  }
  const kernels::PackedF32 a = kernels::PackF32(xt.data(), nullptr, k, m, kernels_.gemm_nr);
  const int nr = kernels_.gemm_nr, rows = 8 * kernels_.gemm_mr;
  const int blocks = (k + rows - 1) / rows, threads = pool_.num_threads();
  pool_.ParallelFor(threads, [&](int t) {
    for (int b = t; b < blocks; b += threads) {  // interleaved: later blocks are wider
      const int r0 = b * rows, r1 = std::min(k, r0 + rows);
      const int n1 = std::min(k, (r1 + nr - 1) / nr * nr);
      kernels_.gemm_f32(xt.data() + static_cast<size_t>(r0) * m, m, r1 - r0, a,
                        prod.data() + static_cast<size_t>(r0) * k, k, 0, n1,
                        kernels::Epilogue::kBias);
    }
  });
  for (int i = 0; i < k; ++i) {  // the lower triangle; Finish() mirrors it
    for (int j = 0; j <= i; ++j)
      h[static_cast<size_t>(i) * k + j] += prod[static_cast<size_t>(i) * k + j];
  }
}

void HessianStats::Finish() {
  for (auto& layer : h_) {
    for (std::vector<double>& h : layer) {
      const int k = static_cast<int>(std::lround(std::sqrt(static_cast<double>(h.size()))));
      for (int i = 0; i < k; ++i) {
        for (int j = 0; j < i; ++j)
          h[static_cast<size_t>(j) * k + i] = h[static_cast<size_t>(i) * k + j];
      }
    }
  }
}

const std::vector<double>* HessianStats::Get(int layer, int gemm) const {
  if (layer >= static_cast<int>(h_.size()) || h_[layer][gemm].empty()) return nullptr;
  return &h_[layer][gemm];
}

StatusOr<std::string> FindBertPrefix(const SafeTensorsFile& file) {
  for (const char* p : {"", "bert.", "model."}) {
    if (file.Find(std::string(p) + "embeddings.word_embeddings.weight") != nullptr) {
      return std::string(p);
    }
  }
  return NotFound(file.path() +
                  ": no \"embeddings.word_embeddings.weight\" tensor (tried prefixes \"\", "
                  "\"bert.\", \"model.\"); is this a BERT checkpoint?");
}

Status ReadLayerNorm(const SafeTensorsFile& file, const std::string& name, int h,
                     std::vector<float>* gamma, std::vector<float>* beta) {
  const bool old = file.Find(name + ".gamma") != nullptr;
  ASSIGN_OR_RETURN(*gamma, file.ReadF32(name + (old ? ".gamma" : ".weight"), {h}));
  ASSIGN_OR_RETURN(*beta, file.ReadF32(name + (old ? ".beta" : ".bias"), {h}));
  return Status::Ok();
}

StatusOr<BertWeights> LoadBertWeights(const SafeTensorsFile& file, const ModelConfig& config,
                                      const kernels::KernelTable& kernels,
                                      const PrecisionOptions& precision,
                                      const ActivationStats* stats, const HessianStats* hessians,
                                      ThreadPool* pool) {
  const BertConfig& c = config.bert;
  ASSIGN_OR_RETURN(const std::string prefix, FindBertPrefix(file));
  Reader r(file, prefix, kernels);
  const int h = c.hidden_size, inter = c.intermediate_size;
  BertWeights w;
  ASSIGN_OR_RETURN(w.word_emb, r.Vec("embeddings.word_embeddings.weight", {c.vocab_size, h}));
  ASSIGN_OR_RETURN(w.pos_emb,
                   r.Vec("embeddings.position_embeddings.weight", {c.max_position_embeddings, h}));
  ASSIGN_OR_RETURN(w.type_emb,
                   r.Vec("embeddings.token_type_embeddings.weight", {c.type_vocab_size, h}));
  RETURN_IF_ERROR(r.LayerNorm("embeddings.LayerNorm", h, &w.emb_ln_gamma, &w.emb_ln_beta));
  for (int l = 0; l < c.num_layers; ++l) {
    const std::string base = "encoder.layer." + std::to_string(l) + ".";
    BertLayerWeights lw;
    // Head-interleaved rows (ops::Attention): per head its query, key and value rows, so that
    // a column range of whole heads is everything those heads' attention reads.
    const int d = c.head_dim();
    std::vector<float> qkv_w(static_cast<size_t>(3) * h * h), qkv_b(static_cast<size_t>(3) * h);
    int part_index = 0;
    for (const char* part : {"query", "key", "value"}) {
      const std::string name = base + "attention.self." + part;
      ASSIGN_OR_RETURN(auto wt, r.Vec(name + ".weight", {h, h}));
      ASSIGN_OR_RETURN(auto bs, r.Vec(name + ".bias", {h}));
      for (int row = 0; row < h; ++row) {
        const size_t to = static_cast<size_t>(row / d) * 3 * d + part_index * d + row % d;
        std::copy_n(wt.begin() + static_cast<long>(row) * h, h, qkv_w.begin() + to * h);
        qkv_b[to] = bs[row];
      }
      ++part_index;
    }
    auto absmax = [&](int gemm) { return stats ? stats->Get(l, gemm) : nullptr; };
    auto hess = [&](int gemm) { return hessians ? hessians->Get(l, gemm) : nullptr; };
    ASSIGN_OR_RETURN(lw.qkv, MakeLinear(qkv_w.data(), qkv_b.data(), 3 * h, h, precision, kernels,
                                        absmax(0), hess(0), pool));
    ASSIGN_OR_RETURN(lw.attn_out, r.Linear(base + "attention.output.dense", h, h, precision,
                                           /*prefixed=*/true, absmax(1), hess(1), pool));
    RETURN_IF_ERROR(
        r.LayerNorm(base + "attention.output.LayerNorm", h, &lw.ln1_gamma, &lw.ln1_beta));
    ASSIGN_OR_RETURN(lw.ffn_in, r.Linear(base + "intermediate.dense", inter, h, precision,
                                         /*prefixed=*/true, absmax(2), hess(2), pool));
    ASSIGN_OR_RETURN(lw.ffn_out, r.Linear(base + "output.dense", h, inter, precision,
                                          /*prefixed=*/true, absmax(3), hess(3), pool));
    RETURN_IF_ERROR(r.LayerNorm(base + "output.LayerNorm", h, &lw.ln2_gamma, &lw.ln2_beta));
    w.layers.push_back(std::move(lw));
  }
  if (config.kind == ModelKind::kCrossEncoder) {
    ASSIGN_OR_RETURN(w.pooler, r.Linear("pooler.dense", h, h, PrecisionOptions{}));
    ASSIGN_OR_RETURN(w.classifier, r.Linear("classifier", config.num_labels, h, PrecisionOptions{},
                                            /*prefixed=*/false));
  }
  return w;
}

}  // namespace encserve
