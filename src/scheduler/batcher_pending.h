// Internal to the batcher (batcher.cc, batcher_admission.cc): one request's completion state.
#pragma once

#include <atomic>
#include <memory>
#include <mutex>

#include "scheduler/batcher.h"

namespace encserve::scheduler {

struct Batcher::Pending {
  std::shared_ptr<BatchRequest> request;
  uint64_t id = 0;
  uint64_t key = 0;                // KeyOf its client and class
  uint64_t interactive_epoch = 0;  // interactive_batches_ when it was queued
  std::atomic<int> remaining{0};
  std::atomic<bool> failed{false};
  std::mutex mu;
  Status status;                                // the first error
  int64_t queued_items = 0, queued_tokens = 0;  // guarded by Batcher::mu_
  double estimate_s = 0;  // admission's unscaled estimate: enqueued to first batch done
  std::atomic<bool> first_done{false};
  bool Dropped() const {
    return failed.load(std::memory_order_relaxed) ||
           (request->cancelled && request->cancelled->load(std::memory_order_relaxed));
  }
};

}  // namespace encserve::scheduler
