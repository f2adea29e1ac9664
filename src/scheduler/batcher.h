// Batcher: the dynamic batcher of one model. Requests arrive already tokenised; each of their
// items (one sequence: a text or a pair) is queued; one worker thread per concurrent backend
// batch (Backend::info().max_concurrent_batches) asks
// the batching policy (batching_policy.h) for the next batch whenever it is free, runs it as one
// padding-free forward pass, and scatters each row back to its request's slot. A request
// completes (its callback runs, on the worker thread) when all of its items are done, so large
// requests may be split over several batches and small ones share batches, without mixing up
// rows.
//
// Admission is all-or-nothing and bounded, refused with RESOURCE_EXHAUSTED at once: by items and
// tokens queued, and by the expected time until a new request's promised work is done
// (queue_budget): the whole request when it is at most the budget of work, else its first
// batch. That time is the queued work ahead of it in the fair order of batching_policy.h (its
// own client's queued tokens, and other clients' tokens in the rounds up to its own; or, if
// more, the tokens due before it would be) times the measured cost per token (a moving average
// over the batches run), over the workers; plus what is left of the batches running now; plus
// its own promised work; scaled by how far such estimates fell short lately
// (wait_calibration.h). Admit() makes that check before a request is tokenised (its tokens
// estimated from its item count), Submit() again with its tokens. The promised items are due
// so that they are done within the budget, each batch of them right after the one before (so
// that the rest of a request is not left behind newer requests' first batches). One client
// (connection) may hold at most half the budget of queued work. With a budget, a batch also holds
// at most half the budget of work (max_batch_tokens lowered accordingly), so that a request
// admitted behind long texts is answered within about the budget plus one batch. A client's half
// is of work as admission expects it to take (measured cost times the calibration factor), so
// that a newcomer fits behind it.
//
// Priorities (batching_policy.h): a request is interactive (the default) or batch. Interactive
// items go first, and a batch item queued for policy.batch_starvation_bound goes with them. For
// 1 s (interactive_window) after an interactive request arrived, so that the next one does not
// wait for batch work: with two or more workers, batch work holds at most all workers but one
// (the other stays free for interactive work), and a batch of batch items pauses while an
// interactive batch runs (core/yield_point.h: the native backend yields between layers, so
// that the interactive batch has the cores); and a batch of batch items holds at most
// batch_slice of measured work, so that an interactive request waits for at most one such slice
// (one worker) or one step of one (two or more: the pause comes at the next layer boundary).
// Admission counts for an interactive request only the interactive work queued ahead of it (and the
// running batches), for a batch request all of it; the calibration leaves out batch requests that
// interactive batches overtook. Cancelled requests and requests past their deadline lose their
// queued items (CANCELLED / DEADLINE_EXCEEDED).
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <thread>
#include <unordered_map>
#include <vector>

#include "backends/backend.h"
#include "core/status.h"
#include "core/yield_point.h"
#include "scheduler/batching_policy.h"
#include "scheduler/wait_calibration.h"
#include "tokenizer/tokenizer.h"

namespace encserve::scheduler {

using backends::Task;

// One request's work and its results. Fill in the inputs, then Submit().
struct BatchRequest {
  Task task = Task::kEmbed;
  std::vector<Encoding> inputs;
  Clock::time_point deadline = Clock::time_point::max();
  std::shared_ptr<std::atomic<bool>> cancelled;  // optional: set to drop queued work
  uint64_t client = 0;  // the connection / client it came from (fair order across clients)
  Priority priority = Priority::kInteractive;
  // Runs once when every item is done or the request failed; `out` holds [inputs, dim] rows
  // (embeddings before normalisation, or logits) in input order when status is OK.
  std::function<void(const Status& status, const Embeddings& out)> on_done;

