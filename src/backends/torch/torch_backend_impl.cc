// The torch backend's forward (see torch_backend.h). Shapes: B sequences padded to L tokens,
// H hidden, nh heads of d = H / nh, I intermediate.
#include <ATen/Parallel.h>
#include <ATen/native/quantized/PackedParams.h>
#include <torch/torch.h>
#include <torch/version.h>

#include <cmath>
#include <limits>

#include "backends/common/gate.h"
#include "backends/common/host_bert.h"
#include "backends/torch/torch_backend.h"
#include "model/bert.h"

namespace encserve::backends {
namespace {

using kernels::Precision;

// One Linear layer: dense (fp32 / bf16) or PyTorch's dynamically quantised int8.
struct TorchLinear {
  torch::Tensor w, b;  // dense: w [out, in]
  c10::intrusive_ptr<LinearPackedParamsBase> packed;
  bool reduce_range = true;  // quantised: torch.ao.nn.quantized.dynamic.Linear passes True
  torch::Tensor operator()(const torch::Tensor& x) const {
    if (packed) return packed->apply_dynamic(x, reduce_range);
    return torch::nn::functional::linear(x, w, b);
  }
};

torch::Tensor FromHost(const std::vector<float>& v, std::vector<int64_t> shape) {
  return torch::from_blob(const_cast<float*>(v.data()), shape, torch::kFloat32).clone();
}

// Per-channel symmetric int8 weights, as PerChannelMinMaxObserver(qint8,
// per_channel_symmetric) computes them: scale = max|w_row| / 127.5, zero point 0.
TorchLinear QuantizeDynamic(const torch::Tensor& w, const torch::Tensor& b, bool reduce_range) {
  const torch::Tensor amax = w.abs().amax(/*dim=*/1);
  const torch::Tensor scale =
      (amax / 127.5).clamp_min(std::numeric_limits<float>::epsilon()).to(torch::kFloat64);
  const torch::Tensor zero = torch::zeros({w.size(0)}, torch::kInt64);
  const torch::Tensor qw = torch::quantize_per_channel(w, scale, zero, 0, torch::kQInt8);
  static auto prepack = c10::Dispatcher::singleton()
                            .findSchemaOrThrow("quantized::linear_prepack", "")
                            .typed<c10::intrusive_ptr<LinearPackedParamsBase>(
                                at::Tensor, c10::optional<at::Tensor>)>();
  TorchLinear l;
  l.packed = prepack.call(qw, b);
  l.reduce_range = reduce_range;
  return l;
}

TorchLinear MakeLinear(const torch::Tensor& w, const torch::Tensor& b, Precision p,
                       bool reduce_range) {
  if (p == Precision::kInt8) return QuantizeDynamic(w, b, reduce_range);
  const auto dtype = p == Precision::kBF16 ? torch::kBFloat16 : torch::kFloat32;
  return TorchLinear{w.to(dtype), b.to(dtype), {}};
}

TorchLinear HostToLinear(const HostLinear& l, Precision p, bool reduce_range) {
  return MakeLinear(FromHost(l.w, {l.out, l.in}), FromHost(l.b, {l.out}), p, reduce_range);
}

struct TorchLayer {
  TorchLinear qkv, attn_out, ffn_in, ffn_out;  // qkv: [3H, H] = query; key; value
  torch::Tensor ln1_g, ln1_b, ln2_g, ln2_b;
};

class TorchBackend final : public Backend {
 public:
  static StatusOr<std::unique_ptr<Backend>> Load(const CommonOptions& common,
                                                 const Section& section);
  const BackendInfo& info() const override { return info_; }
  StatusOr<Embeddings> Run(Task task, const TokenBatch& batch) const override;

 private:
  explicit TorchBackend(int replicas) : gate_(replicas) {}
  void Build(const HostBert& m);
  // [B, L] ids, type ids, mask → last hidden state [B, L, H] in the compute dtype.
  torch::Tensor Encode(const PaddedBatch& p) const;

