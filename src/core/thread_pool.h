// ThreadPool: a fixed set of persistent workers for intra-op parallelism. The calling thread
// takes part in every ParallelFor, so a pool of 1 thread runs everything inline.
//
// Low latency: after a job, workers spin on an atomic epoch for `spin_us` microseconds (with
// a pause instruction) before sleeping on a condition variable, so the ~40 back-to-back
// ParallelFor calls of a forward pass never pay a sleep/wake-up; the caller likewise spins
// (then sleeps) on an atomic count of workers still inside the job. Idle workers go to sleep
// after the spin window and burn no CPU. See docs/architecture.md ("Threading").
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

namespace encserve {

struct PoolOptions {
  // Pin worker i (1..num_threads-1) to CPU (first_cpu + i) modulo the CPUs this process may
  // use. The caller's thread is never pinned: it belongs to the engine, not to the pool.
  bool pin = false;
  int first_cpu = 0;
  // How long workers (and the caller, waiting for them) spin before sleeping. Negative: the
  // environment variable ENCSERVE_SPIN_US if set, else kDefaultSpinUs. 0: never spin.
  int spin_us = -1;
};

class ThreadPool {
 public:
  static constexpr int kDefaultSpinUs = 100;

  // num_threads counts the caller: 1 means no worker threads.
  explicit ThreadPool(int num_threads) : ThreadPool(num_threads, PoolOptions{}) {}
  ThreadPool(int num_threads, const PoolOptions& options);
  ~ThreadPool();
  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;

  int num_threads() const { return static_cast<int>(workers_.size()) + 1; }
  int spin_us() const { return spin_us_; }

  // Runs fn(task) for task in [0, num_tasks); returns when all are done, with their effects
  // visible to the caller. Tasks are claimed dynamically (a worker that is slow to wake simply
  // gets fewer). Not reentrant: one ParallelFor at a time per pool (the engine gives each
  // replica its own pool).
  void ParallelFor(int num_tasks, const std::function<void(int)>& fn);

 private:
  void WorkerLoop();
  void RunTasks();
  uint64_t WaitForEpoch(uint64_t seen);
  void WaitIdle();

  // Each hot atomic on its own cache line: workers spin reading epoch_ while next_ and
  // active_ are written.
  // Odd: a job is open; even: closed. Bumped only by the caller (and never reused).
  alignas(64) std::atomic<uint64_t> epoch_{0};
  alignas(64) std::atomic<int> next_{0};    // next task index to claim
  alignas(64) std::atomic<int> active_{0};  // workers checked in to the open job
  alignas(64) std::atomic<int> sleepers_{0};
  std::atomic<bool> caller_waiting_{false};
  std::atomic<bool> stop_{false};

  // Job description: written by the caller only while no worker is checked in (active_ == 0)
  // and before the epoch is opened; read by workers only while checked in.
  const std::function<void(int)>* fn_ = nullptr;
  int num_tasks_ = 0;

  int spin_us_ = kDefaultSpinUs;
  std::mutex mu_;
  std::condition_variable wake_cv_;  // workers sleeping for a new epoch
  std::condition_variable done_cv_;  // the caller sleeping for active_ == 0
  std::vector<std::thread> workers_;
};

}  // namespace encserve
