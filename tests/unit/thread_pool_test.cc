// ThreadPool: every task runs exactly once and its writes are visible when ParallelFor
// returns, over many back-to-back calls, with workers spinning, sleeping or in between; clean
// destruction; one pool per thread used concurrently; idle workers sleep (no CPU burnt).
#include "core/thread_pool.h"

#include <gtest/gtest.h>
#include <pthread.h>
#include <sched.h>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <ctime>
#include <thread>
#include <vector>

namespace encserve {
namespace {

constexpr int kTaskCounts[] = {0, 1, 2, 3, 5, 64, 1, 2, 0, 257};

// Runs `calls` ParallelFor calls of varying size; each task bumps a plain (non-atomic) slot, so
// a task run twice, or a write not visible to the caller, fails the check (or TSan).
void CheckExactlyOnce(ThreadPool& pool, int calls) {
  std::vector<int> hits(512, 0);
  for (int c = 0; c < calls; ++c) {
    const int n = kTaskCounts[c % std::size(kTaskCounts)];
    pool.ParallelFor(n, [&](int t) { hits[t] += 1; });
    for (int t = 0; t < n; ++t) {
      ASSERT_EQ(hits[t], 1) << "call " << c << " task " << t << " of " << n;
      hits[t] = 0;
    }
  }
}

double ProcessCpuSeconds() {
  timespec ts;
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) + ts.tv_nsec * 1e-9;
}

class ThreadPoolSpinTest : public ::testing::TestWithParam<int> {};

TEST_P(ThreadPoolSpinTest, EveryTaskOnceOverManyCalls) {
  for (int threads : {2, 3, 4}) {
    ThreadPool pool(threads, PoolOptions{.spin_us = GetParam()});
    EXPECT_EQ(pool.num_threads(), threads);
    CheckExactlyOnce(pool, 10000);
  }
}

TEST_P(ThreadPoolSpinTest, ResultsVisibleAcrossIdleGaps) {
  // Sleeps between calls let workers pass their spin window and go to sleep.
  ThreadPool pool(3, PoolOptions{.spin_us = GetParam()});
  std::vector<long> out(1000);
  for (int round = 0; round < 20; ++round) {
    pool.ParallelFor(10, [&](int t) {
      for (int i = t * 100; i < (t + 1) * 100; ++i) out[i] = static_cast<long>(i) * round;
    });
    long sum = 0;
    for (long v : out) sum += v;
    EXPECT_EQ(sum, 999L * 1000 / 2 * round);
    std::this_thread::sleep_for(std::chrono::microseconds(round % 2 == 0 ? 2000 : 10));
  }
}

TEST_P(ThreadPoolSpinTest, PoolPerThreadConcurrently) {
  std::vector<std::thread> callers;
  for (int i = 0; i < 4; ++i) {
    callers.emplace_back([&] {
      ThreadPool pool(2, PoolOptions{.spin_us = GetParam()});
      CheckExactlyOnce(pool, 2000);
    });
  }
  for (auto& t : callers) t.join();
}

INSTANTIATE_TEST_SUITE_P(Spin, ThreadPoolSpinTest, ::testing::Values(0, 20, 200));

TEST(ThreadPoolTest, OneThreadRunsInline) {
  ThreadPool pool(1);
  EXPECT_EQ(pool.num_threads(), 1);
  const auto caller = std::this_thread::get_id();
  int ran = 0;
  pool.ParallelFor(5, [&](int t) {
    EXPECT_EQ(std::this_thread::get_id(), caller);
    EXPECT_EQ(t, ran);
    ++ran;
  });
  EXPECT_EQ(ran, 5);
}

TEST(ThreadPoolTest, SingleTaskRunsOnCaller) {
  ThreadPool pool(4);
  std::thread::id ran_on;
  pool.ParallelFor(1, [&](int) { ran_on = std::this_thread::get_id(); });
  EXPECT_EQ(ran_on, std::this_thread::get_id());
}

TEST(ThreadPoolTest, DestroyWhileSpinning) {
  // Workers spin for up to 2 s after each call; destruction must not wait that out.
  const auto start = std::chrono::steady_clock::now();
  {
    ThreadPool pool(3, PoolOptions{.spin_us = 2000000});
    CheckExactlyOnce(pool, 100);
  }
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::milliseconds(1500));
}

TEST(ThreadPoolTest, DestroyWhileSleepingOrUnused) {
  { ThreadPool unused(4); }
  ThreadPool pool(3, PoolOptions{.spin_us = 10});
  CheckExactlyOnce(pool, 10);
  std::this_thread::sleep_for(std::chrono::milliseconds(20));
}

TEST(ThreadPoolTest, IdleWorkersSleep) {
  ThreadPool pool(2, PoolOptions{.spin_us = 100});
  CheckExactlyOnce(pool, 1000);
  std::this_thread::sleep_for(std::chrono::milliseconds(20));  // past the spin window
  const double cpu0 = ProcessCpuSeconds();
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  // A spinning worker would burn ~0.2 s; asleep it burns ~nothing.
  EXPECT_LT(ProcessCpuSeconds() - cpu0, 0.05);
}

TEST(ThreadPoolTest, SpinFromEnvironment) {
  ASSERT_EQ(setenv("ENCSERVE_SPIN_US", "0", 1), 0);
  EXPECT_EQ(ThreadPool(2).spin_us(), 0);
  ASSERT_EQ(setenv("ENCSERVE_SPIN_US", "37", 1), 0);
  EXPECT_EQ(ThreadPool(2).spin_us(), 37);
  EXPECT_EQ(ThreadPool(2, PoolOptions{.spin_us = 5}).spin_us(), 5);  // explicit wins
  ASSERT_EQ(setenv("ENCSERVE_SPIN_US", "lots", 1), 0);
  EXPECT_EQ(ThreadPool(2).spin_us(), ThreadPool::kDefaultSpinUs);
  ASSERT_EQ(unsetenv("ENCSERVE_SPIN_US"), 0);
  EXPECT_EQ(ThreadPool(2).spin_us(), ThreadPool::kDefaultSpinUs);
}

TEST(ThreadPoolTest, PinnedWorkersRunOnOneCpu) {
  ThreadPool pool(2, PoolOptions{.pin = true, .spin_us = 1000});
  const auto caller = std::this_thread::get_id();
  std::atomic<int> worker_cpus{-1};
  for (int attempt = 0; attempt < 1000 && worker_cpus.load() < 0; ++attempt) {
    pool.ParallelFor(2, [&](int) {
      if (std::this_thread::get_id() != caller) {
        cpu_set_t set;
        CPU_ZERO(&set);
        if (pthread_getaffinity_np(pthread_self(), sizeof(set), &set) == 0)
          worker_cpus.store(CPU_COUNT(&set));
      }
      // Long enough that the caller cannot claim both tasks before the worker wakes.
      std::this_thread::sleep_for(std::chrono::milliseconds(2));
    });
  }
  if (worker_cpus.load() < 0) GTEST_SKIP() << "no task reached a worker";
  EXPECT_EQ(worker_cpus.load(), 1);
  CheckExactlyOnce(pool, 1000);
}

}  // namespace
}  // namespace encserve
