#include "backends/fallback.h"

#include <algorithm>
#include <condition_variable>

namespace encserve::backends {

struct FallbackChain::Member {
  std::string name;
  std::unique_ptr<Backend> backend;  // null: failed to load
  std::string load_error;
  // Guarded by the chain's mu_.
  int consecutive_failures = 0;
  bool out_of_service = false;
  Clock::time_point retry_at{};
  int backoff_ms = 0;
  int64_t batches = 0, failures = 0;
};

FallbackChain::FallbackChain(FallbackPolicy policy, FallbackObserver observer)
    : policy_(policy), observer_(std::move(observer)) {}

FallbackChain::~FallbackChain() {
  std::lock_guard<std::mutex> lock(threads_mu_);
  for (TimedThread& t : threads_) t.thread.join();  // timed-out attempts still running
}

StatusOr<std::unique_ptr<FallbackChain>> FallbackChain::Load(const std::vector<std::string>& names,
                                                             const CommonOptions& common,
                                                             const Sections& sections,
                                                             FallbackPolicy policy,
                                                             FallbackObserver observer) {
  if (names.empty()) return InvalidArgument("no backend given");
  std::unique_ptr<FallbackChain> c(new FallbackChain(policy, std::move(observer)));
  std::string errors;
  Status first_error;
  for (const std::string& name : names) {
    auto m = std::make_unique<Member>();
    m->name = name;
    auto b = CreateBackend(name, common, sections);
    if (b.ok()) {
      m->backend = std::move(b).value();
      if (c->observer_.log && names.size() > 1) {
        c->observer_.log("backend " + name + ": " + m->backend->info().description);
      }
    } else {
      if (first_error.ok()) first_error = b.status();
      m->load_error = b.status().ToString();
      errors += (errors.empty() ? "" : "; ") + m->load_error;
      if (c->observer_.log && names.size() > 1)
        c->observer_.log("backend " + name + " failed to load: " + m->load_error);
    }
    c->members_.push_back(std::move(m));
  }
  // Load failures: counted once, as a fallback to the next member that loaded.
  for (size_t i = 0; i < c->members_.size(); ++i) {
    if (c->members_[i]->backend) continue;
    if (c->observer_.on_failure) c->observer_.on_failure(c->members_[i]->name, "load");
    for (size_t j = i + 1; j < c->members_.size(); ++j) {
      if (!c->members_[j]->backend) continue;
      if (c->observer_.on_fallback) {
        c->observer_.on_fallback(c->members_[i]->name, c->members_[j]->name, "load");
      }
      if (c->observer_.log) {
        c->observer_.log("falling back from " + c->members_[i]->name + " to " +
                         c->members_[j]->name);
      }
      break;
    }
  }
  if (std::none_of(c->members_.begin(), c->members_.end(),
                   [](const auto& m) { return m->backend != nullptr; })) {
    if (names.size() == 1) return first_error;
    return Unavailable("no backend of the chain loaded: " + errors);
  }
  RETURN_IF_ERROR(c->CheckShapes());
  return c;
}

StatusOr<std::unique_ptr<FallbackChain>> FallbackChain::FromBackends(
    std::vector<std::unique_ptr<Backend>> backends, FallbackPolicy policy,
    FallbackObserver observer) {
  if (backends.empty()) return InvalidArgument("no backend given");
  std::unique_ptr<FallbackChain> c(new FallbackChain(policy, std::move(observer)));
  for (auto& b : backends) {
    if (!b) return InvalidArgument("null backend in the chain");
    auto m = std::make_unique<Member>();
    m->name = b->info().name;
    m->backend = std::move(b);
    c->members_.push_back(std::move(m));
  }
  RETURN_IF_ERROR(c->CheckShapes());
  return c;
}

Status FallbackChain::CheckShapes() const {
  const BackendInfo& first = info();
  for (const auto& m : members_) {
    if (!m->backend) continue;
    const BackendInfo& i = m->backend->info();
    if (i.kind != first.kind || i.hidden_size != first.hidden_size ||
        i.num_labels != first.num_labels) {
      return InvalidArgument("backends " + first.name + " and " + i.name +
                             " disagree on the model's shape (hidden size / labels)");
    }
  }
  return Status::Ok();
}

const BackendInfo& FallbackChain::info() const {
  for (const auto& m : members_) {
    if (m->backend) return m->backend->info();
  }
  static const BackendInfo kNone;  // unreachable: Load needs one loaded member
  return kNone;
}

std::vector<FallbackChain::Member*> FallbackChain::Order(Clock::time_point now) const {
  std::vector<Member*> ready, resting;
  std::lock_guard<std::mutex> lock(mu_);
  for (const auto& m : members_) {
    if (!m->backend) continue;
    (m->out_of_service && now < m->retry_at ? resting : ready).push_back(m.get());
  }
  // Nobody in service: try them all rather than refuse the batch.
  return ready.empty() ? resting : ready;
}

StatusOr<Embeddings> FallbackChain::Attempt(const Member& m, Task task, const TokenBatch& batch,
                                            bool with_timeout) const {
  if (!with_timeout) return m.backend->Run(task, batch);
  struct Shared {
    std::mutex mu;
    std::condition_variable cv;
    bool done = false;
    StatusOr<Embeddings> result = Embeddings{};
    TokenBatch batch;  // a copy: the caller's batch may be gone when a late answer comes
  };
  auto s = std::make_shared<Shared>();
  s->batch = batch;
  const Backend* backend = m.backend.get();
  auto finished = std::make_shared<std::atomic<bool>>(false);
  {
    std::lock_guard<std::mutex> lock(threads_mu_);
    // Join the attempts that have ended (their answers were taken or dropped).
    auto ended = std::partition(threads_.begin(), threads_.end(),
                                [](const TimedThread& t) { return !t.finished->load(); });
    for (auto it = ended; it != threads_.end(); ++it) it->thread.join();
    threads_.erase(ended, threads_.end());
    threads_.push_back({std::thread([s, backend, task, finished] {
                          StatusOr<Embeddings> r = backend->Run(task, s->batch);
                          {
                            std::lock_guard<std::mutex> l(s->mu);
                            s->result = std::move(r);
                            s->done = true;
                          }
                          s->cv.notify_all();
                          finished->store(true);
                        }),
                        finished});
  }
  std::unique_lock<std::mutex> lock(s->mu);
  if (!s->cv.wait_for(lock, std::chrono::milliseconds(policy_.batch_timeout_ms),
                      [&] { return s->done; })) {
    return DeadlineExceeded("backend " + m.name + " did not answer within " +
                            std::to_string(policy_.batch_timeout_ms) + " ms");
  }
  return std::move(s->result);
}

StatusOr<Embeddings> FallbackChain::Run(Task task, const TokenBatch& batch) const {
  const std::vector<Member*> order = Order(Clock::now());
  std::string errors, reason;
  const Member* failed = nullptr;
  for (size_t k = 0; k < order.size(); ++k) {
    Member& m = *order[k];
    const bool last = k + 1 == order.size();
    StatusOr<Embeddings> out = Attempt(m, task, batch, policy_.batch_timeout_ms > 0 && !last);
    Status st = out.status();
    if (st.ok()) st = CheckOutputShape(m.backend->info(), task, batch, *out);
    if (st.ok()) {
      Succeeded(m);
      if (failed != nullptr && observer_.on_fallback)
        observer_.on_fallback(failed->name, m.name, reason);
      return out;
    }
    // A request's own fault (bad ids, wrong task) would fail everywhere: no failover.
    if (st.code() == StatusCode::kInvalidArgument || st.code() == StatusCode::kFailedPrecondition) {
      return st;
    }
    reason = st.code() == StatusCode::kDeadlineExceeded ? "timeout"
             : out.ok()                                 ? "bad_output"
                                                        : "error";
    Failed(m, reason, Clock::now());
    errors += (errors.empty() ? "" : "; ") + m.name + ": " + st.message();
    failed = &m;
  }
  return Unavailable("every backend failed this batch: " + errors);
}

void FallbackChain::Succeeded(Member& m) const {
  bool recovered = false;
  {
    std::lock_guard<std::mutex> lock(mu_);
    ++m.batches;
    m.consecutive_failures = 0;
    recovered = m.out_of_service;
    m.out_of_service = false;
    m.backoff_ms = 0;
  }
  if (observer_.on_batch) observer_.on_batch(m.name);
  if (recovered && observer_.log) observer_.log("backend " + m.name + " is back in service");
}

void FallbackChain::Failed(Member& m, const std::string& reason, Clock::time_point now) const {
  std::string line;
  {
    std::lock_guard<std::mutex> lock(mu_);
    ++m.failures;
    ++m.consecutive_failures;
    // Out of service after max_failures in a row, or at once when a retry fails.
    if (m.out_of_service || m.consecutive_failures >= policy_.max_failures) {
      m.backoff_ms = m.out_of_service ? std::min(m.backoff_ms * 2, policy_.retry_after_ms * 64)
                                      : policy_.retry_after_ms;
      m.out_of_service = true;
      m.retry_at = now + std::chrono::milliseconds(m.backoff_ms);
      line = "backend " + m.name + " out of service for " + std::to_string(m.backoff_ms) +
             " ms after " + std::to_string(m.consecutive_failures) + " failed batch(es) (" +
             reason + ")";
    }
  }
  if (observer_.on_failure) observer_.on_failure(m.name, reason);
  if (!line.empty() && observer_.log) observer_.log(line);
}

std::vector<MemberState> FallbackChain::States() const {
  const Clock::time_point now = Clock::now();
  std::lock_guard<std::mutex> lock(mu_);
  std::vector<MemberState> out;
  for (const auto& m : members_) {
    MemberState s;
    s.name = m->name;
    s.loaded = m->backend != nullptr;
    s.in_service = s.loaded && !(m->out_of_service && now < m->retry_at);
    s.load_error = m->load_error;
    s.batches = m->batches;
    s.failures = m->failures;
    s.info = s.loaded ? &m->backend->info() : nullptr;
    out.push_back(std::move(s));
  }
  return out;
}

std::string FallbackChain::Serving() const {
  const std::vector<Member*> order = Order(Clock::now());
  return order.empty() ? "" : order.front()->name;  // Load keeps at least one member loaded
}

Status FallbackChain::ForEachLoaded(const std::function<Status(const Backend&)>& fn) const {
  for (const auto& m : members_) {
    if (m->backend) RETURN_IF_ERROR(fn(*m->backend));
  }
  return Status::Ok();
}

}  // namespace encserve::backends
