// The dynamic batcher's decision: which queued items form the next batch, which are dropped,
// or how long to wait. A pure function of the queue's state, the options and a clock reading,
// so tests drive it with a fake clock (tests/unit/batching_policy_test.cc).
//
// Called whenever an engine replica is free to run a batch. With batching on:
//   1. items whose request was cancelled or whose deadline has passed are dropped;
//   2. the batch is dispatched when it is full (max_batch_size items or max_batch_tokens
//      tokens queued) or when the oldest item has waited max_wait; otherwise the replica
//      sleeps until the oldest item's wait runs out (or a new item arrives). max_wait = 0 is
//      greedy continuous batching: a free replica takes everything queued at once, so a lone
//      request pays no batching delay and batches grow by themselves under load;
//   3. the oldest item always goes first (no item waits behind ever-newer ones: no
//      starvation); the rest are taken in fair order (below), or, with group_by_length, the
//      items closest in length to the oldest one first (ties: older first), within both limits.
//
// Fair order (deficit round robin with a quantum of Q tokens, one batch's worth: FairQuantum):
// no request and no client (connection) holds the queue for longer than its turn.
// Within a client, a request's items go in rounds of Q tokens by their offset in the request
// (tokens already run count, so a 1,024-text request that has had its turn goes behind a newer
// one-text request); across clients, each client's sequence goes in rounds of Q tokens counted
// from the tokens the client already had run since its queue was last empty (client_served),
// clients in the order of their oldest item. So a client that keeps the queue busy goes behind
// one that has just arrived. When every request fits one batch and comes from its own client
// this is arrival order.
//
// Priority classes: queued interactive items go before batch items, and a batch holds one
// class. A batch item that has been queued for batch_starvation_bound or longer counts as
// interactive (oldest first, like the rest), which bounds how long batch work can be starved;
// a batch that holds such items keeps the batch class's cap (below).
// With only batch items queued, no batch is formed when batch_class_blocked is set, and a batch
// holds at most batch_class_max_tokens tokens when that is set (the batcher sets it while
// interactive traffic is around, so that an interactive arrival waits for at most one short batch).
// Within the class served, steps 2-3 and the rest below apply as if the other class were not
// queued.
//
// Due times come first: an item whose `due` time has passed (the batcher sets it from the
// queue-time budget it admitted the request under) goes ahead of the fair order, earliest due
// first, so that fairness never makes an admitted request wait past what admission promised.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <span>
#include <vector>

namespace encserve::scheduler {

using Clock = std::chrono::steady_clock;

// A request's class (see above): interactive (the default) or batch (bulk work that yields).
enum class Priority : uint8_t { kInteractive = 0, kBatch = 1 };

struct PolicyOptions {
  bool enabled = true;
  int max_batch_size = 32;      // items (sequences) per batch
  int max_batch_tokens = 8192;  // tokens per batch (an item longer than this runs alone)
  std::chrono::microseconds max_wait{0};
  bool group_by_length = false;
  // Priorities (above): a batch item queued this long counts as interactive.
  std::chrono::microseconds batch_starvation_bound{2'000'000};
  // Tokens in a batch of batch items only (0: max_batch_tokens).
  int batch_class_max_tokens = 0;
  // No batch of batch items now (the caller keeps this worker for interactive work).
  bool batch_class_blocked = false;
};

// What the policy sees of one queued item.
struct QueuedItem {
  uint64_t request_id = 0;
  int tokens = 0;
  Clock::time_point enqueued;
  Clock::time_point deadline = Clock::time_point::max();
  bool cancelled = false;
  uint64_t client_id = 0;     // requests of one client (connection) share it
  int64_t offset = 0;         // tokens before this item in its request
  int64_t client_served = 0;  // tokens of this client run since its queue was last empty
  Clock::time_point due = Clock::time_point::max();  // should have started by then
  Priority priority = Priority::kInteractive;
};

struct BatchDecision {
  std::vector<size_t> take;       // queue indices, in batch order (empty: nothing to run now)
  std::vector<size_t> expired;    // past their deadline: drop, fail with DEADLINE_EXCEEDED
  std::vector<size_t> cancelled;  // request cancelled / failed: drop
  // When `take` is empty and items remain: decide again at this time (or on an arrival).
  std::optional<Clock::time_point> wake_at;
};

// Whether `item` is a batch item queued for batch_starvation_bound or longer (it then goes with
// the interactive ones).
bool Starved(const QueuedItem& item, Clock::time_point now, const PolicyOptions& options);

// One batch's worth of tokens for the fair order: max_batch_tokens, or max_batch_size items of
// the queue's mean length when that is less.
int64_t FairQuantum(const PolicyOptions& options, int64_t queued_items, int64_t queued_tokens);

// `queue` is in arrival order (index 0 is the oldest).
BatchDecision DecideBatch(std::span<const QueuedItem> queue, Clock::time_point now,
                          const PolicyOptions& options);

}  // namespace encserve::scheduler
