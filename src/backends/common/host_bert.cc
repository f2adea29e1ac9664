#include "backends/common/host_bert.h"

#include <algorithm>
#include <cmath>

#include "model/bert_weights.h"
#include "model/safetensors.h"

namespace encserve::backends {
namespace {

class Reader {
 public:
  Reader(const SafeTensorsFile& file, std::string prefix)
      : file_(file), prefix_(std::move(prefix)) {}
  StatusOr<std::vector<float>> Vec(const std::string& name, std::vector<int64_t> shape,
                                   bool prefixed = true) const {
    return file_.ReadF32(prefixed ? prefix_ + name : name, shape);
  }
  Status LayerNorm(const std::string& base, int h, std::vector<float>* g,
                   std::vector<float>* b) const {
    return ReadLayerNorm(file_, prefix_ + base, h, g, b);
  }
  StatusOr<HostLinear> Linear(const std::string& base, int out, int in,
                              bool prefixed = true) const {
    HostLinear l;
    l.out = out;
    l.in = in;
    ASSIGN_OR_RETURN(l.w, Vec(base + ".weight", {out, in}, prefixed));
    ASSIGN_OR_RETURN(l.b, Vec(base + ".bias", {out}, prefixed));
    return l;
  }

 private:
  const SafeTensorsFile& file_;
  std::string prefix_;
};

}  // namespace

StatusOr<HostBert> LoadHostBert(const std::string& model_dir) {
  HostBert m;
  ASSIGN_OR_RETURN(m.config, LoadModelConfig(model_dir));
  ASSIGN_OR_RETURN(auto file, SafeTensorsFile::Open(model_dir + "/model.safetensors"));
  ASSIGN_OR_RETURN(std::string prefix, FindBertPrefix(*file));
  const Reader r(*file, prefix);
  const BertConfig& c = m.config.bert;
  const int h = c.hidden_size, inter = c.intermediate_size;
  ASSIGN_OR_RETURN(m.word_emb, r.Vec("embeddings.word_embeddings.weight", {c.vocab_size, h}));
  ASSIGN_OR_RETURN(m.pos_emb,
                   r.Vec("embeddings.position_embeddings.weight", {c.max_position_embeddings, h}));
  ASSIGN_OR_RETURN(m.type_emb,
                   r.Vec("embeddings.token_type_embeddings.weight", {c.type_vocab_size, h}));
  RETURN_IF_ERROR(r.LayerNorm("embeddings.LayerNorm", h, &m.emb_ln_g, &m.emb_ln_b));
  for (int l = 0; l < c.num_layers; ++l) {
    const std::string base = "encoder.layer." + std::to_string(l) + ".";
    HostLayer y;
    ASSIGN_OR_RETURN(y.q, r.Linear(base + "attention.self.query", h, h));
    ASSIGN_OR_RETURN(y.k, r.Linear(base + "attention.self.key", h, h));
    ASSIGN_OR_RETURN(y.v, r.Linear(base + "attention.self.value", h, h));
    ASSIGN_OR_RETURN(y.attn_out, r.Linear(base + "attention.output.dense", h, h));
    RETURN_IF_ERROR(r.LayerNorm(base + "attention.output.LayerNorm", h, &y.ln1_g, &y.ln1_b));
    ASSIGN_OR_RETURN(y.ffn_in, r.Linear(base + "intermediate.dense", inter, h));
    ASSIGN_OR_RETURN(y.ffn_out, r.Linear(base + "output.dense", h, inter));
    RETURN_IF_ERROR(r.LayerNorm(base + "output.LayerNorm", h, &y.ln2_g, &y.ln2_b));
    m.layers.push_back(std::move(y));
  }
  if (m.config.kind == ModelKind::kCrossEncoder) {
    ASSIGN_OR_RETURN(m.pooler, r.Linear("pooler.dense", h, h));
    ASSIGN_OR_RETURN(m.classifier,
                     r.Linear("classifier", m.config.num_labels, h, /*prefixed=*/false));
  }
  return m;
}

PaddedBatch PadBatch(const TokenBatch& batch, int pad_token_id) {
  PaddedBatch p;
  p.batch = batch.num_seqs();
  for (int s = 0; s < p.batch; ++s) p.seq = std::max(p.seq, batch.length(s));
  const size_t n = static_cast<size_t>(p.batch) * p.seq;
  p.ids.assign(n, pad_token_id);
  p.type_ids.assign(n, 0);
  p.mask.assign(n, 0);
  p.lengths.resize(p.batch);
  for (int s = 0; s < p.batch; ++s) {
    p.lengths[s] = batch.length(s);
    for (int i = 0; i < p.lengths[s]; ++i) {
      const size_t at = static_cast<size_t>(s) * p.seq + i;
      p.ids[at] = batch.ids[batch.offsets[s] + i];
      p.type_ids[at] = batch.type_ids[batch.offsets[s] + i];
      p.mask[at] = 1;
    }
  }
  return p;
}

Embeddings PoolPadded(const float* hidden, const PaddedBatch& batch, int hidden_size,
                      PoolingMode mode) {
  const int h = hidden_size;
  Embeddings out = Embeddings::Zeros(batch.batch, h);
  for (int s = 0; s < batch.batch; ++s) {
    const float* first = hidden + static_cast<size_t>(s) * batch.seq * h;
    float* o = out.row(s);
    if (mode == PoolingMode::kCls) {
      std::copy_n(first, h, o);
      continue;
    }
    const bool mean = mode == PoolingMode::kMean;
    if (!mean) std::fill_n(o, h, -INFINITY);
    for (int i = 0; i < batch.lengths[s]; ++i) {
      const float* row = first + static_cast<size_t>(i) * h;
      for (int j = 0; j < h; ++j) o[j] = mean ? o[j] + row[j] : std::max(o[j], row[j]);
    }
    if (mean) {
      const float inv = 1.0f / static_cast<float>(batch.lengths[s]);
      for (int j = 0; j < h; ++j) o[j] *= inv;
    }
  }
  return out;
}

void DescribeModel(const ModelConfig& config, BackendInfo* info) {
  info->kind = config.kind;
  info->hidden_size = config.bert.hidden_size;
  info->num_labels = config.num_labels;
  info->labels = config.labels.empty() ? DefaultLabels(config.num_labels) : config.labels;
  info->max_positions = config.bert.max_position_embeddings;
}

}  // namespace encserve::backends
