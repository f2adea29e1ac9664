// The mlx backend (see mlx_backend.h): the BERT forward built from MLX C++ ops on MLX's CPU
// device, from the same model.safetensors as the native engine (common/host_bert.h).
//
// Precisions: fp32; bf16 / fp16 cast every encoder parameter (embeddings, LayerNorms, Linears)
// and run the activations in that dtype (what `model.set_dtype(mx.bfloat16)` does in MLX
// Python; LayerNorm statistics and the attention softmax are computed in fp32 inside MLX);
// int8 / int4 quantise every encoder Linear with mlx::core::quantize (affine, one scale and
// bias per `group_size` inputs) and run quantized_matmul, everything else fp32. The pooler and
// classifier of cross-encoders are fp32 in every precision.
//
// Threading (MLX 0.32, CPU): every op of a stream runs on that stream's one worker thread; the
// CPU backend has no intra-op thread pool and no thread-count setting. bf16/fp16 GEMMs and
// quantized_matmul are MLX's own single-threaded loops; fp32 GEMMs call cblas_sgemm, which is
// the wheel's bundled netlib reference BLAS (single-threaded) unless the process bound another
// BLAS first (mlx_blas.h): with OpenBLAS, common.threads is applied to it. info().description
// says which. Evaluating from several threads at once is not supported: Run holds a mutex, and
// every op runs on one stream created at load (new_thread_unsafe_stream: usable from whichever
// thread calls Run).
#include <cmath>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include <mlx/mlx.h>
#include <mlx/scheduler.h>

#include "backends/common/host_bert.h"
#include "backends/mlx/mlx_backend.h"
#include "backends/mlx/mlx_blas.h"
#include "model/bert.h"

namespace encserve::backends {
namespace {

namespace mx = mlx::core;
using kernels::Precision;

// How the encoder's Linears and activations are stored.
struct Numerics {
  mx::Dtype dtype = mx::float32;  // activations and non-quantised parameters of the encoder
  int bits = 0;                   // 8 or 4 for quantised Linears, 0 for none
  int group_size = 64;
};

struct Linear {
  mx::array w;       // [out, in] in Numerics::dtype, or packed uint32 [out, in * bits / 32]
  mx::array scales;  // quantised: [out, in / group_size]; else an unused scalar
  mx::array biases;  // quantised: [out, in / group_size]; else an unused scalar
  mx::array b;       // [out]
  int bits = 0, group_size = 0;

