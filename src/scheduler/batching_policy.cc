#include "scheduler/batching_policy.h"

#include <algorithm>
#include <cstdlib>

namespace encserve::scheduler {

BatchDecision DecideBatch(std::span<const QueuedItem> queue, Clock::time_point now,
                          const PolicyOptions& options) {
  BatchDecision d;
  std::vector<size_t> live;
  live.reserve(queue.size());
  int64_t live_tokens = 0;
  for (size_t i = 0; i < queue.size(); ++i) {
    if (queue[i].cancelled) {
      d.cancelled.push_back(i);
    } else if (queue[i].deadline <= now) {
      d.expired.push_back(i);
    } else {
      live.push_back(i);
      live_tokens += queue[i].tokens;
    }
  }
  if (live.empty()) return d;

  const size_t max_items = static_cast<size_t>(std::max(1, options.max_batch_size));
  const int64_t max_tokens = std::max(1, options.max_batch_tokens);
  const QueuedItem& oldest = queue[live[0]];
  d.take.push_back(live[0]);
  int64_t tokens = oldest.tokens;

  if (!options.enabled) {
    // The oldest request alone, in order, up to the limits (the rest of it runs next).
    for (size_t k = 1; k < live.size() && d.take.size() < max_items; ++k) {
      const QueuedItem& item = queue[live[k]];
      if (item.request_id != oldest.request_id) continue;
      if (tokens + item.tokens > max_tokens) break;
      d.take.push_back(live[k]);
      tokens += item.tokens;
    }
    return d;
  }

  const bool full = live.size() >= max_items || live_tokens >= max_tokens;
  if (!full && now - oldest.enqueued < options.max_wait) {
    d.take.clear();
    d.wake_at = oldest.enqueued + options.max_wait;
    return d;
  }

  std::vector<size_t> candidates(live.begin() + 1, live.end());
  if (options.group_by_length) {
    // Closest in length to the oldest first; stable, so ties keep arrival order.
    std::stable_sort(candidates.begin(), candidates.end(), [&](size_t a, size_t b) {
      return std::abs(queue[a].tokens - oldest.tokens) < std::abs(queue[b].tokens - oldest.tokens);
    });
  }
  for (size_t idx : candidates) {
    if (d.take.size() >= max_items) break;
    if (tokens + queue[idx].tokens > max_tokens) continue;  // a smaller later item may fit
    d.take.push_back(idx);
    tokens += queue[idx].tokens;
  }
  return d;
}

}  // namespace encserve::scheduler
