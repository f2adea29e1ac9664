#include "backends/native/native_backend.h"

#include <algorithm>
#include <cmath>
#include <optional>
#include <string_view>
#include <unordered_map>

#include "backends/native/calibration.h"
#include "core/op_profile.h"
#include "kernels/quant.h"
#include "model/ops.h"
#include "tokenizer/tokenizer.h"

namespace encserve::backends {

// A part of a split batch: its sequences, a workspace and a pool of one (no workers: the ops
// run on whichever thread of the replica's pool took the part).
struct BatchPart {
  ThreadPool solo{1};
  Workspace ws;
  TokenBatch batch;
};

struct NativeBackend::Replica {
  explicit Replica(int threads) : pool(threads), parts(threads) {}
  ThreadPool pool;
  Workspace ws;
  std::vector<BatchPart> parts;
};

// The fewest tokens per part for which a split pays (measured, 2 threads: docs/benchmarks/
// engine.md). Each part streams all the weights through its own core, so the 4-byte fp32
// weights need more rows to amortise that than the 1-2 byte ones (fp32 at 64 tokens per part
// measured ~10 % slower split than intra-op; every other precision was faster split).
int MinTokensPerPart(kernels::Precision p) {
  return p == kernels::Precision::kF32 ? 128 : 64;
}

std::vector<int> SplitBatch(const std::vector<int>& offsets, int max_parts,
                            int min_tokens_per_part) {
  const int seqs = static_cast<int>(offsets.size()) - 1, tokens = offsets.back();
  int parts = std::min(max_parts, seqs);
  if (min_tokens_per_part > 0) parts = std::min(parts, tokens / min_tokens_per_part);
  if (parts < 2) return {0, seqs};
  std::vector<int> b{0};
  for (int p = 1; p < parts; ++p) {
    // The first sequence boundary at or past p/parts of the tokens, keeping ≥ 1 sequence per part.
    const long target = static_cast<long>(tokens) * p / parts;
    int s = b.back() + 1;
    while (s < seqs - (parts - p) && offsets[s] < target) ++s;
    b.push_back(s);
  }
  b.push_back(seqs);
  return b;
}

// RAII: returns the replica to the free list on destruction.
class NativeBackend::ReplicaLease {
 public:
  ReplicaLease(const NativeBackend* engine, Replica* r) : engine_(engine), replica_(r) {}
  ReplicaLease(ReplicaLease&& o) noexcept
      : engine_(o.engine_), replica_(std::exchange(o.replica_, nullptr)) {}
  ~ReplicaLease() {
    if (replica_ == nullptr) return;
    {
      std::lock_guard<std::mutex> lock(engine_->mu_);
      engine_->free_.push_back(replica_);
    }
    engine_->cv_.notify_one();
  }
  Replica* operator->() const { return replica_; }
  Replica& operator*() const { return *replica_; }