  mx::array operator()(const mx::array& x) const {
    if (bits == 0) return mx::addmm(b, x, mx::transpose(w));
    return mx::add(mx::quantized_matmul(x, w, scales, biases, /*transpose=*/true, group_size, bits),
                   b);
  }
};

struct Layer {
  Linear qkv, attn_out, ffn_in, ffn_out;  // qkv: query, key, value fused into [3H, H]
  mx::array ln1_g, ln1_b, ln2_g, ln2_b;
};

struct Model {
  mx::array word, pos, type, emb_g, emb_b;
  std::vector<Layer> layers;
  std::optional<Linear> pooler, classifier;  // cross-encoders; always fp32
};

mx::array Vec(const std::vector<float>& v, mx::Dtype dtype) {
  return mx::astype(mx::array(v.data(), {static_cast<int>(v.size())}, mx::float32), dtype);
}

mx::array Mat(const std::vector<float>& v, int rows, int cols, mx::Dtype dtype) {
  return mx::astype(mx::array(v.data(), {rows, cols}, mx::float32), dtype);
}

// A Linear in `n`'s numerics (quantised when n.bits > 0; biases stay fp32 then).
Linear MakeLinear(const std::vector<float>& w, const std::vector<float>& b, int out, int in,
                  const Numerics& n) {
  const mx::array wf = mx::array(w.data(), {out, in}, mx::float32);
  if (n.bits == 0) {
    return Linear{mx::astype(wf, n.dtype), mx::array(0.0f), mx::array(0.0f), Vec(b, n.dtype), 0, 0};
  }
  std::vector<mx::array> q = mx::quantize(wf, n.group_size, n.bits);  // {w, scales, biases}
  return Linear{q.at(0), q.at(1), q.at(2), Vec(b, mx::float32), n.bits, n.group_size};
}

Linear MakeLinear(const HostLinear& l, const Numerics& n) {
  return MakeLinear(l.w, l.b, l.out, l.in, n);
}

Layer MakeLayer(const HostLayer& y, const Numerics& n) {
  // Fused QKV: the rows of query, key and value stacked ([3H, H]; per-row quantisation groups
  // run along the inputs, so fusing changes nothing numerically).
  std::vector<float> w, b;
  for (const HostLinear* l : {&y.q, &y.k, &y.v}) {
    w.insert(w.end(), l->w.begin(), l->w.end());
    b.insert(b.end(), l->b.begin(), l->b.end());
  }
  const int h = y.q.in;
  return Layer{MakeLinear(w, b, 3 * h, h, n),   MakeLinear(y.attn_out, n),
               MakeLinear(y.ffn_in, n),         MakeLinear(y.ffn_out, n),
               Vec(y.ln1_g, n.dtype),           Vec(y.ln1_b, n.dtype),
               Vec(y.ln2_g, n.dtype),           Vec(y.ln2_b, n.dtype)};
}

// The parameters MLX evaluates once at load (so Run only reads them).
std::vector<mx::array> Parameters(const Model& m) {
  std::vector<mx::array> out{m.word, m.pos, m.type, m.emb_g, m.emb_b};
  auto add = [&](const Linear& l) {
    out.insert(out.end(), {l.w, l.scales, l.biases, l.b});
  };
  for (const Layer& y : m.layers) {
    for (const Linear* l : {&y.qkv, &y.attn_out, &y.ffn_in, &y.ffn_out}) add(*l);
    out.insert(out.end(), {y.ln1_g, y.ln1_b, y.ln2_g, y.ln2_b});
  }
  if (m.pooler) add(*m.pooler);
  if (m.classifier) add(*m.classifier);
  return out;
}

Model BuildModel(const HostBert& host, const Numerics& n) {
  const BertConfig& c = host.config.bert;
  const int h = c.hidden_size;
  const mx::Dtype dt = n.dtype;  // embeddings and LayerNorms: fp32 for int8/int4
  Model m{Mat(host.word_emb, c.vocab_size, h, dt),
          Mat(host.pos_emb, c.max_position_embeddings, h, dt),
          Mat(host.type_emb, c.type_vocab_size, h, dt),
          Vec(host.emb_ln_g, dt),
          Vec(host.emb_ln_b, dt),
          {},
          std::nullopt,
          std::nullopt};
  for (const HostLayer& y : host.layers) m.layers.push_back(MakeLayer(y, n));
  if (host.config.kind == ModelKind::kCrossEncoder) {
    const Numerics fp32{};
    m.pooler = MakeLinear(host.pooler, fp32);
    m.classifier = MakeLinear(host.classifier, fp32);
  }
  return m;
}

// Exact (erf) GELU in x's dtype, as mlx.nn.gelu writes it: x * (1 + erf(x / sqrt(2))) / 2.
mx::array Gelu(const mx::array& x) {
  const mx::Dtype t = x.dtype();
  const mx::array e = mx::erf(mx::divide(x, mx::array(static_cast<float>(std::sqrt(2.0)), t)));
  return mx::divide(mx::multiply(x, mx::add(mx::array(1.0f, t), e)), mx::array(2.0f, t));
}

mx::array IntArray(const std::vector<int64_t>& v, int rows, int cols) {
  const std::vector<int32_t> narrow(v.begin(), v.end());
  return mx::array(narrow.begin(), {rows, cols}, mx::int32);
}

class MlxBackend final : public Backend {
 public:
  MlxBackend(ModelConfig config, Model model, mx::Stream stream, BackendInfo info)
      : config_(std::move(config)),
        model_(std::move(model)),
        stream_(stream),
        info_(std::move(info)) {}

  const BackendInfo& info() const override { return info_; }

  StatusOr<Embeddings> Run(Task task, const TokenBatch& batch) const override {
    RETURN_IF_ERROR(ValidateTokenBatch(batch, config_.bert));
    if (task == Task::kLogits && !model_.classifier) {
      return FailedPrecondition("this model has no classification head (not a cross-encoder)");
    }
    const PaddedBatch padded = PadBatch(batch, config_.bert.pad_token_id);
    std::lock_guard<std::mutex> lock(mu_);
    try {
      mx::set_default_stream(stream_);  // this thread's default: the backend's one stream
      const mx::array hidden = Encode(padded);
      return task == Task::kEmbed ? Pool(hidden, padded) : Logits(hidden, padded);
    } catch (const std::exception& e) {
      ClearStreamError();  // this batch fails; the next one starts clean
      return Internal(std::string("mlx: ") + e.what());
    }
  }

