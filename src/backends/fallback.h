// FallbackChain: a Backend made of backends tried in order (`backend: X` + `fallback: [Y, …]`).
// The scheduler always runs through one chain (of one backend when no fallback is set).
//
// - Load: each member is created in order; one that fails to load is left out (logged,
//   counted with reason "load") and the next one serves. At least one must load.
// - Run: a batch goes to the first member in service. If it returns an error (reason
//   "error"), returns rows of the wrong shape ("bad_output") or does not answer within
//   batch_timeout_ms ("timeout"), the same batch is re-run on the next member; a late answer
//   of a timed-out call is dropped, so every batch is answered exactly once.
// - After max_failures consecutive failed batches a member is out of service for
//   retry_after_ms (doubling on each failed retry, at most 64×); then one batch tries it
//   again. While no member is in service, every member is tried anyway, in order.
#pragma once

#include <atomic>
#include <chrono>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "backends/registry.h"

namespace encserve::backends {

struct FallbackPolicy {
  int max_failures = 3;       // consecutive failed batches that take a member out of service
  int retry_after_ms = 5000;  // first back-off before it is tried again
  int batch_timeout_ms = 0;   // a batch unanswered this long fails over; 0 = wait forever
};

// Hooks for metrics and logs (all optional; called on batcher threads, must be cheap).
struct FallbackObserver {
  std::function<void(const std::string& backend)> on_batch;  // a batch answered by it
  std::function<void(const std::string& backend, const std::string& reason)> on_failure;
  std::function<void(const std::string& from, const std::string& to, const std::string& reason)>
      on_fallback;
  std::function<void(const std::string& line)> log;
};

struct MemberState {
  std::string name;
  bool loaded = false;
  bool in_service = false;
  std::string load_error;             // when !loaded
  int64_t batches = 0;                // answered
  int64_t failures = 0;               // failed batches (load failures not counted)
  const BackendInfo* info = nullptr;  // when loaded
};

class FallbackChain final : public Backend {
 public:
  using Clock = std::chrono::steady_clock;
  static StatusOr<std::unique_ptr<FallbackChain>> Load(const std::vector<std::string>& names,
                                                       const CommonOptions& common,
                                                       const Sections& sections,
                                                       FallbackPolicy policy,
                                                       FallbackObserver observer = {});
  // From backends already loaded (tests); names[i] failed to load when backends[i] is null.
  static StatusOr<std::unique_ptr<FallbackChain>> FromBackends(
      std::vector<std::unique_ptr<Backend>> backends, FallbackPolicy policy,
      FallbackObserver observer = {});
  ~FallbackChain() override;

  // The first loaded member's info (all members agree on the model's shapes).
  const BackendInfo& info() const override;
  StatusOr<Embeddings> Run(Task task, const TokenBatch& batch) const override;

  std::vector<MemberState> States() const;
  // The member that takes the next batch: the first in service, or, while none is, the first
  // loaded (every member is then tried in order).
  std::string Serving() const;
  // Runs fn(backend) on every loaded member (warm-up).
  Status ForEachLoaded(const std::function<Status(const Backend&)>& fn) const;

 private:
  struct Member;
  FallbackChain(FallbackPolicy policy, FallbackObserver observer);
  Status CheckShapes() const;
  // Members to try for one batch, in order: those in service (or due a retry) first.
  std::vector<Member*> Order(Clock::time_point now) const;
  StatusOr<Embeddings> Attempt(const Member& m, Task task, const TokenBatch& batch,
                               bool with_timeout) const;
  void Succeeded(Member& m) const;
  void Failed(Member& m, const std::string& reason, Clock::time_point now) const;

  FallbackPolicy policy_;
  FallbackObserver observer_;
  std::vector<std::unique_ptr<Member>> members_;
  mutable std::mutex mu_;  // member states
  mutable std::mutex threads_mu_;
  struct TimedThread {
    std::thread thread;
    std::shared_ptr<std::atomic<bool>> finished;
  };
  mutable std::vector<TimedThread> threads_;  // timed attempts, joined when ended or at the end
};

}  // namespace encserve::backends
