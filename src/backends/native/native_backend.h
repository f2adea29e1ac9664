// The native backend: encserve's own CPU engine. Owns one BertModel (weights shared,
// read-only) and `replicas` independent executors, each a workspace plus a pool of `threads`
// threads, running our kernels (fp32/bf16/fp16/int8/int4, AVX2/AVX-512/VNNI/AMX dispatch) on
// padding-free batches.
//
// Thread safety: Run() may be called from any number of threads at once; each batch takes a
// free replica (callers wait when all are busy), so at most `replicas` batches compute
// concurrently. Results depend only on the inputs: deterministic for a given ISA and thread
// count.
#pragma once

#include <condition_variable>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "backends/registry.h"
#include "core/thread_pool.h"
#include "kernels/cpu_features.h"
#include "model/bert.h"
#include "model/linear.h"

namespace encserve::backends {

// The native backend's own section (server.yaml `native:`, flags --isa/--no-split/...).
struct NativeOptions {
  std::optional<kernels::Isa> isa;  // default: kernels::ActiveIsa()
  // With threads > 1, a batch of several sequences is split into `threads` runs of whole
  // sequences with about equal token counts, each run through the model on its own thread
  // (single-threaded kernels, its own workspace): no barrier per op and every thread's
  // activations stay in its own core's caches. Batches too small to split (see SplitBatch) and
  // split_batches = false use intra-op parallelism (every op split over the threads) instead.
  // Results are the same either way (every row's arithmetic is independent of the others).
  bool split_batches = true;
  int group_size = 64;  // int4 only
  // int4 only: how the weights are quantised at load time (model/linear.h). kGptq calibrates on
  // VocabularyCalibration (backends/native/calibration.h) and adds a few seconds to the load.
  Int4Recipe int4_recipe = Int4Recipe::kGptq;
  // bf16 only: true = bf16 dot products, false = weights widened to fp32; unset ("auto"): the
  // kernel table's preference (kernels::KernelTable::bf16_dot_preferred).
  std::optional<bool> bf16_dot;

  // `section` as ValidateSection accepted it (CreateBackend checks it: known keys, allowed
  // values such as group_size 32 | 64 | 128); missing keys take the registry's defaults.
  static StatusOr<NativeOptions> FromSection(const Section& section);
};

BackendSpec NativeBackendSpec();

// Sequence-parallel split of a batch: boundaries 0 = b[0] < b[1] < … < b[p] = num_seqs of
// p ≤ max_parts contiguous runs of sequences with about equal token counts (each run at least
// min_tokens_per_part tokens). {0, num_seqs} (no split) when fewer than two runs qualify.
std::vector<int> SplitBatch(const std::vector<int>& offsets, int max_parts,
                            int min_tokens_per_part);

class NativeBackend final : public Backend {
 public:
  // `common` as CreateBackend checked it (threads, replicas, a supported precision).
  static StatusOr<std::unique_ptr<NativeBackend>> Load(const CommonOptions& common,
                                                       const NativeOptions& options);
  ~NativeBackend() override;

  const BackendInfo& info() const override { return info_; }
  StatusOr<Embeddings> Run(Task task, const TokenBatch& batch) const override;

  const ModelConfig& config() const { return model_->config(); }
  const kernels::KernelTable& kernels() const { return model_->kernels(); }
  const NativeOptions& options() const { return options_; }
  const CommonOptions& common() const { return common_; }

 private:
  struct Replica;
  class ReplicaLease;
  NativeBackend() = default;
  BackendInfo DescribeSelf() const;
  ReplicaLease Acquire() const;
  // Encodes batch on replica r (split or intra-op parallel) and calls
  // finish(sub_batch, hidden, first_seq, pool) for each part: hidden holds sub_batch's rows,
  // whose first sequence is batch's sequence first_seq.
  template <typename Finish>
  Status RunBatch(const TokenBatch& batch, Replica& r, Finish&& finish) const;
  StatusOr<Embeddings> EmbedBatch(const TokenBatch& batch) const;
  StatusOr<Embeddings> LogitsBatch(const TokenBatch& batch) const;

  CommonOptions common_;
  NativeOptions options_;
  BackendInfo info_;
  std::unique_ptr<BertModel> model_;
  std::vector<std::unique_ptr<Replica>> replicas_;
  mutable std::mutex mu_;
  mutable std::condition_variable cv_;
  mutable std::vector<Replica*> free_;
};

}  // namespace encserve::backends