  // Filled by the batcher.
  Embeddings out;
  Clock::time_point enqueued;
  // When its first batch started (Clock's ticks since its epoch; 0 until then): the request
  // queued from `enqueued` to then, and was computed from then until on_done.
  std::atomic<int64_t> first_batch_ticks{0};
};

// Hooks for metrics (all optional; called on worker threads, must be cheap).
struct BatcherObserver {
  // A batch ran: items, tokens, longest sequence, seconds of engine time.
  std::function<void(int items, int tokens, int max_len, double seconds)> on_batch;
  // Per item, when its batch starts.
  std::function<void(double seconds, Priority priority)> on_queue_time;
  std::function<void(StatusCode reason, int items)> on_dropped;
};

struct BatcherOptions {
  PolicyOptions policy;
  int workers = 1;                 // one per batch the backend can run at once
  int64_t max_queue_items = 4096;  // admission bounds
  int64_t max_queue_tokens = 1 << 20;
  // Refuse work that would wait longer than this before its first batch; 0: no time bound
  // (the server's default is 100 ms: server_config.h).
  std::chrono::milliseconds queue_budget{0};
  int idle_spin_us = 50;  // an idle worker polls the queue this long before sleeping
  // Priorities (above): the work a batch of batch items holds while interactive requests are
  // around (0: no cap), and how long after an interactive arrival that lasts.
  std::chrono::microseconds batch_slice{2000};
  std::chrono::milliseconds interactive_window{1000};
};

// Batch-priority passes wait in Yield() while any interactive batch runs (Enter .. Leave).
class PauseGate final : public core::YieldHook {
 public:
  void Yield() const override;
  void Enter();
  void Leave();
  uint64_t pauses() const { return pauses_.load(std::memory_order_relaxed); }  // Yields that waited

 private:
  std::atomic<int> urgent_{0};
  mutable std::atomic<uint64_t> pauses_{0};
  mutable std::mutex mu_;
  mutable std::condition_variable cv_;
};

class Batcher {
 public:
  Batcher(const backends::Backend& backend, BatcherOptions options, BatcherObserver observer = {});
  ~Batcher();  // Shutdown(now) if still running
  Batcher(const Batcher&) = delete;
  Batcher& operator=(const Batcher&) = delete;

  // Queues the request or refuses it (RESOURCE_EXHAUSTED over the bounds, UNAVAILABLE after
  // Shutdown, INVALID_ARGUMENT when empty). On refusal on_done is NOT called.
  Status Submit(std::shared_ptr<BatchRequest> request);
  // The queue-budget check of Submit for a request of `client` with `items` items (0: not
  // known), without the request (cheap: call it before tokenising).
  Status Admit(uint64_t client = 0, int items = 0,
               Priority priority = Priority::kInteractive) const;
  // Seconds until the first batch of a request of `client` with `items` items admitted now
  // would be done (0 before any batch ran).
  double ExpectedWaitSeconds(uint64_t client = 0, int items = 0,
                             Priority priority = Priority::kInteractive) const;

  // Stops admitting, lets the workers finish queued and running work until `deadline`, then
  // fails what is left with UNAVAILABLE and joins the workers.
  void Shutdown(Clock::time_point deadline);

  int64_t queued_items() const { return queued_items_.load(std::memory_order_relaxed); }
  int64_t queued_tokens() const { return queued_tokens_.load(std::memory_order_relaxed); }
  int64_t running_items() const { return running_items_.load(std::memory_order_relaxed); }
  // The factor admission scales its estimates by now (wait_calibration.h; 1 until measured).
  double wait_factor() const;
  // The ratios (outcome to estimate) of admitted requests the factor is computed from, oldest
  // first (diagnostics and tests).
  std::vector<double> wait_ratios() const;
  // For tests: records `n` calibration ratios as if admitted requests had waited `ratio` times
  // their estimate (a factor above 2 cannot be reached reliably with a real engine in a test).
  void AddWaitRatiosForTest(double ratio, int n);
  const BatcherOptions& options() const { return options_; }

