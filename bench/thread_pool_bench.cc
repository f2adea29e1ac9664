// ParallelFor round-trip latency: the spin-then-sleep ThreadPool against the condition-variable
// pool it replaced (bench/legacy_thread_pool.h), in one run. "Empty" jobs measure pure
// dispatch + completion; "Work" jobs add ~1 µs per task; "Gap" jobs leave the pool idle for a
// while between calls (workers past their spin window must be woken from sleep).
#include <benchmark/benchmark.h>

#include <chrono>
#include <functional>
#include <thread>

#include "core/thread_pool.h"
#include "legacy_thread_pool.h"

namespace {

using encserve::PoolOptions;
using encserve::ThreadPool;
using encserve::bench::LegacyThreadPool;

void Spin(int ns) {
  const auto end = std::chrono::steady_clock::now() + std::chrono::nanoseconds(ns);
  while (std::chrono::steady_clock::now() < end) {
  }
}

// state.range(0): threads; range(1): tasks; range(2): ns of work per task.
template <typename Pool>
void RoundTrip(benchmark::State& state, Pool& pool) {
  const int tasks = static_cast<int>(state.range(1));
  const int work_ns = static_cast<int>(state.range(2));
  std::function<void(int)> fn = [&](int) {
    if (work_ns > 0) Spin(work_ns);
  };
  for (auto _ : state) pool.ParallelFor(tasks, fn);
  state.SetItemsProcessed(state.iterations());
}

void BM_New(benchmark::State& state) {
  ThreadPool pool(static_cast<int>(state.range(0)));
  RoundTrip(state, pool);
}
void BM_NewPinned(benchmark::State& state) {
  ThreadPool pool(static_cast<int>(state.range(0)), PoolOptions{.pin = true});
  RoundTrip(state, pool);
}
void BM_NewNoSpin(benchmark::State& state) {
  ThreadPool pool(static_cast<int>(state.range(0)), PoolOptions{.spin_us = 0});
  RoundTrip(state, pool);
}
void BM_Legacy(benchmark::State& state) {
  LegacyThreadPool pool(static_cast<int>(state.range(0)));
  RoundTrip(state, pool);
}

// A call after the pool sat idle for range(2) µs (so new-pool workers may be asleep).
template <typename Pool>
void AfterGap(benchmark::State& state, Pool& pool) {
  const int gap_us = static_cast<int>(state.range(2));
  std::function<void(int)> fn = [](int) {};
  for (auto _ : state) {
    state.PauseTiming();
    std::this_thread::sleep_for(std::chrono::microseconds(gap_us));
    state.ResumeTiming();
    pool.ParallelFor(static_cast<int>(state.range(1)), fn);
  }
}
void BM_NewAfterGap(benchmark::State& state) {
  ThreadPool pool(static_cast<int>(state.range(0)));
  AfterGap(state, pool);
}
void BM_LegacyAfterGap(benchmark::State& state) {
  LegacyThreadPool pool(static_cast<int>(state.range(0)));
  AfterGap(state, pool);
}

void Args(benchmark::internal::Benchmark* b) {
  b->ArgNames({"threads", "tasks", "work_ns"});
  for (int work : {0, 1000}) {
    b->Args({2, 2, work});
    b->Args({2, 16, work});
  }
  b->UseRealTime();
}
void GapArgs(benchmark::internal::Benchmark* b) {
  b->ArgNames({"threads", "tasks", "gap_us"})->Args({2, 2, 1000})->Iterations(2000)->UseRealTime();
}

BENCHMARK(BM_Legacy)->Apply(Args);
BENCHMARK(BM_New)->Apply(Args);
BENCHMARK(BM_NewPinned)->Apply(Args);
BENCHMARK(BM_NewNoSpin)->Apply(Args);
BENCHMARK(BM_LegacyAfterGap)->Apply(GapArgs);
BENCHMARK(BM_NewAfterGap)->Apply(GapArgs);

}  // namespace

BENCHMARK_MAIN();
