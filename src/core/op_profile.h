// Op profile: where a model run's time goes, per op (GEMMs by shape, attention, LayerNorm,
// activation quantisation, pooling, tokenisation, ...). Off by default; when off a Scope costs
// one relaxed atomic load. When on (`encserve bench-engine --profile`), each Scope measures the
// wall time of its op on the thread that entered it, minus the time of the Scopes nested inside
// it (self time), and adds it to a process-wide table. Ops that run on a pool are timed on the
// calling thread, which waits for the pool: their time is the op's wall time. With split batches
// (one thread per part) each part's thread records its own ops, so shares are of the summed
// time of all threads running the model.
#pragma once

#include <chrono>
#include <string>
#include <vector>

namespace encserve::profile {

bool Enabled();
void SetEnabled(bool on);
void Reset();

// An op's identity: a label ("gemm", "attention", ...) and, for GEMMs, the weight shape n × k
// (m, the rows, varies from batch to batch and is summed into the flops).
struct OpKey {
  const char* label;  // a string literal
  int n = 0, k = 0;
  bool operator==(const OpKey& o) const;
};

class Scope {
 public:
  // flops: multiply-adds × 2 done by the op (0 when not counted).
  explicit Scope(const char* label, int n = 0, int k = 0, double flops = 0);
  ~Scope();
  Scope(const Scope&) = delete;
  Scope& operator=(const Scope&) = delete;

 private:
  bool on_;
  OpKey key_;
  double flops_;
  std::chrono::steady_clock::time_point t0_;
  double child_ns_ = 0;
  Scope* parent_ = nullptr;
};

// Adds time measured elsewhere (e.g. the parts of a fused parallel region) to an op.
void Add(const OpKey& key, double ns, double flops, long calls = 1);

struct OpTotal {
  OpKey key;
  long calls = 0;
  double ns = 0;     // self time
  double flops = 0;  // 2 × multiply-adds
};
// Every op recorded since the last Reset, largest time first.
std::vector<OpTotal> Snapshot();
// "gemm 1536x384" or "layernorm".
std::string Name(const OpKey& key);

}  // namespace encserve::profile