  ModelConfig config_;
  CommonOptions common_;
  torch::Dtype dtype_ = torch::kFloat32;
  bool reduce_range_ = true;
  torch::Tensor word_, pos_, type_, emb_ln_g_, emb_ln_b_;
  std::vector<TorchLayer> layers_;
  TorchLinear pooler_, classifier_;  // fp32
  BackendInfo info_;
  mutable ConcurrencyGate gate_;
};

void TorchBackend::Build(const HostBert& m) {
  const BertConfig& c = m.config.bert;
  const int h = c.hidden_size;
  const Precision p = common_.precision;
  auto vec = [&](const std::vector<float>& v) { return FromHost(v, {h}).to(dtype_); };
  word_ = FromHost(m.word_emb, {c.vocab_size, h});
  pos_ = FromHost(m.pos_emb, {c.max_position_embeddings, h});
  type_ = FromHost(m.type_emb, {c.type_vocab_size, h});
  emb_ln_g_ = FromHost(m.emb_ln_g, {h});
  emb_ln_b_ = FromHost(m.emb_ln_b, {h});
  for (const HostLayer& y : m.layers) {
    TorchLayer t;
    const torch::Tensor qkv_w =
        torch::cat({FromHost(y.q.w, {h, h}), FromHost(y.k.w, {h, h}), FromHost(y.v.w, {h, h})}, 0);
    const torch::Tensor qkv_b =
        torch::cat({FromHost(y.q.b, {h}), FromHost(y.k.b, {h}), FromHost(y.v.b, {h})}, 0);
    t.qkv = MakeLinear(qkv_w, qkv_b, p, reduce_range_);
    t.attn_out = HostToLinear(y.attn_out, p, reduce_range_);
    t.ffn_in = HostToLinear(y.ffn_in, p, reduce_range_);
    t.ffn_out = HostToLinear(y.ffn_out, p, reduce_range_);
    t.ln1_g = vec(y.ln1_g);
    t.ln1_b = vec(y.ln1_b);
    t.ln2_g = vec(y.ln2_g);
    t.ln2_b = vec(y.ln2_b);
    layers_.push_back(std::move(t));
  }
  if (m.config.kind == ModelKind::kCrossEncoder) {
    pooler_ = HostToLinear(m.pooler, Precision::kF32, false);
    classifier_ = HostToLinear(m.classifier, Precision::kF32, false);
  }
}

torch::Tensor TorchBackend::Encode(const PaddedBatch& p) const {
  namespace F = torch::nn::functional;
  const BertConfig& c = config_.bert;
  const int64_t b = p.batch, l = p.seq, h = c.hidden_size, nh = c.num_heads, d = c.head_dim();
  const auto i64 = torch::TensorOptions().dtype(torch::kInt64);
  const torch::Tensor ids = torch::from_blob(const_cast<int64_t*>(p.ids.data()), {b, l}, i64);
  const torch::Tensor types =
      torch::from_blob(const_cast<int64_t*>(p.type_ids.data()), {b, l}, i64);
  const torch::Tensor mask = torch::from_blob(const_cast<int64_t*>(p.mask.data()), {b, l}, i64);
  // Embeddings and their LayerNorm in fp32, then the encoder in the compute dtype.
  torch::Tensor x = word_.index({ids}) + pos_.slice(0, 0, l).unsqueeze(0) + type_.index({types});
  x = F::layer_norm(
          x, F::LayerNormFuncOptions({h}).weight(emb_ln_g_).bias(emb_ln_b_).eps(c.layer_norm_eps))
          .to(dtype_);
  // Additive attention mask [B, 1, 1, L]: 0 for tokens, -1e30 for padding (finite in bf16
  // too: the float lowest rounds to -inf there, and 0 * -inf would be NaN).
  const torch::Tensor add_mask = ((1 - mask).to(dtype_) * -1e30).view({b, 1, 1, l});
  const double scale = 1.0 / std::sqrt(static_cast<double>(d));
  for (const TorchLayer& t : layers_) {
    // [B, L, 3H] → [3, B, nh, L, d]
    const torch::Tensor qkv = t.qkv(x).view({b, l, 3, nh, d}).permute({2, 0, 3, 1, 4});
    const torch::Tensor scores = torch::matmul(qkv[0], qkv[1].transpose(-1, -2)) * scale + add_mask;
    const torch::Tensor ctx =
        torch::matmul(torch::softmax(scores, -1), qkv[2]).transpose(1, 2).reshape({b, l, h});
    x = F::layer_norm(
        t.attn_out(ctx) + x,
        F::LayerNormFuncOptions({h}).weight(t.ln1_g).bias(t.ln1_b).eps(c.layer_norm_eps));
    const torch::Tensor inter = torch::gelu(t.ffn_in(x));  // exact (erf) GELU
    x = F::layer_norm(
        t.ffn_out(inter) + x,
        F::LayerNormFuncOptions({h}).weight(t.ln2_g).bias(t.ln2_b).eps(c.layer_norm_eps));
  }
  return x;
}

StatusOr<Embeddings> TorchBackend::Run(Task task, const TokenBatch& batch) const {
  if (task == Task::kLogits && config_.kind != ModelKind::kCrossEncoder) {
    return FailedPrecondition("this model has no classification head (not a cross-encoder)");
  }
  RETURN_IF_ERROR(ValidateTokenBatch(batch, config_.bert));
  ConcurrencyGate::Pass pass = gate_.Enter();
  try {
    c10::InferenceMode inference;
    // Per calling thread (OpenMP), and only when it changes: at::set_num_threads also clears
    // oneDNN's primitive cache, which would rebuild every bf16/int8 matmul on every batch.
    if (at::get_num_threads() != common_.threads) at::set_num_threads(common_.threads);
    const PaddedBatch p = PadBatch(batch, config_.bert.pad_token_id);
    const torch::Tensor hidden = Encode(p).to(torch::kFloat32).contiguous();
    if (task == Task::kEmbed) {
      return PoolPadded(hidden.data_ptr<float>(), p, config_.bert.hidden_size, config_.pooling);
    }
    const torch::Tensor cls = hidden.select(1, 0);  // [B, H]
    const torch::Tensor logits = classifier_(torch::tanh(pooler_(cls))).contiguous();
    Embeddings out = Embeddings::Zeros(p.batch, config_.num_labels);
    std::copy_n(logits.data_ptr<float>(), out.data.size(), out.data.begin());
    return out;
  } catch (const std::exception& e) {
    return Internal(std::string("torch: ") + e.what());
  }
}

StatusOr<std::unique_ptr<Backend>> TorchBackend::Load(const CommonOptions& common,
                                                      const Section& section) {
  const BackendSpec& spec = *FindBackend("torch");
  const std::string engine = OptionValue(spec, section, "quantized_engine");
  ASSIGN_OR_RETURN(
      const bool reduce_range,
      ParseBoolOption("torch", "reduce_range", OptionValue(spec, section, "reduce_range")));
  ASSIGN_OR_RETURN(HostBert m, LoadHostBert(common.model_dir));
  std::unique_ptr<TorchBackend> t(new TorchBackend(common.replicas));
  t->config_ = m.config;
  t->common_ = common;
  t->dtype_ = common.precision == Precision::kBF16 ? torch::kBFloat16 : torch::kFloat32;
  t->reduce_range_ = reduce_range;
  try {
    c10::InferenceMode inference;
    if (common.precision == Precision::kInt8) {
      at::globalContext().setQEngine(engine == "qnnpack" ? at::QEngine::QNNPACK
                                                         : at::QEngine::ONEDNN);
    }
    t->Build(m);
  } catch (const std::exception& e) {
    return Internal(std::string("torch: loading the model failed: ") + e.what());
  }
  BackendInfo& i = t->info_;
  i.name = "torch";
  i.device = "cpu";
  i.precision = kernels::PrecisionName(common.precision);
  const std::string version = "libtorch " + std::to_string(TORCH_VERSION_MAJOR) + "." +
                              std::to_string(TORCH_VERSION_MINOR) + "." +
                              std::to_string(TORCH_VERSION_PATCH);
  i.library = version;
  i.fp32_kernels = version;
  if (common.precision == Precision::kInt8) {
    i.quant_kernels = "dynamic int8 (" + engine + (reduce_range ? ", 7-bit activations)" : ")");
  }
  DescribeModel(m.config, &i);
  i.wants_padded_batches = true;
  i.max_concurrent_batches = common.replicas;
  i.description = i.precision + ", " + version + ", " + std::to_string(common.replicas) +
                  " batch(es) at once x " + std::to_string(common.threads) +
                  " intra-op thread(s), padded batches";
  return std::unique_ptr<Backend>(std::move(t));
}

}  // namespace

StatusOr<std::unique_ptr<Backend>> LoadTorchBackend(const CommonOptions& common,
                                                    const Section& section) {
  return TorchBackend::Load(common, section);
}

}  // namespace encserve::backends
