// The condition-variable ThreadPool that src/core/thread_pool.h replaced, kept only so that
// thread_pool_bench can compare round-trip latency in one run. Not for engine use.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

namespace encserve::bench {

class LegacyThreadPool {
 public:
  // num_threads counts the caller: 1 means no worker threads.
  explicit LegacyThreadPool(int num_threads);
  ~LegacyThreadPool();
  LegacyThreadPool(const LegacyThreadPool&) = delete;
  LegacyThreadPool& operator=(const LegacyThreadPool&) = delete;

  int num_threads() const { return static_cast<int>(workers_.size()) + 1; }

  // Runs fn(task) for task in [0, num_tasks); returns when all are done. Not reentrant: one
  // ParallelFor at a time per pool (the engine gives each replica its own pool).
  void ParallelFor(int num_tasks, const std::function<void(int)>& fn);

 private:
  void WorkerLoop();
  void RunTasks();

  std::vector<std::thread> workers_;
  std::mutex mu_;
  std::condition_variable start_cv_;
  std::condition_variable done_cv_;
  const std::function<void(int)>* fn_ = nullptr;
  int num_tasks_ = 0;
  int next_task_ = 0;
  int pending_workers_ = 0;
  uint64_t generation_ = 0;
  bool stop_ = false;
};

inline LegacyThreadPool::LegacyThreadPool(int num_threads) {
  for (int i = 1; i < num_threads; ++i) workers_.emplace_back([this] { WorkerLoop(); });
}

inline LegacyThreadPool::~LegacyThreadPool() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
  }
  start_cv_.notify_all();
  for (auto& t : workers_) t.join();
}

inline void LegacyThreadPool::RunTasks() {
  for (;;) {
    int task;
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (next_task_ >= num_tasks_) return;
      task = next_task_++;
    }
    (*fn_)(task);
  }
}

inline void LegacyThreadPool::ParallelFor(int num_tasks, const std::function<void(int)>& fn) {
  if (num_tasks <= 0) return;
  if (workers_.empty() || num_tasks == 1) {
    for (int t = 0; t < num_tasks; ++t) fn(t);
    return;
  }
  {
    std::lock_guard<std::mutex> lock(mu_);
    fn_ = &fn;
    num_tasks_ = num_tasks;
    next_task_ = 0;
    pending_workers_ = static_cast<int>(workers_.size());
    ++generation_;
  }
  start_cv_.notify_all();
  RunTasks();
  std::unique_lock<std::mutex> lock(mu_);
  done_cv_.wait(lock, [this] { return pending_workers_ == 0; });
  fn_ = nullptr;
}

inline void LegacyThreadPool::WorkerLoop() {
  uint64_t seen = 0;
  for (;;) {
    {
      std::unique_lock<std::mutex> lock(mu_);
      start_cv_.wait(lock, [&] { return stop_ || generation_ != seen; });
      if (stop_) return;
      seen = generation_;
    }
    RunTasks();
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (--pending_workers_ == 0) done_cv_.notify_one();
    }
  }
}

}  // namespace encserve::bench