 private:
  // The encoder's last hidden state [batch, seq, H] (not yet evaluated).
  mx::array Encode(const PaddedBatch& p) const {
    const BertConfig& c = config_.bert;
    const int h = c.hidden_size, heads = c.num_heads, d = c.head_dim();
    const float eps = c.layer_norm_eps;
    const mx::array ids = IntArray(p.ids, p.batch, p.seq);
    const mx::array types = IntArray(p.type_ids, p.batch, p.seq);
    mx::array x = mx::add(mx::add(mx::take(model_.word, ids, 0), mx::take(model_.type, types, 0)),
                          mx::slice(model_.pos, {0, 0}, {p.seq, h}));
    x = mx::fast::layer_norm(x, model_.emb_g, model_.emb_b, eps);
    // [batch, 1, 1, seq]: true for the keys of real tokens, false for padding.
    const mx::array keep =
        mx::reshape(mx::astype(IntArray(p.mask, p.batch, p.seq), mx::bool_), {p.batch, 1, 1, p.seq});
    const float scale = 1.0f / std::sqrt(static_cast<float>(d));
    for (const Layer& y : model_.layers) {
      const std::vector<mx::array> qkv = mx::split(y.qkv(x), 3, -1);
      auto heads_first = [&](const mx::array& t) {  // [b, s, H] -> [b, heads, s, d]
        return mx::transpose(mx::reshape(t, {p.batch, p.seq, heads, d}), {0, 2, 1, 3});
      };
      mx::array ctx = mx::fast::scaled_dot_product_attention(
          heads_first(qkv[0]), heads_first(qkv[1]), heads_first(qkv[2]), scale, "array", keep);
      ctx = mx::reshape(mx::transpose(ctx, {0, 2, 1, 3}), {p.batch, p.seq, h});
      x = mx::fast::layer_norm(mx::add(x, y.attn_out(ctx)), y.ln1_g, y.ln1_b, eps);
      x = mx::fast::layer_norm(mx::add(x, y.ffn_out(Gelu(y.ffn_in(x)))), y.ln2_g, y.ln2_b, eps);
    }
    return x;
  }

  // MLX keeps the first error of a stream's tasks and rethrows it on later enqueues from the
  // main thread: drop it.
  void ClearStreamError() const {
    try {
      mx::scheduler::check_error(stream_);
    } catch (const std::exception&) {
    }
  }

  // Evaluates `a` as a row-major fp32 array on the host.
  mx::array Materialise(const mx::array& a) const {
    mx::array out = mx::contiguous(mx::astype(a, mx::float32));
    mx::eval(out);
    mx::scheduler::check_error(stream_);
    if (!out.flags().row_contiguous) throw std::runtime_error("result is not row-contiguous");
    return out;
  }

  StatusOr<Embeddings> Pool(const mx::array& hidden, const PaddedBatch& p) const {
    const mx::array out = Materialise(hidden);
    return PoolPadded(out.data<float>(), p, config_.bert.hidden_size, config_.pooling);
  }

  StatusOr<Embeddings> Logits(const mx::array& hidden, const PaddedBatch& p) const {
    const int h = config_.bert.hidden_size;
    const mx::array cls =
        mx::astype(mx::reshape(mx::slice(hidden, {0, 0, 0}, {p.batch, 1, h}), {p.batch, h}),
                   mx::float32);
    const mx::array logits = Materialise((*model_.classifier)(mx::tanh((*model_.pooler)(cls))));
    Embeddings out = Embeddings::Zeros(p.batch, config_.num_labels);
    const float* src = logits.data<float>();
    out.data.assign(src, src + out.data.size());
    return out;
  }

