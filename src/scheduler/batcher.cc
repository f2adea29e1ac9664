#include "scheduler/batcher.h"

#include <algorithm>
#include <cstring>
#include <optional>
#include <string>
#include <utility>

#include "scheduler/batcher_pending.h"

namespace encserve::scheduler {

Batcher::Batcher(const backends::Backend& backend, BatcherOptions options, BatcherObserver observer)
    : backend_(backend), options_(std::move(options)), observer_(std::move(observer)) {
  const int n = std::max(1, options_.workers);
  running_.resize(static_cast<size_t>(n));
  for (int i = 0; i < n; ++i) {
    workers_.emplace_back([this, i] { WorkerLoop(static_cast<size_t>(i)); });
  }
}

Batcher::~Batcher() {
  Shutdown(Clock::now());
}

Status Batcher::Submit(std::shared_ptr<BatchRequest> request) {
  const int n = static_cast<int>(request->inputs.size());
  if (n == 0) return InvalidArgument("empty request");
  int64_t tokens = 0;
  for (const Encoding& e : request->inputs) tokens += static_cast<int64_t>(e.ids.size());
  if (n > options_.max_queue_items || tokens > options_.max_queue_tokens) {
    return OutOfRange("request of " + std::to_string(n) + " items / " + std::to_string(tokens) +
                      " tokens exceeds the queue capacity (" +
                      std::to_string(options_.max_queue_items) + " items / " +
                      std::to_string(options_.max_queue_tokens) + " tokens)");
  }
  const int dim =
      request->task == Task::kEmbed ? backend_.info().hidden_size : backend_.info().num_labels;
  request->out.rows = n;
  request->out.dim = dim;
  request->out.data.assign(static_cast<size_t>(n) * dim, 0.0f);
  auto pending = std::make_shared<Pending>();
  pending->request = request;
  pending->remaining.store(n, std::memory_order_relaxed);
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (!accepting_) return Unavailable("server is shutting down");
    const int64_t items_now = queued_items_.load(std::memory_order_relaxed);
    const int64_t tokens_now = queued_tokens_.load(std::memory_order_relaxed);
    if (items_now + n > options_.max_queue_items ||
        tokens_now + tokens > options_.max_queue_tokens) {
      return ResourceExhausted("queue full (" + std::to_string(items_now) + " items, " +
                               std::to_string(tokens_now) + " tokens queued); retry later");
    }
    // Its first batch's tokens; what admission promises: the whole request when it is at most
    // the budget of work, else that first batch.
    const int64_t batch_cap = BatchTokenCap();
    int64_t first_tokens = 0;
    for (int i = 0; i < n; ++i) {
      const int64_t t = static_cast<int64_t>(request->inputs[i].ids.size());
      if (i > 0 && (i >= options_.policy.max_batch_size || first_tokens + t > batch_cap)) break;
      first_tokens += t;
    }
    const int64_t promised = PromisedTokensLocked(tokens, first_tokens);
    double promised_s = 0;
    const QueueKey key{request->client, request->priority};
    RETURN_IF_ERROR(CheckBudgetLocked(key, promised, &pending->estimate_s, &promised_s));
    // (The calibration compares estimates with when the first batch is done.)
    pending->estimate_s += static_cast<double>(first_tokens - promised) *
                           cost_per_token_.load(std::memory_order_relaxed);
    const double per_item = static_cast<double>(tokens) / n;
    tokens_per_item_ = tokens_per_item_ <= 0 ? per_item : 0.9 * tokens_per_item_ + 0.1 * per_item;
    pending->id = next_request_id_++;
    pending->key = KeyOf(key);
    pending->interactive_epoch = interactive_batches_;
    request->enqueued = Clock::now();
    if (request->priority == Priority::kInteractive) last_interactive_ = request->enqueued;
    EnqueueLocked(pending, batch_cap, promised_s, promised == tokens);
    ClientState& c = clients_[pending->key];
    c.priority = request->priority;
    c.queued += n;
    c.queued_tokens += tokens;
    queued_items_.fetch_add(n, std::memory_order_relaxed);
    queued_tokens_.fetch_add(tokens, std::memory_order_relaxed);
  }
  cv_.notify_one();
  return Status::Ok();
}

