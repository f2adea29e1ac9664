#include "scheduler/batching_policy.h"

#include <algorithm>
#include <cstdlib>
#include <tuple>
#include <unordered_map>

namespace encserve::scheduler {
namespace {

// `live` (arrival order) in fair order: see the header.
std::vector<size_t> FairOrder(std::span<const QueuedItem> queue, const std::vector<size_t>& live,
                              int64_t quantum) {
  const int64_t q = std::max<int64_t>(1, quantum);
  std::unordered_map<uint64_t, int> client_rank, request_rank;
  std::unordered_map<uint64_t, int> requests_of_client;
  struct Key {
    int64_t round;
    int rank;
    size_t order, idx;
  };
  std::vector<Key> keys;
  keys.reserve(live.size());
  for (size_t k = 0; k < live.size(); ++k) {
    const QueuedItem& it = queue[live[k]];
    client_rank.emplace(it.client_id, static_cast<int>(client_rank.size()));
    if (!request_rank.count(it.request_id)) {
      request_rank[it.request_id] = requests_of_client[it.client_id]++;
    }
    keys.push_back(Key{it.offset / q, request_rank[it.request_id], k, live[k]});
  }
  // Within each client: rounds over its requests. Stable on arrival order.
  auto by_round = [](const Key& a, const Key& b) {
    return std::tie(a.round, a.rank, a.order) < std::tie(b.round, b.rank, b.order);
  };
  std::sort(keys.begin(), keys.end(), by_round);
  // Position (in tokens) within its client's sequence, then rounds over clients.
  std::unordered_map<uint64_t, int64_t> position;
  for (Key& k : keys) {
    const QueuedItem& it = queue[k.idx];
    int64_t& before = position[it.client_id];
    k.round = (it.client_served + before) / q;
    k.rank = client_rank[it.client_id];
    k.order = static_cast<size_t>(before);
    before += it.tokens;
  }
  std::sort(keys.begin(), keys.end(), by_round);
  std::vector<size_t> out;
  out.reserve(keys.size());
  for (const Key& k : keys) out.push_back(k.idx);
  return out;
}

// Keeps in `live` the class served now (batching_policy.h); lowers `max_tokens` to the batch
// class's cap when only batch items are queued.
void SelectClass(std::span<const QueuedItem> queue, Clock::time_point now,
                 const PolicyOptions& options, std::vector<size_t>* live, int64_t* live_tokens,
                 int64_t* max_tokens) {
  auto urgent = [&](size_t i) {
    return queue[i].priority == Priority::kInteractive || Starved(queue[i], now, options);
  };
  const size_t n_urgent = static_cast<size_t>(std::count_if(live->begin(), live->end(), urgent));
  if (n_urgent == 0) {
    if (options.batch_class_blocked) {
      live->clear();
      return;
    }
    if (options.batch_class_max_tokens > 0) {
      *max_tokens = std::min<int64_t>(*max_tokens, options.batch_class_max_tokens);
    }
    return;
  }
  // Starved batch items keep their class's slice: they go first, not in full batches.
  if (options.batch_class_max_tokens > 0 && std::any_of(live->begin(), live->end(), [&](size_t i) {
        return Starved(queue[i], now, options);
      })) {
    *max_tokens = std::min<int64_t>(*max_tokens, options.batch_class_max_tokens);
  }
  if (n_urgent == live->size()) return;
  std::erase_if(*live, [&](size_t i) { return !urgent(i); });
  *live_tokens = 0;
  for (size_t i : *live) *live_tokens += queue[i].tokens;
}

}  // namespace

bool Starved(const QueuedItem& item, Clock::time_point now, const PolicyOptions& options) {
  return item.priority == Priority::kBatch && now - item.enqueued >= options.batch_starvation_bound;
}

int64_t FairQuantum(const PolicyOptions& options, int64_t queued_items, int64_t queued_tokens) {
  const int64_t by_tokens = std::max(1, options.max_batch_tokens);
  if (queued_items <= 0) return by_tokens;
  const int64_t by_items =
      std::max<int64_t>(1, std::max(1, options.max_batch_size) * queued_tokens / queued_items);
  return std::min(by_tokens, by_items);
}

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
  int64_t max_tokens = std::max(1, options.max_batch_tokens);
  SelectClass(queue, now, options, &live, &live_tokens, &max_tokens);
  if (live.empty()) return d;  // (only batch items, and they are blocked)
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

  std::vector<size_t> candidates;
  if (options.group_by_length) {
    candidates.assign(live.begin() + 1, live.end());
    // Closest in length to the oldest first; stable, so ties keep arrival order.
    std::stable_sort(candidates.begin(), candidates.end(), [&](size_t a, size_t b) {
      return std::abs(queue[a].tokens - oldest.tokens) < std::abs(queue[b].tokens - oldest.tokens);
    });
  } else {
    // The oldest item is already taken (no starvation); the rest follow in fair order.
    PolicyOptions fair = options;
    fair.max_batch_tokens = static_cast<int>(max_tokens);
    candidates =
        FairOrder(queue, live, FairQuantum(fair, static_cast<int64_t>(live.size()), live_tokens));
    candidates.erase(std::find(candidates.begin(), candidates.end(), live[0]));
    // Items past their due time first, earliest due first (stable: fair order among equals).
    auto late_end = std::stable_partition(candidates.begin(), candidates.end(),
                                          [&](size_t i) { return queue[i].due <= now; });
    std::stable_sort(candidates.begin(), late_end,
                     [&](size_t a, size_t b) { return queue[a].due < queue[b].due; });
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