 private:
  struct Pending;  // per-request completion state
  struct Item {
    std::shared_ptr<Pending> pending;
    int index = 0;  // row in the request
    int tokens = 0;
    int64_t offset = 0;                                // tokens before it in the request
    Clock::time_point due = Clock::time_point::max();  // batching_policy.h
  };
  void WorkerLoop(size_t slot);
  // How a batch runs beside others: interactive work pauses batch work while it runs; batch
  // work yields to it; batch work past the starvation bound does neither.
  enum class Lane { kInteractive, kStarved, kBatch };
  void RunBatch(std::vector<Item>& batch, Clock::time_point cycle_start, size_t slot, Lane lane);
  // A client's queue of one class (clients_ is keyed by it).
  struct QueueKey {
    uint64_t client = 0;
    Priority priority = Priority::kInteractive;
  };
  static uint64_t KeyOf(QueueKey key);
  // mu_ held: seconds until the first batch (of `own_tokens` tokens) of a new request of
  // `key` would be done, and that time's last part, its own first batch.
  double ExpectedWaitLocked(QueueKey key, int64_t own_tokens, double* first_batch) const;
  // mu_ held: OK or RESOURCE_EXHAUSTED; the unscaled estimate and its first-batch part.
  Status CheckBudgetLocked(QueueKey key, int64_t own_tokens, double* estimate,
                           double* first_batch) const;
  // mu_ held: policy.batch_class_max_tokens now (0: no cap); whether interactive requests are
  // around (one arrived within interactive_window).
  int BatchClassCapLocked(Clock::time_point now) const;
  bool InteractiveAroundLocked(Clock::time_point now) const;
  // calibration_, takes mu_; `start`: when the batch's compute began.
  void RecordFirstBatches(const std::vector<Item>& batch, Clock::time_point start);
  // mu_ held: the tokens admission promises of a request of `items` items (estimated from the
  // tokens per item seen) / of `whole` tokens whose first batch holds `first_batch`: the whole
  // request when it is at most the budget of work, else its first batch.
  int64_t OwnTokensLocked(int items) const;
  int64_t PromisedTokensLocked(int64_t whole, int64_t first_batch) const;
  // mu_ held: queues the request's items (in batches of at most `batch_cap` tokens) with their
  // due times; `whole`: the whole request (`promised_s` of work) was promised.
  void EnqueueLocked(const std::shared_ptr<Pending>& pending, int64_t batch_cap, double promised_s,
                     bool whole);
  void Unqueue(const Item& item);  // mu_ held: per-client queued counts
  int BatchTokenCap() const;       // max_batch_tokens, lowered to half the budget of measured work
  static void FinishItems(const std::shared_ptr<Pending>& p, int n, const Status& status);

  const backends::Backend& backend_;
  const BatcherOptions options_;
  const BatcherObserver observer_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::deque<Item> queue_;
  struct ClientState {
    int64_t queued = 0, queued_tokens = 0;
    int64_t served = 0;  // tokens run since its queue was last empty
    Priority priority = Priority::kInteractive;
  };
  std::unordered_map<uint64_t, ClientState> clients_;  // KeyOf -> a client's queue of a class
  Clock::time_point last_interactive_{};               // last interactive arrival (mu_)
  uint64_t interactive_batches_ = 0;                   // batches run with interactive items (mu_)
  int batch_class_running_ = 0;                        // workers running batch work (mu_)
  PauseGate gate_;
  std::atomic<double> cost_per_token_{0.0};  // seconds, moving average over batches
  double tokens_per_item_ = 0;               // moving average over requests (mu_)
  struct Running {                           // a worker's batch now (mu_)
    Clock::time_point start;
    int64_t tokens = 0;
  };
  std::vector<Running> running_;
  WaitCalibration calibration_;  // (mu_) scales the estimates: wait_calibration.h
  bool accepting_ = true;
  bool stop_ = false;
  Clock::time_point drain_deadline_ = Clock::time_point::max();
  uint64_t next_request_id_ = 1;
  std::atomic<int64_t> queued_items_{0}, queued_tokens_{0}, running_items_{0};
  std::vector<std::thread> workers_;
};

}  // namespace encserve::scheduler