void Batcher::EnqueueLocked(const std::shared_ptr<Pending>& pending, int64_t batch_cap,
                            double promised_s, bool whole) {
  BatchRequest& request = *pending->request;
  const int n = static_cast<int>(request.inputs.size());
  const double cost = cost_per_token_.load(std::memory_order_relaxed);
  // Due times (none without a budget or a measured cost). Admission promised the request done
  // within the budget when it is at most the budget of work (`whole`), else its first batch: the
  // first batch is due when the promised work must start, and each later batch of a request
  // promised whole when the one before it is done, so that its rest does not wait behind every
  // newer request's first batch under a sustained overload. A larger request's later batches
  // have no due time: they follow the fair order (a due time for each would take the worker
  // from newer small requests, or have them refused).
  const bool timed = options_.queue_budget.count() > 0 && cost > 0;
  auto seconds = [](double s) {
    return std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(s));
  };
  Clock::time_point due =
      request.enqueued +
      std::max(
          Clock::duration::zero(),
          std::chrono::duration_cast<Clock::duration>(options_.queue_budget) - seconds(promised_s));
  int in_batch = 0;
  int64_t batch_tokens = 0, offset = 0;
  for (int i = 0; i < n; ++i) {
    const int t = static_cast<int>(request.inputs[i].ids.size());
    if (in_batch > 0 &&
        (in_batch >= options_.policy.max_batch_size || batch_tokens + t > batch_cap)) {
      // The next batch: when the one before is done, or no due time.
      due = whole ? due + seconds(static_cast<double>(batch_tokens) * cost)
                  : Clock::time_point::max();
      in_batch = 0;
      batch_tokens = 0;
    }
    ++in_batch;
    batch_tokens += t;
    Item item{pending, i, t, offset};
    if (timed) item.due = due;  // (max: none)
    queue_.push_back(std::move(item));
    offset += t;
  }
}

void Batcher::Unqueue(const Item& item) {
  auto c = clients_.find(item.pending->key);
  if (c == clients_.end()) return;
  c->second.served += item.tokens;
  c->second.queued_tokens -= item.tokens;
  if (--c->second.queued == 0) clients_.erase(c);
}

void Batcher::FinishItems(const std::shared_ptr<Pending>& p, int n, const Status& status) {
  if (!status.ok()) {
    std::lock_guard<std::mutex> lock(p->mu);
    if (p->status.ok()) p->status = status;
    p->failed.store(true, std::memory_order_relaxed);
  }
  if (p->remaining.fetch_sub(n, std::memory_order_acq_rel) == n) {
    Status final_status;
    {
      std::lock_guard<std::mutex> lock(p->mu);
      final_status = p->status;
    }
    if (p->request->on_done) p->request->on_done(final_status, p->request->out);
  }
}

