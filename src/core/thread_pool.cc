#include "core/thread_pool.h"

#include <pthread.h>
#include <sched.h>

#include <chrono>
#include <cstdlib>
#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#endif

// Memory-ordering argument (the protocol, in short):
//  * Publish: the caller writes fn_/num_tasks_/next_ and then stores an odd epoch (release);
//    a worker that loads that epoch (acquire) sees the job.
//  * Check-in: a worker increments active_ and then re-loads epoch_; it touches the job only if
//    the epoch is still the one it saw open. The caller, once every task is claimed, stores the
//    next (even, "closed") epoch and then loads active_. Both pairs are seq_cst (a store-load
//    "Dekker" pattern), so either the caller sees the worker checked in and waits for it, or
//    the worker sees the job closed and backs off without reading fn_/num_tasks_/next_.
//  * Completion: a worker leaves with active_.fetch_sub (release); the caller's load of
//    active_ == 0 (acquire) reads the end of that release sequence, so every task's writes
//    happen-before ParallelFor returns, and before the caller rewrites the job fields.
//  * Sleeping: a worker increments sleepers_ before testing epoch_ under mu_; the caller stores
//    epoch_ before loading sleepers_ (both seq_cst) and, if any sleep, takes mu_ before
//    notifying, so a wake-up is never lost. The caller's own sleep on done_cv_ mirrors this
//    with caller_waiting_ and active_.

namespace encserve {
namespace {

inline void CpuRelax() {
#if defined(__x86_64__) || defined(__i386__)
  _mm_pause();
#elif defined(__aarch64__)
  asm volatile("yield");
#endif
}

// Polls pred for up to spin_us microseconds; returns its last value. The first kPauseOnlyUs
// poll with only a pause instruction (back-to-back ParallelFor calls land here); after that
// each poll also calls sched_yield, so that on an oversubscribed machine a waiting thread
// hands its core to whoever can use it (often the very thread it waits for) instead of burning
// its time slice. With nothing else runnable sched_yield returns at once.
constexpr int kPauseOnlyUs = 10;

template <typename Pred>
bool SpinUntil(int spin_us, Pred&& pred) {
  if (spin_us <= 0) return pred();
  using Clock = std::chrono::steady_clock;
  const auto start = Clock::now();
  const auto deadline = start + std::chrono::microseconds(spin_us);
  const auto yield_after = start + std::chrono::microseconds(kPauseOnlyUs);
  for (;;) {
    for (int i = 0; i < 64; ++i) {
      if (pred()) return true;
      CpuRelax();
    }
    const auto now = Clock::now();
    if (now >= deadline) return pred();
    if (now >= yield_after) sched_yield();
  }
}

int ResolveSpinUs(int requested) {
  if (requested >= 0) return requested;
  if (const char* env = std::getenv("ENCSERVE_SPIN_US"); env != nullptr && *env != '\0') {
    char* end = nullptr;
    const long v = std::strtol(env, &end, 10);
    if (*end == '\0' && v >= 0) return static_cast<int>(v > 1000000 ? 1000000 : v);
  }
  return ThreadPool::kDefaultSpinUs;
}

// Pins `thread` to the index-th CPU (cyclically) of those this process may run on.
void Pin(std::thread& thread, int index) {
  cpu_set_t allowed;
  CPU_ZERO(&allowed);
  if (sched_getaffinity(0, sizeof(allowed), &allowed) != 0) return;
  const int count = CPU_COUNT(&allowed);
  if (count <= 0) return;
  int want = ((index % count) + count) % count;
  for (int cpu = 0; cpu < CPU_SETSIZE; ++cpu) {
    if (!CPU_ISSET(cpu, &allowed)) continue;
    if (want-- == 0) {
      cpu_set_t one;
      CPU_ZERO(&one);
      CPU_SET(cpu, &one);
      pthread_setaffinity_np(thread.native_handle(), sizeof(one), &one);  // best effort
      return;
    }
  }
}

}  // namespace

ThreadPool::ThreadPool(int num_threads, const PoolOptions& options)
    : spin_us_(ResolveSpinUs(options.spin_us)) {
  for (int i = 1; i < num_threads; ++i) {
    workers_.emplace_back([this] { WorkerLoop(); });
    if (options.pin) Pin(workers_.back(), options.first_cpu + i);
  }
}

ThreadPool::~ThreadPool() {
  stop_.store(true, std::memory_order_seq_cst);
  { std::lock_guard<std::mutex> lock(mu_); }  // a worker testing its predicate sees stop_
  wake_cv_.notify_all();
  for (auto& t : workers_) t.join();
}

void ThreadPool::RunTasks() {
  const int n = num_tasks_;
  const std::function<void(int)>& fn = *fn_;
  for (int t; (t = next_.fetch_add(1, std::memory_order_relaxed)) < n;) fn(t);
}

void ThreadPool::ParallelFor(int num_tasks, const std::function<void(int)>& fn) {
  if (num_tasks <= 0) return;
  if (workers_.empty() || num_tasks == 1) {
    for (int t = 0; t < num_tasks; ++t) fn(t);
    return;
  }
  // No worker is checked in (the previous call ended in WaitIdle), so nobody reads these.
  fn_ = &fn;
  num_tasks_ = num_tasks;
  next_.store(0, std::memory_order_relaxed);
  const uint64_t open = epoch_.load(std::memory_order_relaxed) + 1;
  epoch_.store(open, std::memory_order_seq_cst);
  if (sleepers_.load(std::memory_order_seq_cst) > 0) {
    { std::lock_guard<std::mutex> lock(mu_); }
    wake_cv_.notify_all();
  }
  RunTasks();
  // Every task is claimed: close the job so late workers back off, then wait for those inside.
  epoch_.store(open + 1, std::memory_order_seq_cst);
  WaitIdle();
  fn_ = nullptr;
}

void ThreadPool::WaitIdle() {
  auto idle = [this] { return active_.load(std::memory_order_seq_cst) == 0; };
  if (SpinUntil(spin_us_, idle)) return;
  caller_waiting_.store(true, std::memory_order_seq_cst);
  {
    std::unique_lock<std::mutex> lock(mu_);
    done_cv_.wait(lock, idle);
  }
  caller_waiting_.store(false, std::memory_order_relaxed);
}

uint64_t ThreadPool::WaitForEpoch(uint64_t seen) {
  auto changed = [&] {
    return epoch_.load(std::memory_order_seq_cst) != seen || stop_.load(std::memory_order_seq_cst);
  };
  if (!SpinUntil(spin_us_, changed)) {
    sleepers_.fetch_add(1, std::memory_order_seq_cst);
    {
      std::unique_lock<std::mutex> lock(mu_);
      wake_cv_.wait(lock, changed);
    }
    sleepers_.fetch_sub(1, std::memory_order_relaxed);
  }
  return epoch_.load(std::memory_order_acquire);
}

void ThreadPool::WorkerLoop() {
  uint64_t seen = 0;
  for (;;) {
    const uint64_t e = WaitForEpoch(seen);
    if (stop_.load(std::memory_order_acquire)) return;
    seen = e;
    if ((e & 1) == 0) continue;  // that job closed before this worker got to it
    active_.fetch_add(1, std::memory_order_seq_cst);
    if (epoch_.load(std::memory_order_seq_cst) == e) RunTasks();
    if (active_.fetch_sub(1, std::memory_order_seq_cst) == 1 &&
        caller_waiting_.load(std::memory_order_seq_cst)) {
      { std::lock_guard<std::mutex> lock(mu_); }
      done_cv_.notify_one();
    }
  }
}

}  // namespace encserve