 private:
  const NativeBackend* engine_;
  Replica* replica_;
};

NativeBackend::~NativeBackend() = default;

StatusOr<NativeOptions> NativeOptions::FromSection(const Section& section) {
  const BackendSpec& spec = *FindBackend("native");
  auto value = [&](std::string_view key) { return OptionValue(spec, section, key); };
  NativeOptions o;
  if (const std::string isa = value("isa"); isa != "auto") {
    kernels::Isa parsed;
    if (!kernels::ParseIsa(isa, &parsed)) return InvalidArgument("native.isa: unknown ISA " + isa);
    o.isa = parsed;
  }
  ASSIGN_OR_RETURN(o.split_batches,
                   ParseBoolOption("native", "split_batches", value("split_batches")));
  ASSIGN_OR_RETURN(o.group_size,
                   ParseIntOption("native", "group_size", value("group_size"), 32, 128));
  ASSIGN_OR_RETURN(o.int4_recipe, ParseInt4Recipe(value("int4_recipe")));
  if (const std::string k = value("bf16_kernel"); k != "auto") o.bf16_dot = k == "dot";
  return o;
}

BackendSpec NativeBackendSpec() {
  using kernels::Precision;
  BackendSpec s;
  s.name = "native";
  s.description = "encserve's own CPU kernels (AVX2 / AVX-512 / VNNI / AMX), padding-free";
  s.precisions = {Precision::kF32, Precision::kBF16, Precision::kF16, Precision::kInt8,
                  Precision::kInt4};
  s.options = {
      {"isa",
       "auto",
       "force a kernel set (avx512 = AVX-512 without AMX tiles)",
       {"auto", "scalar", "avx2", "avx512", "amx"},
       "--isa",
       ""},
      {"split_batches",
       "true",
       "true: a large batch is split by sequences, one run per thread; false (--no-split): "
       "every op is split over the threads (intra-op only)",
       {"true", "false"},
       "--no-split",
       "false"},
      {"group_size", "64", "int4 group size", {"32", "64", "128"}, "--group-size", ""},
      {"int4_recipe",
       "gptq",
       "int4 weights: rtn | rotate | gptq",
       {"rtn", "rotate", "gptq"},
       "--int4-recipe",
       ""},
      {"bf16_kernel",
       "auto",
       "bf16: dot = bf16 dot products (vdpbf16ps / AMX), widen = bf16 weights widened to fp32 "
       "FMAs; auto: AMX and AMD dot, Intel without AMX widen (faster there)",
       {"auto", "dot", "widen"},
       "--bf16-kernel",
       ""},
  };
  s.create = [](const CommonOptions& common,
                const Sections& sections) -> StatusOr<std::unique_ptr<Backend>> {
    auto it = sections.find("native");
    ASSIGN_OR_RETURN(NativeOptions o,
                     NativeOptions::FromSection(it == sections.end() ? Section{} : it->second));
    ASSIGN_OR_RETURN(std::unique_ptr<NativeBackend> b, NativeBackend::Load(common, o));
    return std::unique_ptr<Backend>(std::move(b));
  };
  return s;
}

StatusOr<std::unique_ptr<NativeBackend>> NativeBackend::Load(const CommonOptions& common,
                                                             const NativeOptions& options) {
  const kernels::Isa isa = options.isa.value_or(kernels::ActiveIsa());
  const kernels::KernelTable* table = kernels::KernelsFor(isa);
  if (table == nullptr) {
    return FailedPrecondition(std::string("this CPU does not support ISA ") +
                              kernels::IsaName(isa));
  }
  std::unique_ptr<NativeBackend> e(new NativeBackend());
  e->common_ = common;
  e->options_ = options;
  // The model's config first (its errors name a missing folder), then the tokenizer, which
  // int4's calibration needs before the weights are quantised.
  RETURN_IF_ERROR(LoadModelConfig(common.model_dir).status());
  PrecisionOptions precision{
      common.precision, options.group_size, options.int4_recipe, {}, options.bf16_dot};
  if (common.precision == kernels::Precision::kInt4 && options.int4_recipe == Int4Recipe::kGptq) {
    ASSIGN_OR_RETURN(auto tokenizer, Tokenizer::FromDirectory(common.model_dir));
    precision.calibration = VocabularyCalibration(*tokenizer);
  }
  ASSIGN_OR_RETURN(e->model_, BertModel::Load(common.model_dir, *table, precision));
  for (int r = 0; r < common.replicas; ++r) {
    e->replicas_.push_back(std::make_unique<Replica>(common.threads));
    e->free_.push_back(e->replicas_.back().get());
  }
  e->info_ = e->DescribeSelf();
  return e;
}

BackendInfo NativeBackend::DescribeSelf() const {
  const ModelConfig& c = model_->config();
  const bool quantised = common_.precision == kernels::Precision::kInt8 ||
                         common_.precision == kernels::Precision::kInt4;
  BackendInfo i;
  i.name = "native";
  i.device = "cpu";
  i.library = std::string("encserve ") + ENCSERVE_VERSION;
  i.precision = kernels::PrecisionName(common_.precision);
  i.fp32_kernels = model_->kernels().name;
  i.quant_kernels = quantised ? kernels::QuantKernelsFor(model_->kernels().isa).name : "";
  i.kind = c.kind;
  i.hidden_size = c.bert.hidden_size;
  i.num_labels = c.num_labels;
  i.labels = c.labels.empty() ? DefaultLabels(c.num_labels) : c.labels;
  i.max_positions = c.bert.max_position_embeddings;
  i.wants_padded_batches = false;
  i.max_concurrent_batches = common_.replicas;
  i.description = i.precision + ", " + std::to_string(common_.replicas) + " replica(s) x " +
                  std::to_string(common_.threads) + " thread(s), " +
                  (options_.split_batches ? "batches split by sequences" : "intra-op") +
                  ", kernels " + i.kernels();
  return i;
}

NativeBackend::ReplicaLease NativeBackend::Acquire() const {
  std::unique_lock<std::mutex> lock(mu_);
  cv_.wait(lock, [this] { return !free_.empty(); });
  Replica* r = free_.back();
  free_.pop_back();
  return ReplicaLease(this, r);
}

template <typename Finish>
Status NativeBackend::RunBatch(const TokenBatch& batch, Replica& r, Finish&& finish) const {
  const std::vector<int> b =
      options_.split_batches
          ? SplitBatch(batch.offsets, r.pool.num_threads(), MinTokensPerPart(common_.precision))
          : std::vector<int>{0, batch.num_seqs()};
  const int parts = static_cast<int>(b.size()) - 1;
  // The whole batch first, so that an error names the sequence's index in the batch, not in
  // its part.
  RETURN_IF_ERROR(model_->Validate(batch));
  // The calling thread's hook (core/yield_point.h), for every part's pass.
  const core::YieldHook* yield = core::CurrentYieldHook();
  r.ws.yield = yield;
  for (BatchPart& part : r.parts) part.ws.yield = yield;
  if (parts == 1) {
    ASSIGN_OR_RETURN(const float* hidden, model_->Encode(batch, r.ws, r.pool));
    finish(batch, static_cast<const float*>(hidden), 0, r.pool);
    return Status::Ok();
  }
  std::vector<Status> status(parts);
  r.pool.ParallelFor(parts, [&](int p) {
    BatchPart& part = r.parts[p];
    std::optional<profile::Scope> copy(std::in_place, "split batch");
    part.batch.Clear();
    const int t0 = batch.offsets[b[p]];
    for (int s = b[p]; s < b[p + 1]; ++s) {
      const int t1 = batch.offsets[s + 1];
      part.batch.ids.insert(part.batch.ids.end(), batch.ids.begin() + batch.offsets[s],
                            batch.ids.begin() + t1);
      part.batch.type_ids.insert(part.batch.type_ids.end(),
                                 batch.type_ids.begin() + batch.offsets[s],
                                 batch.type_ids.begin() + t1);
      part.batch.offsets.push_back(t1 - t0);
    }
    copy.reset();
    StatusOr<const float*> hidden = model_->Encode(part.batch, part.ws, part.solo);
    if (!hidden.ok()) {
      status[p] = hidden.status();
      return;
    }
    finish(part.batch, *hidden, b[p], part.solo);
  });
  for (const Status& st : status) RETURN_IF_ERROR(st);
  return Status::Ok();
}

StatusOr<Embeddings> NativeBackend::Run(Task task, const TokenBatch& batch) const {
  return task == Task::kEmbed ? EmbedBatch(batch) : LogitsBatch(batch);
}

StatusOr<Embeddings> NativeBackend::EmbedBatch(const TokenBatch& batch) const {
  ReplicaLease r = Acquire();
  Embeddings out;
  out.rows = batch.num_seqs();
  out.dim = model_->hidden_size();
  out.data.resize(static_cast<size_t>(out.rows) * out.dim);
  RETURN_IF_ERROR(
      RunBatch(batch, *r, [&](const TokenBatch& sub, const float* hidden, int first, ThreadPool&) {
        model_->Pool(sub, hidden, /*normalize=*/false,
                     out.data.data() + static_cast<size_t>(first) * out.dim);
      }));
  return out;
}

StatusOr<Embeddings> NativeBackend::LogitsBatch(const TokenBatch& batch) const {
  if (config().kind != ModelKind::kCrossEncoder) {
    return FailedPrecondition("this model has no classification head (not a cross-encoder)");
  }
  ReplicaLease r = Acquire();
  Embeddings out;
  out.rows = batch.num_seqs();
  out.dim = config().num_labels;
  out.data.resize(static_cast<size_t>(out.rows) * out.dim);
  RETURN_IF_ERROR(RunBatch(
      batch, *r, [&](const TokenBatch& sub, const float* hidden, int first, ThreadPool& pool) {
        model_->Classify(sub, hidden, pool, out.data.data() + static_cast<size_t>(first) * out.dim);
      }));
  return out;
}

}  // namespace encserve::backends