void Batcher::WorkerLoop(size_t slot) {
  std::unique_lock<std::mutex> lock(mu_);
  std::vector<QueuedItem> view;
  // The cost per token is measured over a worker's whole cycle while it goes from batch to
  // batch (time between the ends of two batches), so that it includes what the worker loses
  // between batches (the queue lock, the policy, a core shared with the front ends).
  Clock::time_point last_end{};
  bool back_to_back = false;
  while (true) {
    if (queue_.empty()) {
      back_to_back = false;
      if (stop_) return;
      // Poll briefly before sleeping: a request arriving right after a batch (the usual case
      // under closed-loop load) then skips the futex wake-up.
      if (options_.idle_spin_us > 0) {
        lock.unlock();
        const Clock::time_point until =
            Clock::now() + std::chrono::microseconds(options_.idle_spin_us);
        while (queued_items_.load(std::memory_order_relaxed) == 0 && Clock::now() < until) {
          std::this_thread::yield();
        }
        lock.lock();
        if (!queue_.empty() || stop_) continue;
      }
      cv_.wait(lock);
      continue;
    }
    const Clock::time_point now = Clock::now();
    std::vector<Item> batch, dropped;
    Lane lane = Lane::kBatch;
    std::vector<StatusCode> reasons;
    if (stop_ && now >= drain_deadline_) {
      for (Item& item : queue_) {
        Unqueue(item);
        dropped.push_back(std::move(item));
        reasons.push_back(StatusCode::kUnavailable);
      }
      queue_.clear();
    } else {
      view.clear();
      for (const Item& item : queue_) {
        const BatchRequest& r = *item.pending->request;
        auto c = clients_.find(item.pending->key);
        view.push_back(QueuedItem{item.pending->id, item.tokens, r.enqueued, r.deadline,
                                  item.pending->Dropped(), item.pending->key, item.offset,
                                  c == clients_.end() ? 0 : c->second.served, item.due,
                                  r.priority});
      }
      PolicyOptions policy = options_.policy;
      policy.max_batch_tokens = BatchTokenCap();
      policy.batch_class_max_tokens = BatchClassCapLocked(now);
      // With two or more workers, one stays free for interactive work while it is around.
      const int workers = std::max(1, options_.workers);
      policy.batch_class_blocked = workers >= 2 && batch_class_running_ >= workers - 1 &&
                                   accepting_ && InteractiveAroundLocked(now);
      if (!accepting_) policy.max_wait = std::chrono::microseconds(0);  // nothing more will come
      BatchDecision d = DecideBatch(view, now, policy);
      if (d.take.empty() && d.expired.empty() && d.cancelled.empty()) {
        back_to_back = false;
        std::optional<Clock::time_point> wake = d.wake_at;
        if (policy.batch_class_blocked) {  // (free for batch work again when the window ends)
          const Clock::time_point free_at = last_interactive_ + options_.interactive_window;
          wake = wake ? std::min(*wake, free_at) : free_at;
        }
        if (wake) {
          cv_.wait_until(lock, std::min(*wake, drain_deadline_));
        } else {
          cv_.wait(lock);
        }
        continue;
      }
      std::vector<char> removed(queue_.size(), 0);
      bool interactive = false, starved = false;
      for (size_t i : d.take) {
        batch.push_back(queue_[i]);
        removed[i] = 1;
        interactive |= view[i].priority == Priority::kInteractive;  // (view[i] is queue_[i])
        starved |= Starved(view[i], now, policy);
      }
      lane = interactive ? Lane::kInteractive : starved ? Lane::kStarved : Lane::kBatch;
      if (interactive) ++interactive_batches_;
      if (!batch.empty() && lane == Lane::kBatch) ++batch_class_running_;
      for (size_t i : d.expired) {
        dropped.push_back(queue_[i]);
        reasons.push_back(StatusCode::kDeadlineExceeded);
        removed[i] = 1;
      }
      for (size_t i : d.cancelled) {
        dropped.push_back(queue_[i]);
        reasons.push_back(StatusCode::kCancelled);
        removed[i] = 1;
      }
      std::deque<Item> rest;
      for (size_t i = 0; i < queue_.size(); ++i) {
        if (removed[i]) {
          Unqueue(queue_[i]);
        } else {
          rest.push_back(std::move(queue_[i]));
        }
      }
      queue_.swap(rest);
    }
    int64_t tokens = 0;
    for (const Item& item : batch) tokens += item.tokens;
    running_[slot] = Running{Clock::now(), tokens};  // RunBatch clears it when compute ends
    for (const Item& item : dropped) tokens += item.tokens;
    queued_items_.fetch_sub(static_cast<int64_t>(batch.size() + dropped.size()),
                            std::memory_order_relaxed);
    queued_tokens_.fetch_sub(tokens, std::memory_order_relaxed);
    lock.unlock();
    for (size_t i = 0; i < dropped.size(); ++i) {
      const StatusCode code = reasons[i];
      Status status =
          code == StatusCode::kDeadlineExceeded ? DeadlineExceeded("deadline exceeded while queued")
          : code == StatusCode::kCancelled      ? Cancelled("request cancelled")
                                           : Unavailable("server shut down before the request ran");
      if (observer_.on_dropped) observer_.on_dropped(code, 1);
      FinishItems(dropped[i].pending, 1, status);
    }
    dropped.clear();
    if (!batch.empty()) {
      const Clock::time_point cycle_start = back_to_back ? last_end : Clock::now();
      RunBatch(batch, cycle_start, slot, lane);
      last_end = Clock::now();
      back_to_back = true;
    }
    lock.lock();
    if (!batch.empty() && lane == Lane::kBatch) --batch_class_running_;
  }
}

void PauseGate::Yield() const {
  if (urgent_.load(std::memory_order_acquire) == 0) return;
  std::unique_lock<std::mutex> lock(mu_);
  pauses_.fetch_add(1, std::memory_order_relaxed);
  cv_.wait(lock, [this] { return urgent_.load(std::memory_order_acquire) == 0; });
}

void PauseGate::Enter() {
  urgent_.fetch_add(1, std::memory_order_acq_rel);
}

void PauseGate::Leave() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    urgent_.fetch_sub(1, std::memory_order_acq_rel);
  }
  cv_.notify_all();
}