  ModelConfig config_;
  Model model_;
  mx::Stream stream_;
  BackendInfo info_;
  mutable std::mutex mu_;  // MLX evaluates one graph at a time here
};

StatusOr<Numerics> NumericsFor(Precision p, const Section& section) {
  Numerics n;
  ASSIGN_OR_RETURN(n.group_size,
                   ParseIntOption("mlx", "group_size",
                                  OptionValue(*FindBackend("mlx"), section, "group_size"), 32, 128));
  if (n.group_size != 32 && n.group_size != 64 && n.group_size != 128) {
    return InvalidArgument("mlx.group_size must be 32, 64 or 128, not " +
                           std::to_string(n.group_size));
  }
  switch (p) {
    case Precision::kF32: break;
    case Precision::kBF16: n.dtype = mx::bfloat16; break;
    case Precision::kF16: n.dtype = mx::float16; break;
    case Precision::kInt8: n.bits = 8; break;
    case Precision::kInt4: n.bits = 4; break;
  }
  return n;
}

// Points MLX's fp32 GEMMs at `threads` threads when its BLAS is OpenBLAS (set on the stream's
// worker thread, which makes the cblas calls: an OpenMP OpenBLAS reads that thread's setting).
// Returns the BLAS threads in effect: 1 for any other BLAS.
int SetBlasThreads(const mlx_blas::Blas& blas, mx::Stream stream, int threads) {
  if (!blas.openblas()) return 1;
  int in_effect = threads;
  mx::scheduler::enqueue(stream, [&blas, threads, &in_effect] {
    blas.set_threads(threads);
    if (blas.get_threads != nullptr) in_effect = blas.get_threads();
  });
  mx::synchronize(stream);
  return in_effect;
}

BackendInfo Describe(const ModelConfig& config, const CommonOptions& common, const Numerics& n,
                     const mlx_blas::Blas& blas, int blas_threads) {
  BackendInfo i;
  i.name = "mlx";
  i.device = "cpu";
  i.precision = kernels::PrecisionName(common.precision);
  const std::string version = mx::version();
  i.library = "MLX " + version;
  i.fp32_kernels = "mlx " + version;
  if (n.bits > 0) {
    i.quant_kernels = "mlx quantized_matmul g" + std::to_string(n.group_size) + " " +
                      std::to_string(n.bits) + "-bit";
  }
  DescribeModel(config, &i);
  i.wants_padded_batches = true;
  i.max_concurrent_batches = 1;
  const std::string lib = blas.library.empty() ? "an unknown BLAS" : blas.library;
  i.description = i.precision + (n.bits > 0 ? ", group " + std::to_string(n.group_size) : "") +
                  ", mlx " + version + ", 1 batch at a time; ";
  if (blas.openblas()) {
    i.description += "fp32 GEMMs on OpenBLAS (" + lib + ") x " + std::to_string(blas_threads) +
                     " thread(s), every other op on 1 thread (mlx cpu has no thread setting)";
  } else {
    i.description += "1 thread (mlx cpu has no thread setting; fp32 GEMMs on " + lib +
                     ", single-threaded" +
                     (common.threads > 1 ? "; threads=" + std::to_string(common.threads) +
                                               " not applied)"
                                         : ")");
  }
  return i;
}

}  // namespace

StatusOr<std::unique_ptr<Backend>> LoadMlxBackend(const CommonOptions& common,
                                                  const Section& section) {
  if (common.replicas > 1) {
    return InvalidArgument("the mlx backend runs one batch at a time (MLX cannot evaluate from " +
                           std::string("several threads at once); use replicas 1, not ") +
                           std::to_string(common.replicas));
  }
  ASSIGN_OR_RETURN(const Numerics n, NumericsFor(common.precision, section));
  ASSIGN_OR_RETURN(HostBert host, LoadHostBert(common.model_dir));
  const BertConfig& c = host.config.bert;
  if (n.bits > 0 && (c.hidden_size % n.group_size != 0 || c.intermediate_size % n.group_size)) {
    return InvalidArgument("mlx.group_size " + std::to_string(n.group_size) +
                           " does not divide the model's hidden size " +
                           std::to_string(c.hidden_size) + " and intermediate size " +
                           std::to_string(c.intermediate_size));
  }
  try {
    mx::set_default_device(mx::Device(mx::Device::cpu));
    const mx::Stream stream = mx::new_thread_unsafe_stream(mx::Device(mx::Device::cpu));
    mx::set_default_stream(stream);
    Model model = BuildModel(host, n);
    mx::eval(Parameters(model));
    mx::scheduler::check_error(stream);
    const mlx_blas::Blas blas = mlx_blas::FindBlas();
    const int blas_threads = SetBlasThreads(blas, stream, common.threads);
    BackendInfo info = Describe(host.config, common, n, blas, blas_threads);
    return std::unique_ptr<Backend>(
        new MlxBackend(std::move(host.config), std::move(model), stream, std::move(info)));
  } catch (const std::exception& e) {
    return Internal(std::string("mlx: loading ") + common.model_dir + ": " + e.what());
  }
}

}  // namespace encserve::backends
