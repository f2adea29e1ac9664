// The batcher's admission by the queue-time budget (batcher.h): the estimate of when a new
// request's first batch would be done, and the checks of Admit() and Submit().
#include <algorithm>
#include <string>

#include "scheduler/batcher.h"
#include "scheduler/batcher_pending.h"

namespace encserve::scheduler {

uint64_t Batcher::KeyOf(QueueKey key) {
  // A client's batch queue is another queue (a different key; a collision with another
  // client's interactive key would only merge their fair turns).
  return key.priority == Priority::kBatch ? key.client ^ 0x9e3779b97f4a7c15ULL : key.client;
}

double Batcher::ExpectedWaitLocked(QueueKey key, int64_t own_tokens, double* first_batch) const {
  *first_batch = 0;
  const double cost = cost_per_token_.load(std::memory_order_relaxed);
  if (cost <= 0) return 0;
  const int workers = std::max(1, options_.workers);
  // Tokens ahead of a new request of `key` in the fair order (batching_policy.h): all of
  // its own client's queued tokens, and of every other client those in the rounds up to the
  // one the new request falls in (its client's position / quantum). An interactive request
  // counts only interactive queues (batch items go after it), a batch request all of them.
  const bool interactive = key.priority == Priority::kInteractive;
  const uint64_t client = KeyOf(key);
  PolicyOptions policy = options_.policy;
  policy.max_batch_tokens = BatchTokenCap();
  const int64_t queued = queued_tokens_.load(std::memory_order_relaxed);
  const int64_t quantum =
      FairQuantum(policy, queued_items_.load(std::memory_order_relaxed), queued);
  auto own = clients_.find(client);
  int64_t round = 0, tokens = 0;
  if (own != clients_.end()) {
    round = (own->second.served + own->second.queued_tokens) / quantum;
    tokens = own->second.queued_tokens;
  }
  for (const auto& [id, c] : clients_) {
    if (id == client || (interactive && c.priority == Priority::kBatch)) continue;
    tokens += std::clamp((round + 1) * quantum - c.served, int64_t{0}, c.queued_tokens);
  }
  // Its own promised work (one worker runs it; PromisedTokensLocked): the whole request, or its
  // first batch within the batch token cap. (The batch it joins may be fuller: the bound is the
  // budget plus one batch, and the calibration leaves the other requests' share out too.)
  *first_batch = static_cast<double>(own_tokens) * cost;
  // What is left of the batches running now.
  const Clock::time_point now = Clock::now();
  double running = 0;
  for (const Running& r : running_) {
    if (r.tokens == 0) continue;
    running += std::max(0.0, static_cast<double>(r.tokens) * cost -
                                 std::chrono::duration<double>(now - r.start).count());
  }
  auto wait_s = [&](int64_t t) { return (static_cast<double>(t) * cost + running) / workers; };
  // Items that are due before its last promised batch would start go first
  // (batching_policy.h): under a sustained overload that is the whole queue, whatever the fair
  // order says. (Two passes: the items due before the start those push it to.)
  const double own_rest_s =
      static_cast<double>(std::max<int64_t>(0, own_tokens - policy.max_batch_tokens)) * cost;
  if (options_.queue_budget.count() > 0) {
    for (int pass = 0; pass < 2; ++pass) {
      const Clock::time_point horizon =
          now + std::chrono::duration_cast<Clock::duration>(
                    std::chrono::duration<double>(wait_s(tokens) + own_rest_s));
      int64_t due_first = 0;
      for (const Item& item : queue_) {
        if (interactive && item.pending->request->priority == Priority::kBatch) continue;
        if (item.due < horizon) due_first += item.tokens;
      }
      if (due_first <= tokens) break;
      tokens = due_first;
    }
  }
  return wait_s(tokens) + *first_batch;
}

Status Batcher::CheckBudgetLocked(QueueKey key, int64_t own_tokens, double* estimate,
                                  double* first_batch) const {
  if (options_.queue_budget.count() <= 0) return Status::Ok();
  const double budget_ms = static_cast<double>(options_.queue_budget.count());
  // One client may hold at most half the budget of queued work, so that a newcomer still fits:
  // work as admission expects it to take (scaled by the calibration factor, like the estimate a
  // newcomer is admitted on; unscaled, a client held up to ~1.3x the budget of real work on an
  // AVX2 EPYC, factor 2-2.7, and a one-in-flight client next to it was refused ~200 times in 5 s).
  auto own = clients_.find(KeyOf(key));
  const double cost = cost_per_token_.load(std::memory_order_relaxed);
  if (own != clients_.end() && cost > 0) {
    const double own_ms = static_cast<double>(own->second.queued_tokens) * cost *
                          calibration_.Factor() / std::max(1, options_.workers) * 1e3;
    if (own_ms > budget_ms / 2) {
      return ResourceExhausted("overloaded: this connection already has about " +
                               std::to_string(static_cast<int64_t>(own_ms)) +
                               " ms of work queued (at most half the queue budget of " +
                               std::to_string(options_.queue_budget.count()) +
                               " ms: queue.budget_ms); retry later");
    }
  }
  double batch_s = 0;
  const double raw = ExpectedWaitLocked(key, own_tokens, &batch_s);
  if (estimate) *estimate = raw;
  if (first_batch) *first_batch = batch_s;
  // Nothing queued ahead of it and a worker free (or nothing running): it starts now, and
  // refusing could not shorten any wait.
  if (raw - batch_s <= 0 ||
      (queue_.empty() && std::any_of(running_.begin(), running_.end(),
                                     [](const Running& r) { return r.tokens == 0; }))) {
    return Status::Ok();
  }
  const double wait_ms = raw * calibration_.Factor() * 1e3;
  if (wait_ms <= budget_ms) return Status::Ok();
  return ResourceExhausted("overloaded: a new request's first batch would be done in about " +
                           std::to_string(static_cast<int64_t>(wait_ms)) +
                           " ms (queued and running work, then its own batch; queue budget " +
                           std::to_string(options_.queue_budget.count()) +
                           " ms: queue.budget_ms, --queue-budget-ms); retry later");
}

Status Batcher::Admit(uint64_t client, int items, Priority priority) const {
  std::lock_guard<std::mutex> lock(mu_);
  if (!accepting_) return Unavailable("server is shutting down");
  return CheckBudgetLocked(QueueKey{client, priority}, OwnTokensLocked(items), nullptr, nullptr);
}

double Batcher::ExpectedWaitSeconds(uint64_t client, int items, Priority priority) const {
  std::lock_guard<std::mutex> lock(mu_);
  double first_batch = 0;
  return ExpectedWaitLocked(QueueKey{client, priority}, OwnTokensLocked(items), &first_batch) *
         calibration_.Factor();
}

double Batcher::wait_factor() const {
  std::lock_guard<std::mutex> lock(mu_);
  return calibration_.Factor();
}

std::vector<double> Batcher::wait_ratios() const {
  std::lock_guard<std::mutex> lock(mu_);
  return calibration_.Ratios();
}

void Batcher::AddWaitRatiosForTest(double ratio, int n) {
  std::lock_guard<std::mutex> lock(mu_);
  for (int i = 0; i < n; ++i) calibration_.Add(ratio);
}

void Batcher::RecordFirstBatches(const std::vector<Item>& batch, Clock::time_point start) {
  if (options_.queue_budget.count() <= 0) return;
  const Clock::time_point end = Clock::now();
  // The estimate covers the work ahead of a request and its own tokens, not the rest of the
  // batch it joins (the bound is the budget plus one batch time): that part of the batch's
  // time, the others' share of its tokens, is left out of the comparison. (Counted, it made
  // the factor ~3 for a one-text request that joined a batch of long texts on an AVX2 EPYC,
  // and the next one-text request was refused.)
  int64_t batch_tokens = 0;
  for (const Item& item : batch) batch_tokens += item.tokens;
  const double compute_s = std::chrono::duration<double>(end - start).count();
  struct First {
    double estimate, actual;
    const Pending* pending;
  };
  std::vector<First> firsts;  // requests' first batches
  for (const Item& item : batch) {
    Pending& p = *item.pending;
    if (p.estimate_s <= 0 || p.first_done.exchange(true)) continue;
    int64_t own = 0;
    for (const Item& other : batch) {
      if (other.pending.get() == &p) own += other.tokens;
    }
    const double others_s = batch_tokens > 0 ? compute_s * static_cast<double>(batch_tokens - own) /
                                                   static_cast<double>(batch_tokens)
                                             : 0.0;
    firsts.push_back(
        First{p.estimate_s,
              std::chrono::duration<double>(end - p.request->enqueued).count() - others_s, &p});
  }
  if (firsts.empty()) return;
  const double budget_s = static_cast<double>(options_.queue_budget.count()) * 1e-3;
  std::lock_guard<std::mutex> lock(mu_);
  for (const First& f : firsts) {
    // A batch request that interactive batches overtook waited for work its estimate left out.
    if (f.pending->request->priority == Priority::kBatch &&
        f.pending->interactive_epoch != interactive_batches_) {
      continue;
    }
    if (calibration_.Counts(f.estimate, budget_s)) calibration_.Add(f.actual / f.estimate);
  }
}

int64_t Batcher::OwnTokensLocked(int items) const {
  const auto whole = static_cast<int64_t>(items * tokens_per_item_);
  const auto first =
      static_cast<int64_t>(std::min(items, options_.policy.max_batch_size) * tokens_per_item_);
  return PromisedTokensLocked(whole, std::min<int64_t>(first, BatchTokenCap()));
}

int64_t Batcher::PromisedTokensLocked(int64_t whole, int64_t first_batch) const {
  const double cost = cost_per_token_.load(std::memory_order_relaxed);
  const double budget_s = static_cast<double>(options_.queue_budget.count()) * 1e-3;
  return static_cast<double>(whole) * cost <= budget_s ? whole : first_batch;
}

int Batcher::BatchTokenCap() const {
  const double cost = cost_per_token_.load(std::memory_order_relaxed);
  if (options_.queue_budget.count() <= 0 || cost <= 0) return options_.policy.max_batch_tokens;
  const double half_budget_s = static_cast<double>(options_.queue_budget.count()) * 0.5e-3;
  const double cap = std::max(1.0, half_budget_s / cost);
  return cap < options_.policy.max_batch_tokens ? static_cast<int>(cap)
                                                : options_.policy.max_batch_tokens;
}

bool Batcher::InteractiveAroundLocked(Clock::time_point now) const {
  return last_interactive_ != Clock::time_point{} &&
         now - last_interactive_ <= options_.interactive_window;
}

int Batcher::BatchClassCapLocked(Clock::time_point now) const {
  const double cost = cost_per_token_.load(std::memory_order_relaxed);
  if (options_.batch_slice.count() <= 0 || cost <= 0 || !InteractiveAroundLocked(now)) {
    return 0;
  }
  const double slice_s = static_cast<double>(options_.batch_slice.count()) * 1e-6;
  return static_cast<int>(std::clamp(slice_s / cost, 1.0, 1e9));
}

}  // namespace encserve::scheduler
