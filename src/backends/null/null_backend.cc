#include "backends/null/null_backend.h"

namespace encserve::backends {

BackendSpec NullBackendSpec() {
  using kernels::Precision;
  BackendSpec s;
  s.name = "null";
  s.description = "zeros of the right shape without running the model (server/client capacity)";
  // Computes nothing, so any precision is accepted; info().precision says "none".
  s.computes = false;
  s.precisions = {Precision::kF32, Precision::kBF16, Precision::kF16, Precision::kInt8,
                  Precision::kInt4};
  s.create = [](const CommonOptions& common,
                const Sections&) -> StatusOr<std::unique_ptr<Backend>> {
    ASSIGN_OR_RETURN(std::unique_ptr<NullBackend> b, NullBackend::Load(common));
    return std::unique_ptr<Backend>(std::move(b));
  };
  return s;
}

StatusOr<std::unique_ptr<NullBackend>> NullBackend::Load(const CommonOptions& common) {
  ASSIGN_OR_RETURN(ModelConfig c, LoadModelConfig(common.model_dir));
  auto b = std::make_unique<NullBackend>();
  BackendInfo& i = b->info_;
  i.name = "null";
  i.device = "none";
  i.library = "none";
  i.precision = "none";
  i.kind = c.kind;
  i.hidden_size = c.bert.hidden_size;
  i.num_labels = c.num_labels;
  i.labels = c.labels.empty() ? DefaultLabels(c.num_labels) : c.labels;
  i.max_positions = c.bert.max_position_embeddings;
  i.max_concurrent_batches = common.replicas;
  i.description = "zeros, no model work";
  return b;
}

StatusOr<Embeddings> NullBackend::Run(Task task, const TokenBatch& batch) const {
  if (task == Task::kLogits && info_.kind != ModelKind::kCrossEncoder) {
    return FailedPrecondition("this model has no classification head (not a cross-encoder)");
  }
  return Embeddings::Zeros(batch.num_seqs(),
                           task == Task::kEmbed ? info_.hidden_size : info_.num_labels);
}

}  // namespace encserve::backends
