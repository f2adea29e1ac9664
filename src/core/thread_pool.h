// ThreadPool: a fixed set of persistent workers for intra-op parallelism. The calling thread
// takes part in every ParallelFor, so a pool of 1 thread runs everything inline.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

namespace encserve {

class ThreadPool {
 public:
  // num_threads counts the caller: 1 means no worker threads.
  explicit ThreadPool(int num_threads);
  ~ThreadPool();
  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;

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

}  // namespace encserve