namespace {
// The earliest start of the request's batches (two workers may run its items at once).
void MarkFirstBatch(BatchRequest& r, Clock::time_point start) {
  const int64_t t = start.time_since_epoch().count();
  int64_t seen = r.first_batch_ticks.load(std::memory_order_relaxed);
  while ((seen == 0 || t < seen) &&
         !r.first_batch_ticks.compare_exchange_weak(seen, t, std::memory_order_relaxed)) {
  }
}
}  // namespace

void Batcher::RunBatch(std::vector<Item>& batch, Clock::time_point cycle_start, size_t slot,
                       Lane lane) {
  running_items_.fetch_add(static_cast<int64_t>(batch.size()), std::memory_order_relaxed);
  // Interactive work pauses batch work for its duration; batch work yields to it.
  // (Starved batch work neither pauses nor yields: it runs, in a slice while interactive
  // requests are around.)
  if (lane == Lane::kInteractive) gate_.Enter();
  std::optional<core::ScopedYieldHook> yield;
  if (lane == Lane::kBatch) yield.emplace(&gate_);
  const uint64_t pauses = gate_.pauses();
  const Clock::time_point start = Clock::now();
  int64_t ok_tokens = 0;
  const Task last_task =
      std::any_of(batch.begin(), batch.end(),
                  [](const Item& i) { return i.pending->request->task == Task::kLogits; })
          ? Task::kLogits
          : Task::kEmbed;
  for (Task task : {Task::kEmbed, Task::kLogits}) {
    TokenBatch tokens;
    std::vector<const Item*> items;
    int max_len = 0;
    for (const Item& item : batch) {
      const BatchRequest& r = *item.pending->request;
      if (r.task != task) continue;
      const Encoding& e = r.inputs[item.index];
      tokens.Add(e.ids, e.type_ids);
      max_len = std::max(max_len, static_cast<int>(e.ids.size()));
      items.push_back(&item);
      if (observer_.on_queue_time) {
        observer_.on_queue_time(std::chrono::duration<double>(start - r.enqueued).count(),
                                r.priority);
      }
      MarkFirstBatch(*item.pending->request, start);
    }
    if (items.empty()) continue;
    const Clock::time_point t0 = Clock::now();
    StatusOr<Embeddings> out = backend_.Run(task, tokens);
    if (out.ok()) {
      if (Status st = backends::CheckOutputShape(backend_.info(), task, tokens, *out); !st.ok()) {
        out = st;
      }
    }
    const double seconds = std::chrono::duration<double>(Clock::now() - t0).count();
    if (out.ok()) ok_tokens += tokens.num_tokens();
    if (task == last_task) {
      // The worker's compute is done: admission must not count it as running once its
      // results are out (a client's next request, sent on this answer, would see it).
      std::lock_guard<std::mutex> lock(mu_);
      running_[slot].tokens = 0;
    }
    if (observer_.on_batch) {
      observer_.on_batch(static_cast<int>(items.size()), tokens.num_tokens(), max_len, seconds);
    }
    for (size_t k = 0; k < items.size(); ++k) {
      const Item& item = *items[k];
      if (out.ok()) {
        Embeddings& dst = item.pending->request->out;
        std::memcpy(dst.data.data() + static_cast<size_t>(item.index) * dst.dim,
                    out->row(static_cast<int>(k)), sizeof(float) * dst.dim);
        FinishItems(item.pending, 1, Status::Ok());
      } else {
        FinishItems(item.pending, 1, out.status());
      }
    }
  }
  if (lane == Lane::kInteractive) gate_.Leave();
  running_items_.fetch_sub(static_cast<int64_t>(batch.size()), std::memory_order_relaxed);
  RecordFirstBatches(batch, start);
  // (A batch of batch work that was paused, or may have been, took longer than its work: not a
  // sample. An interactive batch had the cores.)
  if (ok_tokens > 0 && (lane != Lane::kBatch || gate_.pauses() == pauses)) {
    const double sample =
        std::chrono::duration<double>(Clock::now() - cycle_start).count() / ok_tokens;
    const double prev = cost_per_token_.load(std::memory_order_relaxed);
    cost_per_token_.store(prev <= 0 ? sample : 0.8 * prev + 0.2 * sample,
                          std::memory_order_relaxed);
  }
}

void Batcher::Shutdown(Clock::time_point deadline) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (workers_.empty()) return;
    accepting_ = false;
    stop_ = true;
    drain_deadline_ = deadline;
  }
  cv_.notify_all();
  for (std::thread& t : workers_) t.join();
  workers_.clear();
}

}  // namespace encserve::scheduler
