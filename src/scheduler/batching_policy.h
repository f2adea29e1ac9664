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
//      starvation); the rest are taken in arrival order, or, with group_by_length, the items
//      closest in length to the oldest one first (ties: older first), within both limits.
// With batching off, a batch is the oldest request's items alone (split at the limits).
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <span>
#include <vector>

namespace encserve::scheduler {

using Clock = std::chrono::steady_clock;

struct PolicyOptions {
  bool enabled = true;
  int max_batch_size = 32;      // items (sequences) per batch
  int max_batch_tokens = 8192;  // tokens per batch (an item longer than this runs alone)
  std::chrono::microseconds max_wait{0};
  bool group_by_length = false;
};

// What the policy sees of one queued item.
struct QueuedItem {
  uint64_t request_id = 0;
  int tokens = 0;
  Clock::time_point enqueued;
  Clock::time_point deadline = Clock::time_point::max();
  bool cancelled = false;
};

struct BatchDecision {
  std::vector<size_t> take;       // queue indices, in batch order (empty: nothing to run now)
  std::vector<size_t> expired;    // past their deadline: drop, fail with DEADLINE_EXCEEDED
  std::vector<size_t> cancelled;  // request cancelled / failed: drop
  // When `take` is empty and items remain: decide again at this time (or on an arrival).
  std::optional<Clock::time_point> wake_at;
};

// `queue` is in arrival order (index 0 is the oldest).
BatchDecision DecideBatch(std::span<const QueuedItem> queue, Clock::time_point now,
                          const PolicyOptions& options);

}  // namespace encserve::scheduler
