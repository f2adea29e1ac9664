// Backend: what runs a model under the batcher. The scheduler, the server and the library API
// depend on this interface only; a backend is one folder under src/backends and one line in
// the registry (backends/registry.cc). See docs/backends.md.
//
// A backend gets batches of already-tokenised sequences (padding-free, core/batch.h) and
// returns, per sequence, the pooled embedding before normalisation (Task::kEmbed) or the
// classifier logits (Task::kLogits). Tokenisation, normalisation, Matryoshka truncation and
// scores (cosine, sigmoid/softmax) are shared code above it (pipeline/postprocess.h).
#pragma once

#include <string>
#include <vector>

#include "core/batch.h"
#include "core/status.h"
#include "model/config.h"

namespace encserve::backends {

enum class Task { kEmbed, kLogits };
const char* TaskName(Task task);

// What a backend says about itself once loaded: the truth, for /info, metrics and reports.
struct BackendInfo {
  std::string name;       // registry name: "native", "null", ...
  std::string device;     // "cpu"
  std::string library;    // what computes, with its version: "encserve 0.1.0", "libtorch 1.13.0"
  std::string precision;  // precision actually computed in: "fp32" ... "int4"; "none" (null)
  // Kernels actually in use: the table for fp32/bf16/fp16 GEMMs and element-wise ops, and the
  // quantised table (int8/int4 GEMMs; "" when the precision uses none).
  std::string fp32_kernels;
  std::string quant_kernels;
  ModelKind kind = ModelKind::kEmbedding;
  int hidden_size = 0;                // rows of Task::kEmbed
  int num_labels = 0;                 // rows of Task::kLogits (cross-encoders)
  std::vector<std::string> labels;    // num_labels names (config.json id2label or LABEL_i)
  int max_positions = 0;              // longest sequence (tokens, specials included) it accepts
  bool wants_padded_batches = false;  // false: padding-free batches run without padding cost
  int max_concurrent_batches = 1;     // Run() calls computing at once; more callers wait
  std::string description;            // one line for logs, e.g. "2 replicas x 2 threads, amx"
  std::string kernels() const;        // KernelsName(fp32_kernels, quant_kernels)
};

class Backend {
 public:
  virtual ~Backend() = default;
  virtual const BackendInfo& info() const = 0;
  // Runs one batch (1 .. any sequences; the caller keeps it within its batching limits).
  // kEmbed: [num_seqs, hidden_size], pooled, not normalised. kLogits: [num_seqs, num_labels]
  // (FailedPrecondition on a model without a classifier). Row i belongs to sequence i.
  // Thread-safe. An error fails this batch only; the backend stays usable.
  virtual StatusOr<Embeddings> Run(Task task, const TokenBatch& batch) const = 0;
};

// "amx/amx": the fp32 table, then "/" and the quantised one when one is in use.
std::string KernelsName(const std::string& fp32_kernels, const std::string& quant_kernels);

// Labels of a model: LABEL_0 .. LABEL_{n-1}.
std::vector<std::string> DefaultLabels(int num_labels);
// Checks a backend's output shape against its info (rows = sequences, dim = hidden/labels).
Status CheckOutputShape(const BackendInfo& info, Task task, const TokenBatch& batch,
                        const Embeddings& out);

}  // namespace encserve::backends
